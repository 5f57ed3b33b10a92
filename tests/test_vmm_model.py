"""Tests of the VMM golden model (``models/vmm``): builders, reference walks, the functional MMU
model and the VMM, against ``docs/mmu.md``."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.vmm.bits import EPT, SHADOW, X86
from models.vmm.memory import SparseMemory
from models.vmm.mmu import COUNTERS, MMUModel, PageWalkCache, Plru
from models.vmm.paging import (
    GUEST_TABLE_PAGES,
    HOST_TABLE_BASE,
    PT_BASE_DEFAULT,
    WINDOW_GVA,
    Allocator,
    EptTables,
    GuestTables,
    NestedEntry,
    ShadowTables,
    ept_walk,
    page_bytes,
    ref_translate,
    walk_shadow,
    zero_page,
)
from models.vmm.run import ARCH_FIELDS, RunResult, run_model, run_scenario, write_outputs
from models.vmm.scenario import (
    AccessOp,
    EptMapping,
    GuestMapping,
    InjectOp,
    PteWriteOp,
    Scenario,
    SwitchOp,
    load_scenario,
    random_scenario,
)
from models.vmm.vmm import VMM, fault_name
from vmassist.formats.mmu import (
    EPTE,
    GPT_GPA_BASE,
    GPT_PAGES,
    MMU_CSR,
    MMU_ID,
    X86PTE,
    AccessKind,
    Fault,
    FlushOp,
    PageSize,
    ShadowPTE,
)

R, W, F = AccessKind.READ, AccessKind.WRITE, AccessKind.FETCH
K4, M2, G1 = PageSize.SIZE_4K, PageSize.SIZE_2M, PageSize.SIZE_1G
DATA = Path(__file__).parent / "data" / "mmu"
HPA_BASE = 0x20_0000_0000


# ---- helpers -------------------------------------------------------------------------------------


class Env:
    """Hand-built tables as the VMM lays them out (GPT region mapped 2M in the EPT)."""

    def __init__(self, gpt_perms: tuple[bool, bool, bool] = (True, True, False)) -> None:
        self.mem = SparseMemory()
        self.halloc = Allocator(HOST_TABLE_BASE, 1 << 16, zero=lambda a: zero_page(self.mem, a))
        self.galloc = Allocator(GPT_GPA_BASE, GUEST_TABLE_PAGES)
        self.ept = EptTables(self.mem, self.halloc)
        r, w, x = gpt_perms
        for off in range(0, GPT_PAGES * 4096, M2.bytes):
            self.ept.map(GPT_GPA_BASE + off, PT_BASE_DEFAULT + off, M2, r=r, w=w, x=x)
        self.guest = GuestTables(self.mem, self.galloc, PT_BASE_DEFAULT)

    def ref(self, gva: int, kind: AccessKind = R, user: bool = False, **kw):
        return ref_translate(self.mem, self.guest.cr3, self.ept.eptp, gva, kind, user, **kw)

    def leaf_hpa(self, gva: int) -> int:
        return self.guest.to_hpa(self.guest.leaf_pte_gpa(gva)[1])

    def entry_hpa(self, gva: int, level: int) -> int:
        """HPA of the guest entry at ``level`` on ``gva``'s path."""
        from vmassist.formats.mmu import level_index

        table = self.guest.cr3
        for lv in range(3, level, -1):
            e = self.mem.read64(self.guest.to_hpa(table + 8 * level_index(gva, lv)))
            table = X86["pfn"].get(e) << 12
        return self.guest.to_hpa(table + 8 * level_index(gva, level))

    def poke(self, hpa: int, **fields: int) -> None:
        self.mem.write64(hpa, X86.replace(self.mem.read64(hpa), **fields))


def run(coro):
    return asyncio.run(coro)


class Oracle:
    """Architectural answers from the scenario's mapping lists alone (no tables, no walks)."""

    def __init__(self, s: Scenario) -> None:
        self.guest = [
            dict(gva=g.gva, gpa=g.gpa, size=g.size.bytes, rw=g.writable, us=g.user, xd=g.nx, p=True)
            for g in s.guest
        ]
        self.ept = s.ept

    def apply(self, op: PteWriteOp) -> None:
        g = next(g for g in self.guest if g["gva"] <= op.gva < g["gva"] + g["size"])
        for name, key in (
            ("present", "p"),
            ("gpa", "gpa"),
            ("writable", "rw"),
            ("user", "us"),
            ("nx", "xd"),
        ):
            v = getattr(op, name)
            if v is not None:
                g[key] = v

    def __call__(self, gva: int, kind: AccessKind, user: bool) -> tuple[str | None, int | None]:
        g = next((g for g in self.guest if g["gva"] <= gva < g["gva"] + g["size"]), None)
        if (
            g is None
            or not g["p"]
            or (kind == W and not g["rw"])
            or (user and not g["us"])
            or (kind == F and g["xd"])
        ):
            return "guest_pf", None
        gpa = g["gpa"] + (gva - g["gva"])
        e = next((e for e in self.ept if e.gpa <= gpa < e.gpa + e.size.bytes), None)
        if e is None or not (e.r or e.w or e.x) or (e.w and not e.r) or not (e.r, e.w, e.x)[kind]:
            return "ept_violation", None
        return None, e.hpa + (gpa - e.gpa)


# ---- codecs and memory ---------------------------------------------------------------------------


@given(st.integers(0, 2**64 - 1))
def test_codecs_match_the_structs(v: int) -> None:
    for codec, struct in ((X86, X86PTE), (EPT, EPTE), (SHADOW, ShadowPTE)):
        view = struct.from_bits(v)
        fields = codec.decode(v)
        assert fields == {name: int(getattr(view, name)) for name in fields}
        assert codec.encode(**fields) == struct.const(fields).as_bits() == v


def test_sparse_memory() -> None:
    m = SparseMemory()
    assert m.read64(0x1000) == 0
    m.write64(0x1008, 0x1122_3344_5566_7788)
    m.write64(0x5000, 1)
    assert m.read64(0x1008) == 0x1122_3344_5566_7788
    assert m.pages() == [0x1000, 0x5000]
    assert m.snapshot() == {0x1008: 0x1122_3344_5566_7788, 0x5000: 1}
    m.write64(0x5000, 0)
    assert m.pages() == [0x1000]
    other = SparseMemory()
    other.write64(0x1008, 0x1122_3344_5566_7788)
    assert m == other
    m.zero_page(0x1000)
    assert len(m) == 0
    with pytest.raises(ValueError):
        m.read64(0x1004)
    with pytest.raises(ValueError):
        m.write64(0x1000, 1 << 64)


def test_allocator_reuses_zeroed_pages() -> None:
    mem = SparseMemory()
    a = Allocator(0x10000, 3, zero=lambda p: zero_page(mem, p))
    p0, p1, p2 = a.alloc(), a.alloc(), a.alloc()
    assert (p0, p1, p2) == (0x10000, 0x11000, 0x12000)
    with pytest.raises(MemoryError):
        a.alloc()
    mem.write64(p1 + 8, 5)
    a.free(p1)
    assert a.alloc() == p1 and mem.read64(p1 + 8) == 0


# ---- builders ------------------------------------------------------------------------------------


def test_guest_builder_entries_are_sdm_correct() -> None:
    env = Env()
    gva = 0x7F12_3440_0000
    env.guest.map(gva, 0x20_0000, M2, writable=False, user=True, nx=True)
    env.guest.map(gva + 0x20_0000 + 0x3000, 0x5000, K4, writable=True, user=False, nx=False)
    env.guest.map(0x4000_0000_0000, 0x4000_0000, G1)
    for level in (3, 2):
        e = X86PTE.from_bits(env.mem.read64(env.entry_hpa(gva, level)))
        assert (e.p, e.rw, e.us, e.xd, e.ps, e.a, e.d) == (1, 1, 1, 0, 0, 0, 0)
        assert GPT_GPA_BASE <= e.pfn << 12 < GPT_GPA_BASE + GPT_PAGES * 4096
    leaf = X86PTE.from_bits(env.mem.read64(env.entry_hpa(gva, 1)))
    assert (leaf.p, leaf.rw, leaf.us, leaf.xd, leaf.ps, leaf.pfn) == (1, 0, 1, 1, 1, 0x200)
    pte = X86PTE.from_bits(env.mem.read64(env.leaf_hpa(gva + 0x20_3000)))
    assert (pte.p, pte.rw, pte.us, pte.xd, pte.ps, pte.pfn) == (1, 1, 0, 0, 0, 5)
    big = X86PTE.from_bits(env.mem.read64(env.leaf_hpa(0x4000_1234_5678)))
    assert (big.p, big.ps, big.pfn) == (1, 1, 0x4000_0000 >> 12)
    assert env.guest.leaf_pte_gpa(gva + 0x1F_FFFF)[0] == 1
    with pytest.raises(ValueError):
        env.guest.map(gva + 0x1000, 0x9000, K4)  # inside the 2M page
    with pytest.raises(ValueError):
        env.guest.map(gva + 0x1000, 0x9000, M2)  # misaligned
    with pytest.raises(KeyError):
        env.guest.leaf_pte_gpa(0x1234_0000)


def test_ept_builder_entries_are_sdm_correct() -> None:
    env = Env()
    leaf_hpa = env.ept.map(0x4000_0000, 0x80_4000_0000, G1, r=True, w=False, x=True)
    e = EPTE.from_bits(env.mem.read64(leaf_hpa))
    assert (e.r, e.w, e.x, e.mt, e.ps, e.pfn) == (1, 0, 1, 6, 1, 0x80_4000_0000 >> 12)
    pte_hpa = env.ept.map(0x1000, 0x7000, K4, r=False, w=False, x=True)
    e = EPTE.from_bits(env.mem.read64(pte_hpa))
    assert (e.r, e.w, e.x, e.mt, e.ps, e.pfn) == (0, 0, 1, 6, 0, 7)
    pml4e = EPTE.from_bits(env.mem.read64(env.ept.eptp))
    assert (pml4e.r, pml4e.w, pml4e.x, pml4e.ps) == (1, 1, 1, 0)
    res = ept_walk(env.mem, env.ept.eptp, 0x4123_4567)
    assert (
        res.ok
        and res.level == 2
        and res.hpa == 0x80_4123_4567
        and (res.r, res.w, res.x) == (True, False, True)
    )
    with pytest.raises(ValueError):
        env.ept.map(0x4020_0000, 0x1000_0000, M2)


# ---- the reference 2-D walk ----------------------------------------------------------------------


@pytest.mark.parametrize("gl", [0, 1, 2])
@pytest.mark.parametrize("el", [0, 1, 2])
def test_ref_translate_size_combinations(gl: int, el: int) -> None:
    env = Env()
    gva, gpa = 0x7F80_0000_0000, 0x4000_0000
    off = (page_bytes(gl) - 1) & 0x2A_5678
    env.guest.map(gva, gpa, PageSize(gl), writable=True, user=True)
    epage = (gpa + off) & ~(page_bytes(el) - 1)
    env.ept.map(epage, HPA_BASE + (epage - gpa), PageSize(el))
    t = env.ref(gva + off, W, True)
    assert t.fault == Fault.NONE
    assert t.hpa == HPA_BASE + off
    assert t.size == min(gl, el) and t.guest_level == gl and t.ept_level == el
    assert (t.r, t.w, t.x, t.u, t.dirty) == (True, True, True, True, True)
    assert t.pte_hpa == env.leaf_hpa(gva)
    # Each guest level: a 3-read EPT walk of the table page (2M pages) plus the entry; then the
    # final GPA's EPT walk.
    assert t.reads == (4 - gl) * 4 + (4 - el)
    assert t.ppn == (HPA_BASE + off) >> 12 & ~((1 << 9 * min(gl, el)) - 1)


def _faulting_env():
    env = Env()
    env.guest.map(0x1000_0000_0000, 0x20_0000, M2, writable=False, user=False, nx=True)
    env.guest.map(0x1000_4000_0000, 0x4000_0000, G1, writable=True, user=True)
    env.guest.map(0x1000_0040_0000, 0x3000, K4, writable=True, user=True, nx=False)
    env.ept.map(0x0, HPA_BASE, M2)
    env.ept.map(0x20_0000, HPA_BASE + 0x20_0000, M2)
    env.ept.map(0x4000_0000, 0x40_0000_0000, G1)
    return env


@pytest.mark.parametrize(
    "case, gva, kind, user, reads",
    [
        ("unmapped PML4E", 0x2000_0000_0000, R, False, 4),
        ("unmapped PDPTE", 0x1000_8000_0000, R, False, 8),
        ("unmapped PDE", 0x1000_2000_0000, R, False, 12),
        ("unmapped PTE", 0x1000_0040_1000, R, False, 16),
        ("write to read-only", 0x1000_0000_0008, W, False, 12),
        ("user to supervisor", 0x1000_0000_0008, R, True, 12),
        ("fetch from NX", 0x1000_0000_0008, F, False, 12),
    ],
)
def test_ref_translate_guest_faults(case, gva, kind, user, reads) -> None:
    t = _faulting_env().ref(gva, kind, user)
    assert t.fault == Fault.GUEST_PF, case
    assert t.reads == reads, case


def test_ref_translate_guest_permissions_and_reserved_bits() -> None:
    env = _faulting_env()
    assert env.ref(0x1000_0000_0008, R).hpa == HPA_BASE + 0x20_0008  # supervisor read: fine
    assert env.ref(0x1000_4000_0010, W, False).ok  # supervisor to user page
    assert env.ref(0x1000_0040_0010, F, True).ok
    # RW is ANDed across levels: a read-only PDPTE denies writes through a writable leaf.
    env.poke(env.entry_hpa(0x1000_0040_0000, 2), rw=0)
    assert env.ref(0x1000_0040_0010, W).fault == Fault.GUEST_PF
    assert env.ref(0x1000_0040_0010, R).ok
    env.poke(env.entry_hpa(0x1000_0040_0000, 2), rw=1, us=0)  # US ANDed too
    assert env.ref(0x1000_0040_0010, R, True).fault == Fault.GUEST_PF
    env.poke(env.entry_hpa(0x1000_0040_0000, 2), us=1, xd=1)  # XD ORed
    assert env.ref(0x1000_0040_0010, F).fault == Fault.GUEST_PF
    env.poke(env.entry_hpa(0x1000_0040_0000, 2), xd=0)
    # Reserved bits.
    leaf2m = env.leaf_hpa(0x1000_0000_0000)
    env.poke(leaf2m, pfn=0x201)  # bit 12 of a 2M leaf is PAT: allowed
    assert env.ref(0x1000_0000_0008, R).hpa == HPA_BASE + 0x20_0008
    env.poke(leaf2m, pfn=0x202)  # bit 13: reserved
    assert env.ref(0x1000_0000_0008, R).fault == Fault.GUEST_PF
    env.poke(leaf2m, pfn=0x200 | (1 << 34))  # above MAXPHYADDR
    assert env.ref(0x1000_0000_0008, R).fault == Fault.GUEST_PF
    env.poke(leaf2m, pfn=0x200)
    leaf1g = env.leaf_hpa(0x1000_4000_0000)
    env.poke(leaf1g, pfn=(0x4000_0000 >> 12) | (1 << 17))  # bit 29 of a 1G leaf
    assert env.ref(0x1000_4000_0010, R).fault == Fault.GUEST_PF
    env.poke(leaf1g, pfn=0x4000_0000 >> 12)
    pde = env.entry_hpa(0x1000_0040_0000, 1)
    env.poke(pde, pfn=X86["pfn"].get(env.mem.read64(pde)) | (1 << 35))  # non-leaf above 46 bits
    assert env.ref(0x1000_0040_0010, R).fault == Fault.GUEST_PF
    pml4e = env.entry_hpa(0x1000_0000_0000, 3)
    env.poke(pml4e, ps=1)  # PS in a PML4E
    t = env.ref(0x1000_0000_0008, R)
    assert t.fault == Fault.GUEST_PF and t.reads == 4
    env.poke(pml4e, ps=0, p=0)
    assert env.ref(0x1000_0000_0008, R).fault == Fault.GUEST_PF


def test_ref_translate_ept_faults() -> None:
    env = Env()
    base = 0x1000_0000_0000
    for i, (gpa, size) in enumerate(
        [
            (0x1000, K4),
            (0x2000, K4),
            (0x3000, K4),
            (0x4000, K4),
            (0x5000, K4),
            (0x6000, K4),
            (0x40_0000, M2),
        ]
    ):
        env.guest.map(base + i * 0x1000 if size == K4 else base + 0x20_0000, gpa, size)
    env.ept.map(0x2000, 0x10_2000, K4, r=False, w=False, x=True)  # execute-only
    env.ept.map(0x3000, 0x10_3000, K4, r=True, w=False, x=False)  # read-only, no exec
    env.ept.map(0x4000, 0x10_4000, K4, r=True, w=True, x=True)
    env.mem.write64(env.ept.map(0x5000, 0x10_5000, K4), EPT.encode(w=1, pfn=0x105))  # W w/o R
    env.ept.map(0x6000, 0x10_6000, K4)
    env.ept.map(0x40_0000, 0x20_0000_0000, M2)
    # a hole: GPA 0x1000 has an EPT PT but no entry -> 16 guest reads + 4 EPT reads
    t = env.ref(base, R)
    assert (t.fault, t.reads) == (Fault.EPT_VIOLATION, 20)
    assert env.ref(base + 0x1000, R).fault == Fault.EPT_VIOLATION
    t = env.ref(base + 0x1008, F)
    assert t.ok and (t.r, t.w, t.x) == (False, False, True) and t.hpa == 0x10_2008
    assert env.ref(base + 0x2000, R).ok
    assert env.ref(base + 0x2000, W).fault == Fault.EPT_VIOLATION
    assert env.ref(base + 0x2000, F).fault == Fault.EPT_VIOLATION
    assert env.ref(base + 0x3000, W).hpa == 0x10_4000
    assert env.ref(base + 0x4000, W).fault == Fault.EPT_VIOLATION  # misconfiguration
    assert env.ref(base + 0x4000, R).fault == Fault.EPT_VIOLATION
    # The guest permission check comes before the final EPT translation.
    env.poke(env.leaf_hpa(base), rw=0)
    assert env.ref(base, W).fault == Fault.GUEST_PF
    # EPT reserved bits: bit 12 of a 2M leaf, PS in a PML4E.
    pde = ept_path_entry(env, 0x40_0000, 1)
    env.mem.write64(pde, EPT.replace(env.mem.read64(pde), pfn=(0x20_0000_0000 >> 12) | 1))
    assert env.ref(base + 0x20_0000, R).fault == Fault.EPT_VIOLATION
    env.mem.write64(pde, EPT.replace(env.mem.read64(pde), pfn=0x20_0000_0000 >> 12))
    assert env.ref(base + 0x20_0000, R).ok
    pml4e = env.ept.eptp
    env.mem.write64(pml4e, EPT.replace(env.mem.read64(pml4e), ps=1))
    t = env.ref(base + 0x20_0000, R)
    assert t.fault == Fault.EPT_VIOLATION and t.reads == 1


def ept_path_entry(env: Env, gpa: int, level: int) -> int:
    from vmassist.formats.mmu import level_index

    table = env.ept.eptp
    for lv in range(3, level, -1):
        table = EPT["pfn"].get(env.mem.read64(table + 8 * level_index(gpa, lv))) << 12
    return table + 8 * level_index(gpa, level)


def test_guest_table_pages_need_ept_read() -> None:
    env = Env(gpt_perms=(False, False, True))  # guest tables execute-only in the EPT
    env.guest.map(0x1000_0000_0000, 0x1000, K4)
    env.ept.map(0x1000, 0x5000, K4)
    t = env.ref(0x1000_0000_0000, R)
    assert (t.fault, t.reads) == (Fault.EPT_VIOLATION, 3)


def test_ad_write_backs() -> None:
    env = Env()
    gva = 0x1000_0000_0000
    env.guest.map(gva, 0x1000, K4)
    env.ept.map(0x1000, 0x5000, K4)
    before = env.mem.snapshot()
    t = env.ref(gva, W)
    assert t.ok and len(t.writes) == 4 and env.mem.snapshot() == before  # pure
    t = env.ref(gva, R, set_ad=True)
    assert t.ok and len(t.writes) == 4 and not t.dirty
    for level in (3, 2, 1, 0):
        e = X86PTE.from_bits(env.mem.read64(env.entry_hpa(gva, level)))
        assert e.a == 1 and e.d == 0
    assert env.ref(gva, R, set_ad=True).writes == []
    t = env.ref(gva, W, set_ad=True)
    assert t.dirty and t.writes == [(env.leaf_hpa(gva), env.mem.read64(env.leaf_hpa(gva)))]
    assert X86PTE.from_bits(env.mem.read64(env.leaf_hpa(gva))).d == 1
    assert env.ref(gva, W, set_ad=True).writes == []


def test_ad_write_back_needs_ept_write() -> None:
    env = Env(gpt_perms=(True, False, False))  # guest tables read-only in the EPT
    gva = 0x1000_0000_0000
    env.guest.map(gva, 0x1000, K4)
    env.ept.map(0x1000, 0x5000, K4)
    before = env.mem.snapshot()
    assert env.ref(gva, R, set_ad=True).fault == Fault.EPT_VIOLATION
    assert env.mem.snapshot() == before
    for level in (3, 2, 1, 0):
        env.poke(env.entry_hpa(gva, level), a=1)
    t = env.ref(gva, R, set_ad=True)
    assert t.ok and t.writes == []
    assert env.ref(gva, W, set_ad=True).fault == Fault.EPT_VIOLATION  # D needs a write-back


# ---- shadow tables and the shadow walk -----------------------------------------------------------


def _shadow_env():
    env = Env()
    env.guest.map(0x1000_0000_0000, 0x0, M2, writable=True, user=True)  # over EPT 4K
    env.guest.map(0x1000_0020_0000, 0x20_0000, M2, writable=False)  # over EPT 2M
    env.guest.map(0x1000_0040_0000, 0x40_0000, K4, nx=True)  # 4K over 2M
    env.guest.map(0x1000_4000_0000, 0x4000_0000, G1, user=True)  # 1G over 2M + split
    env.guest.map(0x1000_0040_1000, 0x60_0000, K4)  # exec-only EPT
    env.ept.map(0x60_0000, HPA_BASE + 0x60_0000, K4, r=False, w=False, x=True)
    for i in range(512):
        if i != 7:
            env.ept.map(i * 0x1000, HPA_BASE + i * 0x1000, K4, w=i % 3 != 0, x=i % 5 != 0)
    env.ept.map(0x20_0000, HPA_BASE + 0x20_0000, M2)
    env.ept.map(0x40_0000, HPA_BASE + 0x40_0000, M2, x=False)
    for i in range(512):
        gpa = 0x4000_0000 + i * 0x20_0000
        if i == 3:
            for j in range(512):
                env.ept.map(gpa + j * 0x1000, 0x40_0000_0000 + i * 0x20_0000 + j * 0x1000, K4)
        elif i != 9:
            env.ept.map(gpa, 0x40_0000_0000 + i * 0x20_0000, M2)
    sh = ShadowTables(env.mem, env.halloc, gcr3=env.guest.cr3, eptp=env.ept.eptp)
    return env, sh


def test_shadow_prepopulate_matches_reference() -> None:
    env, sh = _shadow_env()
    sh.prepopulate()
    probes = [0x1000_0000_0000 + i * 0x1000 + 0x18 for i in range(0, 512, 37)] + [
        0x1000_0000_7008,
        0x1000_0020_0010,
        0x1000_0040_0020,
        0x1000_4000_0008,
        0x1000_4120_0008,
        0x1000_4000_0000 + 9 * 0x20_0000,
        0x1000_0040_1000,
        0x2000_0000_0000,
    ]
    for gva in probes:
        for kind in (R, W, F):
            for user in (False, True):
                ref = env.ref(gva, kind, user)
                sw = walk_shadow(env.mem, sh.scr3, gva, kind, user)
                if sw.ok:
                    assert ref.ok and sw.hpa == ref.hpa and sw.pte_hpa == ref.pte_hpa, hex(gva)
                    assert sw.size == min(ref.guest_level, ref.ept_level)
                    assert (sw.w, sw.x, sw.u) == (ref.w, ref.x, ref.u)
                elif gva >> 30 != 0x1000_4000_0000 >> 30:  # the lazy 1G page is not filled
                    # A shadow fault is either architectural or an execute-only page.
                    assert not ref.ok or (ref.r is False), hex(gva)
    # Guest 2M over EPT 4K splits into 4K shadow leaves, each pointing back at the PDE.
    pde_gpa = env.guest.leaf_pte_gpa(0x1000_0000_0000)[1]
    leaves = sh.derived(pde_gpa)
    assert len(leaves) == 511  # one EPT hole
    e = ShadowPTE.from_bits(env.mem.read64(leaves[1]))
    assert (e.p, e.ps, e.glevel, e.bp, e.a, e.d) == (1, 0, 1, 1, 1, 1)
    assert PT_BASE_DEFAULT + e.gpt_page * 4096 + 8 * (
        (0x1000_0000_0000 >> 21) & 511
    ) == env.leaf_hpa(0x1000_0000_0000)
    e2 = ShadowPTE.from_bits(
        env.mem.read64(sh.derived(env.guest.leaf_pte_gpa(0x1000_0020_0000)[1])[0])
    )
    assert (e2.p, e2.ps, e2.rw, e2.glevel) == (1, 1, 0, 1)
    # Execute-only EPT: the shadow leaf is not present.
    assert sh.derived(env.guest.leaf_pte_gpa(0x1000_0040_1000)[1]) == []
    # Guest 1G over 511 EPT 2M regions and one 4K-split: lazy.
    g1 = env.guest.leaf_pte_gpa(0x1000_4000_0000)[1]
    assert sh.is_lazy(g1) and sh.derived(g1) == []
    assert sh.fill(0x1000_4060_5008)
    assert (
        walk_shadow(env.mem, sh.scr3, 0x1000_4060_5008, R, True).hpa
        == env.ref(0x1000_4060_5008, R, True).hpa
        == 0x40_0060_5008
    )
    assert sh.fill(0x1000_4140_0008)
    t = walk_shadow(env.mem, sh.scr3, 0x1000_4140_0008, R, False)
    assert t.size == M2 and t.hpa == 0x40_0140_0008
    assert not sh.fill(0x1000_4000_0000 + 9 * 0x20_0000)  # EPT hole
    assert len(sh.derived(g1)) == 2


def test_shadow_split_leaf_bits() -> None:
    env, sh = _shadow_env()
    sh.prepopulate()
    pde_gpa = env.guest.leaf_pte_gpa(0x1000_0000_0000)[1]
    for slot in sh.derived(pde_gpa):
        e = ShadowPTE.from_bits(env.mem.read64(slot))
        i = (e.pfn << 12) - HPA_BASE >> 12
        assert e.rw == int(i % 3 != 0) and e.xd == int(i % 5 == 0) and e.us == 1


def test_shadow_resync_and_zap() -> None:
    env, sh = _shadow_env()
    sh.prepopulate()
    gva = 0x1000_0020_0000
    pde_gpa = env.guest.leaf_pte_gpa(gva)[1]
    pages = len(sh.pages)
    # The guest remaps its read-only 2M page over the EPT-4K range.
    env.poke(env.guest.to_hpa(pde_gpa), pfn=0, rw=1)
    assert sh.resync(pde_gpa) == 511
    assert len(sh.pages) == pages + 1
    assert walk_shadow(env.mem, sh.scr3, gva + 0x4008, W, False).hpa == HPA_BASE + 0x4008
    env.poke(env.guest.to_hpa(pde_gpa), p=0)
    assert sh.resync(pde_gpa) == 0 and len(sh.pages) == pages
    assert walk_shadow(env.mem, sh.scr3, gva + 0x3008, R, False).fault == Fault.SHADOW_PF
    env.poke(env.guest.to_hpa(pde_gpa), p=1, pfn=0x20_0000 >> 12)
    assert sh.resync(pde_gpa) == 1
    assert sh.zap(pde_gpa) == 1 and sh.derived(pde_gpa) == []


# ---- TLB, PLRU, PWC ------------------------------------------------------------------------------


def test_plru_victim_order() -> None:
    p = Plru(4)
    assert p.victim() == 0
    for i in range(4):
        p.touch(i)
    assert p.victim() == 0
    p.touch(0)
    assert p.bits[1:] == [1, 1, 0] and p.victim() == 2
    p.touch(2)
    assert p.bits[1:] == [0, 1, 1] and p.victim() == 1
    p.touch(1)
    assert p.victim() == 3
    p8 = Plru(8)
    order = []
    for _ in range(8):
        v = p8.victim()
        order.append(v)
        p8.touch(v)
    assert order == [0, 4, 2, 6, 1, 5, 3, 7]


def test_pwc_policy() -> None:
    pwc = PageWalkCache(2)
    for gpn in (1, 2, 3, 4, 5):
        assert pwc.lookup(gpn) is None
        pwc.fill(NestedEntry(gpn, gpn + 100, True, True, True, 0))
    # fills 1, 2 into the invalid entries; 3 -> ptr 0; 4 -> ptr 1; 5 -> ptr 0
    assert [e.gpn for e in pwc.entries] == [5, 4] and pwc.ptr == 1
    pwc.flush()
    pwc.fill(NestedEntry(9, 1, True, True, True, 0))
    assert [e and e.gpn for e in pwc.entries] == [9, None] and pwc.ptr == 1


class Bench:
    """An MMUModel and a VMM on hand-made scenarios."""

    def __init__(self, guest, ept, mode="ept", **mmu) -> None:
        self.scenario = Scenario(vpid=5, mode=mode, guest=tuple(guest), ept=tuple(ept))
        self.mmu = MMUModel(**mmu)
        self.vmm = VMM(self.mmu)
        run(self.vmm.setup(self.scenario))

    def access(self, gva, kind=R, user=False, data=0):
        return run(self.vmm.access(gva, kind, user, data))

    def hw(self, gva, kind=R, user=False, data=0):
        return self.mmu.request(gva, kind, user, data)

    def vpns(self):
        return [e.vpn if e.valid else None for e in self.mmu.tlb]


PAGES = [GuestMapping(0x1000_0000_0000 + i * 0x1000, 0x1000 * i, K4) for i in range(1, 9)]
PAGES_EPT = [EptMapping(0, HPA_BASE, M2)]


def test_tlb_fill_and_plru_replacement() -> None:
    b = Bench(PAGES, PAGES_EPT, entries=4)
    base = 0x1000_0000_0000 >> 12
    for i in range(1, 5):
        assert not b.hw((base + i) << 12).hit
    assert b.vpns() == [base + 1, base + 2, base + 3, base + 4]
    b.hw((base + 5) << 12)  # PLRU victim: entry 0
    assert b.vpns()[0] == base + 5
    assert b.hw((base + 2) << 12).hit  # touches entry 1
    b.hw((base + 6) << 12)  # victim now entry 2
    assert b.vpns() == [base + 5, base + 2, base + 6, base + 4]
    b.mmu.write_csr("FLUSH_GVA", (base + 2) << 12)
    b.mmu.write_csr("FLUSH", MMU_CSR["FLUSH"].pack(op=FlushOp.INVLPG, vpid=5))
    b.hw((base + 7) << 12)  # lowest invalid entry first
    assert b.vpns() == [base + 5, base + 7, base + 6, base + 4]


def test_fragmented_superpage_fills_small_entries() -> None:
    b = Bench(
        [GuestMapping(0x1000_0000_0000, 0, M2)],
        [EptMapping(i * 0x1000, HPA_BASE + 0x10_0000 * i, K4) for i in range(512)],
    )
    for off in (0x3008, 0x5010, 0x3FF8):
        r = b.hw(0x1000_0000_0000 + off)
        assert r.size == K4 and r.hpa == HPA_BASE + 0x10_0000 * (off >> 12) + (off & 0xFFF)
    entries = b.mmu.valid_entries()
    assert len(entries) == 2 and all(e.size == K4 for _, e in entries)
    assert len({e.pte for _, e in entries}) == 1
    assert b.mmu.read_csr("HITS") == 1


def test_non_serving_hit_rewalks() -> None:
    b = Bench(PAGES, PAGES_EPT)
    gva = PAGES[0].gva
    r = b.hw(gva, R)
    assert not r.hit and r.walk_reads > 0
    ((idx, e),) = b.mmu.valid_entries()
    assert not e.dirty
    r = b.hw(gva + 8, W, data=7)  # entry found, not dirty: walk sets D
    assert not r.hit and r.fault == Fault.NONE
    ((idx2, e2),) = b.mmu.valid_entries()
    assert e2.dirty and idx2 == idx
    assert b.hw(gva + 16, W, data=8).hit
    assert b.mmu.mem.read64(HPA_BASE + 0x1008) == 7
    r = b.hw(gva, R, user=True)  # user access to a supervisor entry: re-walk
    assert not r.hit and r.fault == Fault.GUEST_PF and b.mmu.valid_entries() == []
    c = {n: b.mmu.read_csr(n) for n in COUNTERS}
    assert c["HITS"] == 1 and c["MISSES"] == 3 and c["FAULTS"] == 1 and c["STORES"] == 2
    assert c["FLUSHED"] == 0 and c["FLUSHES"] == 0
    assert c["WALK_WRITES"] == 5  # A on 4 levels, then D on the leaf


def test_pwc_cuts_ept_reads() -> None:
    b = Bench(PAGES, PAGES_EPT)
    first = b.hw(PAGES[0].gva)
    second = b.hw(PAGES[1].gva)
    # The PWC caches EPT leaves: the guest's table pages all sit in the GPT region's first 2M
    # EPT page, so cold, the first table GPA walks the EPT (3 reads) and the other three hit;
    # + 4 entry reads + 3 for the final GPA's 2M page. Warm: every GPA hits, the 4 entry reads
    # remain.
    assert first.walk_reads == 3 + 4 + 3
    assert second.walk_reads == 4
    assert b.mmu.read_csr("PWC_HITS") == 3 + 5
    b.mmu.write_csr("CTRL", MMU_CSR["CTRL"].pack(mode=0, pwc_en=0, vpid=5))
    assert b.hw(PAGES[2].gva).walk_reads == 19


def test_csr_file() -> None:
    m = MMUModel()
    assert m.read_csr("ID") == MMU_ID
    assert m.read_csr("CTRL") == MMU_CSR["CTRL"].reset
    m.write_csr("GCR3", 0xFFFF_FFFF_FFFF_FFFF)
    assert m.read_csr("GCR3") == 0xFFFF_FFFF_FFFF_FFFF
    m.write_csr("HITS", 5)
    assert m.read_csr("HITS") == 0 and m.read_csr("FLUSH") == 0
    m.write_csr("FLUSH", MMU_CSR["FLUSH"].pack(op=FlushOp.ALL))
    assert m.read_csr("FLUSHES") == 1
    with pytest.raises(KeyError):
        m.read_csr("NOPE")
    with pytest.raises(ValueError):
        MMUModel(entries=12)


def test_flush_ops() -> None:
    b = Bench(PAGES, PAGES_EPT, entries=8)
    for p in PAGES[:3]:
        b.hw(p.gva)
    b.mmu.write_csr("CTRL", MMU_CSR["CTRL"].pack(mode=0, pwc_en=1, vpid=6))
    b.hw(PAGES[0].gva)  # same page, other VPID
    assert len(b.mmu.valid_entries()) == 4
    b.mmu.write_csr("FLUSH_GVA", PAGES[0].gva + 0x123)
    b.mmu.write_csr("FLUSH", MMU_CSR["FLUSH"].pack(op=FlushOp.INVLPG, vpid=5))
    assert len(b.mmu.valid_entries()) == 3 and b.mmu.read_csr("FLUSHED") == 1
    b.mmu.write_csr("FLUSH", MMU_CSR["FLUSH"].pack(op=FlushOp.VPID, vpid=5))
    assert [e.vpid for _, e in b.mmu.valid_entries()] == [6]
    assert any(e is not None for e in b.mmu.pwc.entries)
    b.mmu.write_csr("FLUSH", MMU_CSR["FLUSH"].pack(op=FlushOp.PWC))
    assert b.mmu.valid_entries() == [] and all(e is None for e in b.mmu.pwc.entries)
    assert b.mmu.read_csr("FLUSHES") == 3 and b.mmu.read_csr("FLUSHED") == 4


# ---- WP faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["ept", "shadow"])
def test_wp_flush_removes_exactly_the_derived_entries(mode: str) -> None:
    guest = [
        GuestMapping(0x1000_0000_0000, 0, M2, user=True),
        GuestMapping(0x1000_0020_0000, 0x20_0000, K4),
        GuestMapping(0x1000_0020_1000, 0x20_1000, K4),
    ]
    ept = [EptMapping(i * 0x1000, HPA_BASE + i * 0x1000, K4) for i in range(512)] + [
        EptMapping(0x20_0000, HPA_BASE + 0x20_0000, M2)
    ]
    b = Bench(guest, ept, mode=mode, entries=16)
    for gva in (
        0x1000_0000_3000,
        0x1000_0000_5000,
        0x1000_0020_0000,
        0x1000_0000_9000,
        0x1000_0020_1000,
    ):
        b.access(gva)
    pde_hpa = b.vmm.pte_hpa(0x1000_0000_0000)
    before = b.mmu.valid_entries()
    derived = [i for i, e in before if e.pte_valid and e.pte == pde_hpa >> 3]
    assert len(derived) == 3
    flushes = b.mmu.read_csr("FLUSHES")
    info = run(b.vmm.guest_pte_write(0x1000_0000_0000, gpa=0x20_0000, writable=False))
    wp = [e for e in b.vmm.events if e["type"] == "wp"]
    assert len(wp) == 1 and wp[0]["flushed"] == 3 and wp[0]["hpa"] == pde_hpa
    assert b.mmu.read_csr("WP_HPA") == pde_hpa and b.mmu.read_csr("WP_DATA") == info["new"]
    assert b.mmu.read_csr("FLUSHES") == flushes + 1
    after = {i for i, _ in b.mmu.valid_entries()}
    kept = {i for i, _ in before} - set(derived)
    assert kept <= after  # the window entry may have been added
    for i in kept:
        assert b.mmu.tlb[i] == dict(before)[i]
    assert b.mmu.mem.read64(pde_hpa) == info["new"]
    r = b.access(0x1000_0000_3008)
    assert (r["hpa"], r["fault"], r["hit"]) == (HPA_BASE + 0x20_3008, None, False)
    assert b.access(0x1000_0000_3008, W)["fault"] == "guest_pf"
    if mode == "shadow":
        assert wp[0]["resynced"] == 1


def test_ept_mode_pte_store_without_cached_entries_is_not_protected() -> None:
    b = Bench(PAGES, PAGES_EPT)
    run(b.vmm.guest_pte_write(PAGES[0].gva, gpa=0x9000))
    assert [e["type"] for e in b.vmm.events] == ["setup", "pte_write"]
    assert b.mmu.read_csr("STORES") == 1
    assert b.access(PAGES[0].gva + 8)["hpa"] == HPA_BASE + 0x9008


# ---- VMM: shadow faults and runtime verification -------------------------------------------------


def test_shadow_pf_resolutions() -> None:
    guest = [
        GuestMapping(0x1000_0000_0000, 0x1000, K4),
        GuestMapping(0x1000_0000_1000, 0x2000, K4, writable=False),
        GuestMapping(0x1000_4000_0000, 0x4000_0000, G1),
    ]
    ept = [
        EptMapping(0x1000, 0x10_1000, K4, r=False, w=False, x=True),
        EptMapping(0x2000, 0x10_2000, K4),
    ]
    ept += [
        EptMapping(0x4000_0000 + i * 0x20_0000, 0x40_0000_0000 + i * 0x20_0000, M2)
        for i in range(1, 512)
    ]
    ept += [EptMapping(0x4000_0000 + i * 0x1000, 0x50_0000_0000 + i * 0x1000, K4) for i in range(4)]
    b = Bench(guest, ept, mode="shadow")
    r = b.access(0x1000_0000_0010, F)  # execute-only EPT: emulated
    assert (r["hpa"], r["fault"], r["verified"]) == (0x10_1010, None, True)
    assert [e["type"] for e in b.vmm.events[-3:]] == ["switch", "shadow_fill", "emulate"]
    r = b.access(0x1000_0000_1010, W)  # read-only guest page: the fault is the answer
    assert r["fault"] == "guest_pf" and b.vmm.events[-1]["type"] == "shadow_pf"
    r = b.access(0x1000_4000_2010, R)  # lazy 1G page: fill, retry
    assert (r["hpa"], r["hit"]) == (0x50_0000_2010, False)
    assert b.vmm.events[-1] == {
        "op": None,
        "type": "shadow_fill",
        "gva": 0x1000_4000_2010,
        "present": True,
    }
    assert b.access(0x1000_4000_2018, R)["hit"]
    r = b.access(0x1000_4000_9010, R)  # EPT hole inside the lazy page
    assert r["fault"] == "ept_violation"


def test_runtime_verification_catches_injected_fault() -> None:
    b = Bench(PAGES, PAGES_EPT, mode="shadow")
    gva = PAGES[2].gva + 0x40
    good = b.access(gva)
    assert good["verified"] and good["hpa"] == HPA_BASE + 0x3040
    ((idx, _),) = [(i, e) for i, e in b.mmu.valid_entries() if e.covers(gva >> 12)]
    run(b.vmm.inject(idx, 0x10))
    r = b.access(gva, R)
    assert r["hit"] and not r["verified"]
    assert (r["hpa"], r["fault"]) == (good["hpa"], None)  # the corrected answer
    mism = [e for e in b.vmm.events if e["type"] == "rv_mismatch"]
    assert len(mism) == 1 and mism[0]["hw_hpa"] == HPA_BASE + 0x3040 + (0x10 << 12)
    assert b.vmm.events[-1]["type"] == "flush" and b.vmm.events[-1]["reason"] == "rv"
    r = b.access(gva, R)
    assert not r["hit"] and r["verified"] and r["hpa"] == good["hpa"]
    # Also through run_scenario: an inject op in the middle of shadow-mode traffic.
    s = Scenario(
        vpid=1,
        mode="shadow",
        guest=tuple(PAGES),
        ept=tuple(PAGES_EPT),
        ops=(AccessOp(gva, R), InjectOp(0, 0x3), AccessOp(gva, R), AccessOp(gva, W, data=5)),
    )
    res = run_model(s)
    assert [(x["hpa"], x["verified"]) for x in res.results] == [
        (HPA_BASE + 0x3040, True),
        (HPA_BASE + 0x3040, False),
        (HPA_BASE + 0x3040, True),
    ]


# ---- whole scenarios against the reference and an independent oracle -----------------------------


async def _check_scenario(s: Scenario, probe_after_writes: bool, **mmu) -> VMM:
    vmm = VMM(MMUModel(**mmu))
    await vmm.setup(s)
    oracle = Oracle(s)

    async def check(i: int, gva: int, kind: AccessKind, user: bool, data: int = 0) -> None:
        exp = oracle(gva, kind, user)
        ref = vmm.reference(gva, kind, user)
        assert (fault_name(ref.fault), ref.arch()[1]) == exp, f"op {i} {gva:#x}: ref vs oracle"
        vmm.op = i
        got = await vmm.access(gva, kind, user, data)
        assert (got["fault"], got["hpa"]) == exp, f"op {i} {gva:#x} {kind!r}: {got} != {exp}"
        if vmm.mode == "shadow":
            assert got["verified"]

    for i, op in enumerate(s.ops):
        if isinstance(op, AccessOp):
            await check(i, op.gva, op.kind, op.user, op.data)
            continue
        if isinstance(op, PteWriteOp):
            oracle.apply(op)
        await vmm.run_op(i, op)
        if probe_after_writes and isinstance(op, PteWriteOp | SwitchOp):
            for g in s.guest:
                await check(i, g.gva + 0x18, R, False)
                await check(i, g.gva + g.size.bytes - 8, W, True, 0x55)
    assert not [e for e in vmm.events if e["type"] in ("rv_mismatch", "pte_write_lost")]
    return vmm


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    entries=st.sampled_from([2, 4, 32]),
    pwc=st.sampled_from([1, 8]),
    mode=st.sampled_from(["ept", "shadow"]),
)
def test_model_matches_reference_on_random_scenarios(seed, entries, pwc, mode) -> None:
    s = random_scenario(seed, n_ops=120, mode=mode, big=False)
    run(_check_scenario(s, probe_after_writes=False, entries=entries, pwc_entries=pwc))


@pytest.mark.parametrize("seed", [1, 2])
def test_results_architectural_after_every_pte_write(seed: int) -> None:
    s = random_scenario(seed, n_ops=150, p_pte_write=0.15, p_switch=0.06)
    vmm = run(_check_scenario(s, probe_after_writes=True, entries=8))
    types = {e["type"] for e in vmm.events}
    assert {"pte_write", "wp", "switch"} <= types


def test_memory_and_results_independent_of_tlb_geometry() -> None:
    s = random_scenario(7, n_ops=200)
    runs = []
    for params in (
        {"entries": 2, "pwc_entries": 1},
        {"entries": 32, "pwc_entries": 8},
        {"entries": 256, "pwc_entries": 64},
    ):
        mmu = MMUModel(**params)
        res = run(run_scenario(s, mmu))
        runs.append((res, mmu.mem.snapshot()))
    for res, snap in runs[1:]:
        assert res.arch() == runs[0][0].arch()
        assert snap == runs[0][1]
    assert runs[0][0].counters["HITS"] < runs[1][0].counters["HITS"]


def test_random_scenario_is_deterministic_and_covering() -> None:
    a, b = random_scenario(3, n_ops=300), random_scenario(3, n_ops=300)
    assert a == b and a != random_scenario(4, n_ops=300)
    res = run_model(a)
    assert len(res.results) == a.n_accesses()
    faults = {r["fault"] for r in res.results}
    assert faults == {None, "guest_pf", "ept_violation"}
    assert any(r["hit"] for r in res.results)
    sizes = {
        (g.size, m.size)
        for g in a.guest
        for m in a.ept
        if m.gpa < g.gpa + g.size.bytes and g.gpa < m.gpa + m.size.bytes
    }
    assert {(M2, K4), (K4, M2), (G1, M2), (K4, G1), (M2, M2)} <= sizes


# ---- scenario files and outputs ------------------------------------------------------------------


def test_basic_example_scenario() -> None:
    s = load_scenario(DATA / "basic.toml")
    res = run_model(s)
    got = [(r["gva"], r["hpa"], r["fault"]) for r in res.results]
    assert got == [
        (0x7F00_0000_0123, 0x1_0020_0123, None),  # guest 4K over EPT 2M
        (0x7F00_0000_0123, 0x1_0020_0123, None),  # ... now a TLB hit
        (0x7F00_0020_1008, 0x2_0000_3008, None),  # guest 2M over EPT 4K
        (0x7F00_0020_1008, None, "guest_pf"),  # write to a read-only page
        (0x7F00_0000_0123, 0x1_0020_0123, None),  # shadow mode: same answer
        (0x7F00_0000_0123, 0x1_0030_0123, None),  # after the guest remapped it
        (0x7F00_4000_0000, None, "ept_violation"),  # EPT hole
        (0x7F00_0000_0123, None, "guest_pf"),  # user access, supervisor page
    ]
    assert res.results[1]["hit"] and all(r["verified"] for r in res.results[4:])
    types = [e["type"] for e in res.events]
    assert types.count("switch") == 1 and "wp" in types and "flush" in types
    assert set(res.counters) == set(COUNTERS)


def test_write_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    res = run_model(load_scenario(DATA / "basic.toml"))
    out = tmp_path / "out"
    write_outputs(res, out)
    lines = (out / "results.jsonl").read_text().splitlines()
    assert [json.loads(x)["hpa"] for x in lines] == [r["hpa"] for r in res.results]
    assert all(set(ARCH_FIELDS) <= set(json.loads(x)) for x in lines)
    assert len((out / "events.jsonl").read_text().splitlines()) == len(res.events)
    assert json.loads((out / "counters.json").read_text()) == res.counters
    assert sorted(p.name for p in out.iterdir()) == [
        "counters.json",
        "events.jsonl",
        "results.jsonl",
    ]
    # A failure while publishing leaves no temporary files and no new partial output.
    out2 = tmp_path / "out2"
    real = os.replace
    calls = []

    def failing(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("disk full")
        real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError):
        write_outputs(RunResult(res.results, res.events, res.counters), out2)
    assert list(out2.iterdir()) == []


def test_window_mapping() -> None:
    b = Bench(PAGES, PAGES_EPT)
    pte_gpa = b.vmm.guest.leaf_pte_gpa(PAGES[0].gva)[1]
    t = b.vmm.reference(WINDOW_GVA + (pte_gpa - GPT_GPA_BASE), W, False)
    assert t.ok and t.hpa == b.vmm.pte_hpa(PAGES[0].gva) and t.size == M2 and not t.x
    assert b.vmm.reference(WINDOW_GVA, R, True).fault == Fault.GUEST_PF


def test_testbench_helpers() -> None:
    """The helpers the cocotb race tests use: pte_store, backdoor_remap, handle_wp."""
    import random

    b = Bench(PAGES, PAGES_EPT)
    gva, new_gpa = b.vmm.mappable_page(random.Random(1))
    assert any(p.gva == gva for p in PAGES) and new_gpa != b.vmm.reference(gva, R, False).gpa
    pte_gva, new = b.vmm.pte_store(gva, gpa=new_gpa)
    assert b.vmm.reference(pte_gva, W, False).hpa == b.vmm.pte_hpa(gva)
    assert X86["pfn"].get(new) == new_gpa >> 12
    b.access(gva)  # cache it: the PTE store will fault
    resp = b.hw(pte_gva, W, data=new)
    assert resp.fault == Fault.WP and resp.flushed == 1
    run(b.vmm.handle_wp(pte_gva, resp, new))
    assert b.mmu.mem.read64(b.vmm.pte_hpa(gva)) == new
    assert b.access(gva)["hpa"] == HPA_BASE + new_gpa
    b.vmm.backdoor_remap(gva, 0x1000)
    b.mmu.write_csr("FLUSH", MMU_CSR["FLUSH"].pack(op=FlushOp.VPID, vpid=5))
    assert b.access(gva + 8)["hpa"] == HPA_BASE + 0x1008
    with pytest.raises(ValueError):
        b.vmm.pte_store(gva, gpa=0x1001)
