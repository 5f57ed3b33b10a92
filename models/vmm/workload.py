"""Workloads for the demo and the benchmark: a standard translation trace, a VM run with a
runtime switch to shadow paging, guest page-table writes and injected TLB faults, and the
statistics both report.

Pure model code: each function returns a :class:`~models.vmm.scenario.Scenario`, which any
port (the functional model, or the RTL under cocotb) can run.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from vmassist.formats.mmu import AccessKind, PageSize

from .mmu import MMUModel
from .port import Response
from .run import RunResult, run_scenario
from .scenario import (
    AccessOp,
    EptMapping,
    GuestMapping,
    InjectOp,
    InvlpgOp,
    Op,
    PteWriteOp,
    Scenario,
    SwitchOp,
    check_scenario,
)

__all__ = [
    "vm_layout",
    "standard_trace",
    "demo_scenario",
    "summarize",
    "rv_detection",
    "with_mode",
    "injection_activity",
]

KB4, MB2 = PageSize.SIZE_4K, PageSize.SIZE_2M
DATA_GVA = 0x7F00_0000_0000  # 4K user data pages
CODE_GVA = 0x0000_0040_0000  # a 2M supervisor code page
HEAP_GVA = 0x7F00_4000_0000  # a 2M heap page over EPT 4K pages (fragmented)
N_HEAP_PAGES = 32  # EPT-mapped 4K pages of the heap; the rest is an EPT hole


def vm_layout(n_data: int = 96) -> tuple[list[GuestMapping], list[EptMapping], list[int]]:
    """A small guest: a code page, ``n_data`` data pages, and a fragmented heap.

    The guest's RAM [0, 64 MiB) is backed by 2M EPT pages, except the heap's 2M GPA range, which
    the EPT maps 4K at a time (as a hypervisor does after splitting a page for dirty logging).
    Returns the mappings and the list of data-page GVAs a trace may touch.
    """
    guest = [
        GuestMapping(CODE_GVA, 0x0020_0000, MB2, writable=False, user=False, nx=False),
        GuestMapping(HEAP_GVA, 0x0200_0000, MB2, writable=True, user=True, nx=True),
    ]
    pages = []
    for i in range(n_data):
        gva = DATA_GVA + i * 0x1000
        guest.append(
            GuestMapping(gva, 0x0040_0000 + i * 0x3000, KB4, writable=True, user=True, nx=True)
        )
        pages.append(gva)
    ept = [
        EptMapping(gpa, 0x1_0000_0000 + gpa, MB2)
        for gpa in range(0, 0x0400_0000, 0x20_0000)
        if gpa != 0x0200_0000
    ]
    ept += [
        EptMapping(0x0200_0000 + i * 0x1000, 0x2_0000_0000 + i * 0x5000, KB4)
        for i in range(N_HEAP_PAGES)
    ]
    pages += [HEAP_GVA + i * 0x1000 for i in range(N_HEAP_PAGES)]
    return guest, ept, pages


def _accesses(rng: random.Random, pages: list[int], n: int, hot: int) -> list[Op]:
    """``n`` accesses: 85% to a hot set of ``hot`` pages, the rest anywhere."""
    hot_set = pages[:hot]
    ops: list[Op] = []
    for _ in range(n):
        page = rng.choice(hot_set) if rng.random() < 0.85 else rng.choice(pages)
        kind = AccessKind.WRITE if rng.random() < 0.3 else AccessKind.READ
        ops.append(
            AccessOp(
                page + 8 * rng.randrange(512),
                kind,
                user=True,
                data=rng.getrandbits(64) if kind == AccessKind.WRITE else 0,
            )
        )
    return ops


def standard_trace(
    *, seed: int = 1, n_accesses: int = 2000, mode: str = "ept", hot: int = 24
) -> Scenario:
    """The benchmark's standard trace: user reads and writes over 128 pages, mostly to a hot set
    smaller than the TLB, so both hits and misses are common."""
    rng = random.Random(seed)
    guest, ept, pages = vm_layout()
    ops = _accesses(rng, pages, n_accesses, hot)
    ops.append(AccessOp(CODE_GVA + 0x40, AccessKind.FETCH))
    scenario = Scenario(vpid=1, mode=mode, guest=tuple(guest), ept=tuple(ept), ops=tuple(ops))
    check_scenario(scenario)
    return scenario


def demo_scenario(
    *, seed: int = 7, n_phase: int = 300, injections: int = 4, entries: int = 32
) -> Scenario:
    """The demo VM: traffic in EPT mode; the VMM switches to shadow paging; the guest remaps
    pages (each store to its page tables takes a WP fault); TLB faults are injected and must be
    caught by runtime verification; back to EPT mode."""
    rng = random.Random(seed)
    guest, ept, pages = vm_layout()
    hot = min(16, entries // 2)
    ops: list[Op] = list(_accesses(rng, pages, n_phase, hot))
    ops.append(SwitchOp("shadow"))
    ops += _accesses(rng, pages, n_phase // 2, hot)
    for i in range(8):  # the guest remaps pages, then uses them
        gva = pages[i]
        ops.append(PteWriteOp(gva, gpa=0x0040_0000 + (len(pages) + i) * 0x3000))
        ops.append(AccessOp(gva + 0x10, AccessKind.READ, user=True))
    ops.append(PteWriteOp(pages[9], writable=False))  # and write-protects one
    ops.append(AccessOp(pages[9], AccessKind.WRITE, user=True, data=1))
    for _ in range(injections):  # a faulty processor: corrupt a TLB entry
        for page in pages[:hot]:  # the hot set is resident ...
            ops.append(AccessOp(page, AccessKind.READ, user=True))
        ops.append(InjectOp(rng.randrange(hot), 1 << rng.randrange(8, 20)))
        ops += _accesses(rng, pages, 40, hot)  # ... and runtime verification runs
        for page in pages[:hot]:
            ops.append(AccessOp(page + 8, AccessKind.READ, user=True))
    ops.append(InvlpgOp(pages[0]))
    ops.append(SwitchOp("ept"))
    ops += _accesses(rng, pages, n_phase // 2, hot)
    scenario = Scenario(vpid=1, mode="ept", guest=tuple(guest), ept=tuple(ept), ops=tuple(ops))
    check_scenario(scenario)
    return scenario


class _InjectionTracker(MMUModel):
    """The functional MMU, noting for each injected fault whether the corrupted entry ever
    served a hit whose HPA the corruption changed, before the entry was replaced or flushed."""

    def __init__(self, **params: int) -> None:
        super().__init__(**params)
        self.injected: list[tuple[object, int, list[bool]]] = []  # (entry, mask, [activated])
        self._last: int | None = None

    def write_csr(self, name: str, value: int) -> None:
        super().write_csr(name, value)
        if name == "INJ":
            idx = value & 0xFF & (self.entries - 1)
            mask = self.read_csr("INJ_MASK")
            self.injected.append((self.tlb[idx], mask, [False]))

    def lookup(self, gva: int, mode: int, vpid: int) -> int | None:
        self._last = super().lookup(gva, mode, vpid)
        return self._last

    def request(self, gva: int, kind: AccessKind, user: bool, wdata: int = 0) -> Response:
        self._last = None
        resp = super().request(gva, kind, user, wdata)
        if resp.hit and self._last is not None:
            entry = self.tlb[self._last]
            for obj, mask, activated in self.injected:
                if obj is entry and replace(entry, ppn=entry.ppn ^ mask).hpa(gva) != entry.hpa(gva):
                    activated[0] = True
        return resp


def injection_activity(scenario: Scenario, **mmu_params: int) -> list[bool]:
    """For each ``inject`` op, whether the fault was *activated*: the corrupted entry served a
    translation the corruption changed. The RTL's TLB holds exactly what the functional model's
    does (the cocotb regression compares their events and counters), so this holds for both.
    A fault never activated is harmless: no wrong translation ever left the MMU."""
    import asyncio

    tracker = _InjectionTracker(**mmu_params)
    asyncio.run(run_scenario(scenario, tracker))
    return [activated[0] for _, _, activated in tracker.injected]


def rv_detection(scenario: Scenario, result: RunResult) -> dict[str, Any]:
    """Detection of injected TLB faults by runtime verification.

    The rate is detected / activated (see :func:`injection_activity`). An injection is
    detected by the first ``rv_mismatch`` event after it (and before the next injection); the
    latency is counted in guest accesses and, when the port measured them, in
    cycles from the first access after the injection to the end of the detecting access.
    """
    access_ops = [i for i, op in enumerate(scenario.ops) if isinstance(op, AccessOp)]
    by_op = dict(zip(access_ops, result.results, strict=True))
    injections = [i for i, op in enumerate(scenario.ops) if isinstance(op, InjectOp)]
    mismatches = [e["op"] for e in result.events if e["type"] == "rv_mismatch"]
    latencies, cycles = [], []
    for k, op in enumerate(injections):
        end = injections[k + 1] if k + 1 < len(injections) else len(scenario.ops)
        hit = next((m for m in mismatches if op < m < end), None)
        if hit is None:
            continue
        window = [i for i in access_ops if op < i <= hit]
        latencies.append(len(window))
        if all(by_op[i].get("cycles") is not None for i in window):
            cycles.append(sum(by_op[i]["cycles"] for i in window))
    n = len(injections)
    activated = sum(injection_activity(scenario)) if n else 0
    return {
        "injected": n,
        "activated": activated,
        "detected": len(latencies),
        "rate": len(latencies) / activated if activated else None,
        "latency_accesses": latencies,
        "latency_cycles": cycles or None,
    }


def summarize(scenario: Scenario, result: RunResult) -> dict[str, Any]:
    """Counts, hit rate, memory references per miss, faults and detection of one run."""
    c = result.counters
    res = result.results
    faults: dict[str, int] = {}
    for r in res:
        if r["fault"]:
            faults[r["fault"]] = faults.get(r["fault"], 0) + 1
    kinds: dict[str, int] = {}
    for e in result.events:
        kinds[e["type"]] = kinds.get(e["type"], 0) + 1
    lookups = c["HITS"] + c["MISSES"]
    cyc = [r["cycles"] for r in res if r.get("cycles") is not None]
    return {
        "accesses": len(res),
        "hit_rate": c["HITS"] / lookups if lookups else None,
        "misses": c["MISSES"],
        "refs_per_miss": c["WALK_READS"] / c["MISSES"] if c["MISSES"] else None,
        "pwc_hits": c["PWC_HITS"],
        "faults": faults,
        "wp_faults": c["WP_FAULTS"],
        "flushes": c["FLUSHES"],
        "events": kinds,
        "cycles_per_translation": sum(cyc) / len(cyc) if cyc else None,
        "detection": rv_detection(scenario, result),
    }


def with_mode(scenario: Scenario, mode: str) -> Scenario:
    """The same scenario starting in ``mode``."""
    return replace(scenario, mode=mode)
