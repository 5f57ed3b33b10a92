"""cocotb tests of the MMU top against the VMM golden model (``models/vmm``).

Every test logs its seed; ``COCOTB_RANDOM_SEED=<seed>`` replays it.
"""

from __future__ import annotations

import os
import random

import cocotb
from cocotb.triggers import ClockCycles

from models.vmm.paging import ref_translate
from models.vmm.run import ARCH_FIELDS, run_model, run_scenario
from models.vmm.scenario import random_scenario
from models.vmm.vmm import VMM
from vmassist.formats.mmu import MMU_CSR, AccessKind, Fault, FlushOp

from .tb import MmuTB

N_SCENARIOS = int(os.environ.get("MMU_SCENARIOS", "6"))
N_OPS = int(os.environ.get("MMU_OPS", "200"))


def _seed() -> int:
    return int(cocotb.RANDOM_SEED)


def _entries() -> int:
    return int(os.environ.get("MMU_ENTRIES", "32"))


def _compare(log, tag: str, hw, model) -> None:
    """Architectural results, events and counters of the RTL run must equal the model's."""
    assert len(hw.results) == len(model.results), f"{tag}: result count differs"
    for i, (a, b) in enumerate(zip(hw.results, model.results, strict=True)):
        ka = {k: a[k] for k in ARCH_FIELDS}
        kb = {k: b[k] for k in ARCH_FIELDS}
        assert ka == kb, f"{tag}: access #{i}: rtl {ka} != model {kb}"
    ev_hw = [{k: v for k, v in e.items() if k != "cycles"} for e in hw.events]
    ev_model = [{k: v for k, v in e.items() if k != "cycles"} for e in model.events]
    assert ev_hw == ev_model, f"{tag}: events differ:\nrtl   {ev_hw}\nmodel {ev_model}"
    assert hw.counters == model.counters, (
        f"{tag}: counters rtl {hw.counters} != model {model.counters}"
    )
    log.info(
        "%s: %d accesses, %d events, counters %s", tag, len(hw.results), len(hw.events), hw.counters
    )


async def _fresh_vmm(tb: MmuTB, seed: int) -> VMM:
    """A reset DUT and empty memory, with a random scenario's tables set up by the VMM, in EPT
    mode (where the hardware's raw answers are architectural)."""
    tb.port.mem.clear()
    await tb.reset()
    vmm = VMM(tb.port)
    await vmm.setup(random_scenario(seed, n_ops=0))
    await vmm.switch("ept")
    return vmm


@cocotb.test()
async def random_scenarios(dut):
    """Seeded random scenarios: both stages' page sizes, faults, switches, PTE writes, INVLPG."""
    seed = _seed()
    tb = await MmuTB.create(dut, seed=seed)
    for n in range(N_SCENARIOS):
        sseed = seed * 1000 + n
        tb.log.info("scenario seed %d (replay: COCOTB_RANDOM_SEED=%d)", sseed, seed)
        scenario = random_scenario(sseed, n_ops=N_OPS)
        tb.port.mem.clear()
        await tb.reset()
        hw = await run_scenario(scenario, tb.port)
        model = run_model(scenario, entries=_entries())
        _compare(tb.log, f"scenario {sseed}", hw, model)


@cocotb.test()
async def invlpg_races_refill(dut):
    """An INVLPG that lands while the walk for that GVA is in flight must kill its refill: the
    next access walks again and sees the new mapping."""
    seed = _seed()
    rng = random.Random(seed)
    tb = await MmuTB.create(dut, seed=seed, p_pause=0.6)
    for trial in range(12):
        vmm = await _fresh_vmm(tb, seed * 100 + trial)
        page = vmm.mappable_page(rng)  # a present 4K guest page over any EPT page
        if page is None:
            continue
        gva, new_gpa = page
        start = await tb.submit(gva, AccessKind.READ, False)
        await ClockCycles(dut.clk, rng.randrange(1, 40))
        # The guest remaps the page (the VMM writes the PTE, as after a handled WP fault) ...
        vmm.backdoor_remap(gva, new_gpa)
        # ... and invalidates it while the walk may still be running.
        await tb.port.csr_write("FLUSH_GVA", gva)
        await tb.port.csr_write("FLUSH", MMU_CSR["FLUSH"].pack(op=FlushOp.INVLPG, vpid=vmm.vpid))
        await tb.collect(start)
        after = await tb.access(gva, AccessKind.READ, False)
        ref = ref_translate(tb.port.mem, vmm.gcr3, vmm.eptp, gva, AccessKind.READ, False)
        assert not after.hit, f"trial {trial}: stale entry survived INVLPG (seed {seed})"
        assert (after.fault, after.hpa if after.fault == Fault.NONE else None) == (
            ref.fault,
            ref.hpa if ref.fault == Fault.NONE else None,
        ), f"trial {trial}: {after} != reference {ref} (seed {seed})"


@cocotb.test()
async def pte_write_races_walk(dut):
    """A guest store to a PTE queued right behind a walk that reads (and sets A in) that PTE:
    the walk's A/D write-back must not overwrite the store, and the TLB must not keep the old
    translation."""
    seed = _seed()
    rng = random.Random(seed)
    tb = await MmuTB.create(dut, seed=seed, p_pause=0.4)
    for trial in range(12):
        vmm = await _fresh_vmm(tb, seed * 100 + trial)
        page = vmm.mappable_page(rng)
        if page is None:
            continue
        gva, new_gpa = page
        pte_gva, new_pte = vmm.pte_store(gva, gpa=new_gpa)
        # Both requests enter the stream back to back: the store does not wait for the walk.
        t0 = await tb.submit(
            gva, AccessKind.WRITE if rng.random() < 0.5 else AccessKind.READ, False
        )
        t1 = await tb.submit(pte_gva, AccessKind.WRITE, False, new_pte)
        await tb.collect(t0)
        st = await tb.collect(t1)
        if st.fault == Fault.WP:
            await vmm.handle_wp(pte_gva, st, new_pte)
        else:
            assert st.fault == Fault.NONE, f"trial {trial}: PTE store got {st}"
        pte_hpa = vmm.pte_hpa(gva)
        assert tb.port.mem.read64(pte_hpa) == new_pte, f"trial {trial}: the store was lost"
        after = await tb.access(gva, AccessKind.READ, False)
        ref = ref_translate(tb.port.mem, vmm.gcr3, vmm.eptp, gva, AccessKind.READ, False)
        assert (after.fault, after.hpa) == (ref.fault, ref.hpa) or (
            after.fault == ref.fault != Fault.NONE
        ), f"trial {trial}: {after} != {ref}"
