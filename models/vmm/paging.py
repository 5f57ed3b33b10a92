"""x86-64 guest paging, EPT and shadow tables: builders, and the reference walks.

Everything here reads and writes real table entries in a :class:`~models.vmm.memory.Memory`, in
the layouts of :mod:`vmassist.formats.mmu`, so the same tables serve the functional model and the
RTL. The walks follow ``docs/mmu.md`` exactly; :func:`walk_nested` is shared by the reference
(:func:`ref_translate`, pure) and the functional MMU model (page-walk cache and A/D write-backs).

Address conventions: a GVA is handled as its low :data:`~vmassist.formats.mmu.VA_BITS` bits (what
the hardware sees); GPAs and HPAs are byte addresses below ``2**PA_BITS``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from vmassist.formats.mmu import (
    GPT_GPA_BASE,
    GPT_PAGES,
    PA_BITS,
    PAGE_SHIFT,
    TABLE_HPA_MIN,
    VA_BITS,
    AccessKind,
    Fault,
    PageSize,
    level_index,
    level_shift,
    rsvd_pfn_mask,
)

from .bits import EPT, SHADOW, X86
from .memory import PAGE_BYTES, Memory, SparseMemory

__all__ = [
    "VA_MASK",
    "PA_MASK",
    "PT_BASE_DEFAULT",
    "HOST_TABLE_BASE",
    "GUEST_TABLE_PAGES",
    "WINDOW_GVA",
    "EPT_MEMTYPE_WB",
    "canonical",
    "page_bytes",
    "zero_page",
    "Allocator",
    "EptResult",
    "EptRegion",
    "GuestLeaf",
    "Translation",
    "NestedEntry",
    "NestedCache",
    "ept_walk",
    "ept_regions",
    "guest_leaf",
    "walk_nested",
    "walk_shadow",
    "ref_translate",
    "GuestTables",
    "EptTables",
    "ShadowTables",
]

VA_MASK = (1 << VA_BITS) - 1
PA_MASK = (1 << PA_BITS) - 1
_PAGE_MASK = PA_MASK & ~(PAGE_BYTES - 1)

PT_BASE_DEFAULT = TABLE_HPA_MIN
"""HPA of the guest page-table region (GPA :data:`GPT_GPA_BASE` maps here, contiguously)."""
HOST_TABLE_BASE = TABLE_HPA_MIN + GPT_PAGES * PAGE_BYTES
"""First HPA of the EPT and shadow table pages, right after the guest page-table region."""
GUEST_TABLE_PAGES = 1 << SHADOW["gpt_page"].width
"""Guest page-table pages the VMM allocates: the shadow back-pointer's ``gpt_page`` reach."""
WINDOW_GVA = 0xFFFF_FF80_0000_0000
"""GVA of the guest's supervisor window onto its own page tables (PML4 slot 511, 2M pages)."""
EPT_MEMTYPE_WB = 6

# Entry fields, taken from the layouts once (hot paths use these helpers).
_XP, _XRW, _XUS, _XA, _XD, _XPS, _XPFN, _XXD = (
    X86[n] for n in ("p", "rw", "us", "a", "d", "ps", "pfn", "xd")
)
_ER, _EW, _EX, _EPS, _EPFN = (EPT[n] for n in ("r", "w", "x", "ps", "pfn"))
_SGLEVEL, _SBP, _SPAGE = (SHADOW[n] for n in ("glevel", "bp", "gpt_page"))
_XA_BIT = X86.encode(a=1)
_XD_BIT = X86.encode(d=1)
_RSVD_X86 = tuple(rsvd_pfn_mask(level, ept=False) for level in range(4))
_RSVD_EPT = tuple(rsvd_pfn_mask(level, ept=True) for level in range(4))


def canonical(gva: int) -> int:
    """The canonical 64-bit form of a 48-bit linear address (bit 47 sign-extended)."""
    gva &= VA_MASK
    if gva >> (VA_BITS - 1):
        gva |= ((1 << 64) - 1) & ~VA_MASK
    return gva


def page_bytes(level: int) -> int:
    """Bytes mapped by a leaf at ``level`` (0: 4 KiB, 1: 2 MiB, 2: 1 GiB, 3: 512 GiB)."""
    return 1 << level_shift(level)


def zero_page(mem: Memory, addr: int) -> None:
    """Clear one 4 KiB page of ``mem`` (fast on :class:`SparseMemory`)."""
    if isinstance(mem, SparseMemory):
        mem.zero_page(addr)
        return
    for off in range(0, PAGE_BYTES, 8):
        mem.write64(addr + off, 0)


class Allocator:
    """Allocator of 4 KiB table pages in ``[base, base + pages * 4096)``.

    Fresh pages are assumed to read as zero (memory never written reads 0); a page freed and then
    handed out again is cleared through ``zero`` first. Freed pages are reused lowest first, so
    the layout is deterministic.

    Parameters
    ----------
    base : int
        First address (page aligned).
    pages : int
        Capacity in pages.
    zero : callable, optional
        Clears a reused page; without it, freed pages are never reused.
    name : str
        For error messages.

    Raises
    ------
    MemoryError
        From :meth:`alloc`, when the region is exhausted.
    """

    def __init__(
        self,
        base: int,
        pages: int,
        *,
        zero: Callable[[int], None] | None = None,
        name: str = "table",
    ) -> None:
        if base & (PAGE_BYTES - 1) or pages <= 0:
            raise ValueError(f"allocator {name}: bad region base={base:#x} pages={pages}")
        self.base = base
        self.pages = pages
        self.name = name
        self._zero = zero
        self._next = 0
        self._free: list[int] = []
        self._used: set[int] = set()

    def alloc(self) -> int:
        """A page address; the page reads as zero."""
        if self._free and self._zero is not None:
            addr = heapq.heappop(self._free)
            self._zero(addr)
        else:
            if self._next >= self.pages:
                raise MemoryError(f"{self.name} allocator: all {self.pages} pages in use")
            addr = self.base + self._next * PAGE_BYTES
            self._next += 1
        self._used.add(addr)
        return addr

    def free(self, addr: int) -> None:
        """Give back a page from :meth:`alloc`."""
        self._used.remove(addr)
        if self._zero is not None:
            heapq.heappush(self._free, addr)

    def allocated(self) -> list[int]:
        """Addresses of the pages in use, ascending."""
        return sorted(self._used)

    def __contains__(self, addr: int) -> bool:
        return self.base <= addr < self.base + self.pages * PAGE_BYTES

    def __len__(self) -> int:
        return len(self._used)


# ---- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EptResult:
    """Outcome of one EPT walk of a GPA.

    ``level`` is the leaf level, or the level whose entry stopped the walk (fault).
    ``r w x`` are ANDed across the levels walked. ``hpa`` is meaningful when ``ok``.
    """

    ok: bool
    level: int
    hpa: int
    r: bool
    w: bool
    x: bool
    reads: int


@dataclass(frozen=True)
class EptRegion:
    """A GPA range ``[gpa, gpa + page_bytes(level))`` translated alike by the EPT.

    ``hpa`` is the HPA of ``gpa`` when ``ok``; a region that is not ``ok`` has no valid leaf
    (not present, misconfigured or reserved entry) at ``level`` or above.
    """

    gpa: int
    level: int
    ok: bool
    hpa: int = 0
    r: bool = False
    w: bool = False
    x: bool = False


@dataclass(frozen=True)
class GuestLeaf:
    """The guest leaf entry that maps a GVA, found by a software walk (no permission check)."""

    level: int  #: leaf level (page size)
    pte_gpa: int  #: GPA of the leaf entry
    pte_hpa: int  #: HPA of the leaf entry
    value: int  #: the entry
    gpa: int  #: the GPA the GVA translates to
    rw: bool  #: permissions, ANDed (RW, US) and ORed (XD) across the levels
    us: bool
    xd: bool


@dataclass
class Translation:
    """A translation as the TLB would hold it, or the fault a walk reports.

    Members
    -------
    fault : Fault
        NONE, GUEST_PF or EPT_VIOLATION (2-D walk), SHADOW_PF (shadow walk).
    hpa : int
        HPA of the access (0 unless ``fault`` is NONE).
    size : PageSize
        TLB entry size: ``min(guest leaf, EPT leaf)`` (2-D) or the shadow leaf's.
    r, w, x, u, dirty : bool
        TLB entry permissions (``docs/mmu.md``).
    pte_hpa : int or None
        Byte HPA of the guest leaf entry the translation derives from (back-pointer).
    reads : int
        Memory reads the walk issued (with the page-walk cache given to it).
    writes : list of (int, int)
        A/D write-backs ``(hpa, new value)``, in walk order (performed only with ``set_ad``).
    pwc_hits : int
        Page-walk-cache lookups that hit.
    """

    fault: Fault
    hpa: int = 0
    gpa: int = 0
    size: PageSize = PageSize.SIZE_4K
    guest_level: int | None = None
    ept_level: int | None = None
    r: bool = False
    w: bool = False
    x: bool = False
    u: bool = False
    dirty: bool = False
    pte_hpa: int | None = None
    reads: int = 0
    writes: list[tuple[int, int]] = field(default_factory=list)
    pwc_hits: int = 0

    @property
    def ok(self) -> bool:
        return self.fault == Fault.NONE

    @property
    def ppn(self) -> int:
        """Page number of the entry (HPA >> 12, aligned to :attr:`size`)."""
        return (self.hpa >> PAGE_SHIFT) & ~((1 << (9 * self.size)) - 1)

    def arch(self) -> tuple[Fault, int | None]:
        """``(fault, hpa or None)``: what an access architecturally gives."""
        return (self.fault, self.hpa if self.fault == Fault.NONE else None)


@dataclass(frozen=True)
class NestedEntry:
    """A page-walk-cache entry: the EPT translation of one EPT leaf page (4K, 2M or 1G), its
    page numbers aligned to the leaf's size, so one entry serves every GPA in that page."""

    gpn: int  #: GPA >> 12
    hpn: int  #: HPA >> 12
    r: bool
    w: bool
    x: bool
    level: int  #: EPT leaf level


class NestedCache(Protocol):
    """The page-walk cache as :func:`walk_nested` uses it."""

    def lookup(self, gpn: int) -> NestedEntry | None:
        """The entry for GPA page ``gpn``, counting a hit; None on a miss."""
        ...

    def fill(self, entry: NestedEntry) -> None:
        """Install ``entry`` (after a miss and a successful EPT walk)."""
        ...


# ---- walks ---------------------------------------------------------------------------------------


def _ept_bad(e: int, level: int) -> tuple[bool, bool]:
    """``(bad, leaf)`` for an EPT entry at ``level``: bad = not present, W without R, reserved."""
    r, w, x = _ER.get(e), _EW.get(e), _EX.get(e)
    ps = _EPS.get(e)
    if not (r or w or x) or (w and not r) or (level == 3 and ps):
        return True, False
    leaf = level == 0 or bool(ps)
    pfn = _EPFN.get(e)
    if pfn & (_RSVD_EPT[level] if leaf else _RSVD_EPT[0]):
        return True, leaf
    return False, leaf


def ept_walk(mem: Memory, eptp: int, gpa: int) -> EptResult:
    """Walk the EPT from ``eptp`` for ``gpa`` (levels 3..0), per ``docs/mmu.md``.

    Not present (R=W=X=0), W without R, PS in a PML4E or reserved PFN bits stop the walk
    (``ok`` False, ``level`` where it stopped). Permissions are ANDed across the levels.
    """
    table = eptp & _PAGE_MASK
    r = w = x = True
    reads = 0
    for level in (3, 2, 1, 0):
        e = mem.read64(table + 8 * level_index(gpa, level))
        reads += 1
        bad, leaf = _ept_bad(e, level)
        if bad:
            return EptResult(False, level, 0, False, False, False, reads)
        r, w, x = r and bool(_ER.get(e)), w and bool(_EW.get(e)), x and bool(_EX.get(e))
        if leaf:
            mask = page_bytes(level) - 1
            hpa = ((_EPFN.get(e) << PAGE_SHIFT) & ~mask) | (gpa & mask)
            return EptResult(True, level, hpa, r, w, x, reads)
        table = _EPFN.get(e) << PAGE_SHIFT
    raise AssertionError("unreachable: level 0 is always a leaf")


def ept_regions(mem: Memory, eptp: int, gpa: int, level: int) -> list[EptRegion]:
    """Split the GPA range of a guest leaf at ``level`` (``gpa`` aligned) into EPT regions.

    One region when an EPT leaf at ``level`` or above (or a fault there) covers the whole range;
    otherwise the EPT leaves (and holes) below, in GPA order.
    """
    table = eptp & _PAGE_MASK
    r = w = x = True
    for lv in (3, 2, 1, 0):
        e = mem.read64(table + 8 * level_index(gpa, lv))
        bad, leaf = _ept_bad(e, lv)
        if bad:
            return [EptRegion(gpa, level, False)]
        r, w, x = r and bool(_ER.get(e)), w and bool(_EW.get(e)), x and bool(_EX.get(e))
        if leaf:
            mask = page_bytes(lv) - 1
            hpa = ((_EPFN.get(e) << PAGE_SHIFT) & ~mask) | (gpa & mask)
            return [EptRegion(gpa, level, True, hpa, r, w, x)]
        table = _EPFN.get(e) << PAGE_SHIFT
        if lv == level:
            out: list[EptRegion] = []
            _ept_enum(mem, table, lv - 1, gpa, r, w, x, out)
            return out
    raise AssertionError("unreachable")


def _ept_enum(
    mem: Memory, table: int, level: int, base: int, r: bool, w: bool, x: bool, out: list[EptRegion]
) -> None:
    for i in range(512):
        gpa = base + (i << level_shift(level))
        e = mem.read64(table + 8 * i)
        bad, leaf = _ept_bad(e, level)
        if bad:
            out.append(EptRegion(gpa, level, False))
            continue
        nr, nw, nx = r and bool(_ER.get(e)), w and bool(_EW.get(e)), x and bool(_EX.get(e))
        if leaf:
            out.append(EptRegion(gpa, level, True, _EPFN.get(e) << PAGE_SHIFT, nr, nw, nx))
        else:
            _ept_enum(mem, _EPFN.get(e) << PAGE_SHIFT, level - 1, gpa, nr, nw, nx, out)


def _x86_bad(e: int, level: int) -> tuple[bool, bool]:
    """``(bad, leaf)`` for an x86 (or shadow) entry: bad = not present or reserved bits."""
    if not _XP.get(e):
        return True, False
    ps = _XPS.get(e)
    if level == 3 and ps:
        return True, False
    leaf = level == 0 or bool(ps)
    if _XPFN.get(e) & (_RSVD_X86[level] if leaf else _RSVD_X86[0]):
        return True, leaf
    return False, leaf


def _perm_fail(kind: AccessKind, user: bool, rw: bool, us: bool, xd: bool) -> bool:
    """x86 permission check with CR0.WP=1, EFER.NXE=1, SMEP/SMAP off."""
    return (
        (kind == AccessKind.WRITE and not rw)
        or (user and not us)
        or (kind == AccessKind.FETCH and xd)
    )


def guest_leaf(mem: Memory, gcr3: int, eptp: int, gva: int) -> GuestLeaf | None:
    """Find the guest leaf mapping ``gva`` by a software walk: None when the guest tables
    (or the EPT mapping of a guest-table page) give no present, well-formed leaf."""
    gva &= VA_MASK
    table = gcr3 & _PAGE_MASK
    rw = us = True
    xd = False
    for level in (3, 2, 1, 0):
        egpa = table + 8 * level_index(gva, level)
        t = ept_walk(mem, eptp, egpa)
        if not t.ok or not t.r:
            return None
        e = mem.read64(t.hpa)
        bad, leaf = _x86_bad(e, level)
        if bad:
            return None
        rw, us, xd = rw and bool(_XRW.get(e)), us and bool(_XUS.get(e)), xd or bool(_XXD.get(e))
        pfn_addr = _XPFN.get(e) << PAGE_SHIFT
        if leaf:
            mask = page_bytes(level) - 1
            return GuestLeaf(level, egpa, t.hpa, e, (pfn_addr & ~mask) | (gva & mask), rw, us, xd)
        table = pfn_addr
    raise AssertionError("unreachable")


def walk_nested(
    mem: Memory,
    gcr3: int,
    eptp: int,
    gva: int,
    kind: AccessKind,
    user: bool,
    *,
    pwc: NestedCache | None = None,
    set_ad: bool = False,
) -> Translation:
    """The 2-D (EPT-mode) walk of ``docs/mmu.md``.

    For guest levels 3..0: translate the guest entry's GPA (page-walk cache, else EPT walk; EPT R
    required), read the entry (P, reserved -> GUEST_PF). At the leaf: guest permission check
    (GUEST_PF), then the final GPA's translation and EPT permission (EPT_VIOLATION), then the A/D
    write-backs, each needing EPT W on the entry's page (else EPT_VIOLATION before any write).

    Parameters
    ----------
    mem : Memory
    gcr3, eptp : int
        Register values (the page frame at bits 45:12).
    gva : int
        Linear address (only its low 48 bits are used).
    kind : AccessKind
    user : bool
        CPL3 access.
    pwc : NestedCache, optional
        Page-walk cache used for every GPA translated (lookups count a hit each; fills after a
        successful EPT walk). None walks the EPT every time.
    set_ad : bool
        Perform the A/D write-backs (the functional MMU); the reference leaves memory untouched.

    Returns
    -------
    Translation
        With ``reads`` and ``writes`` (the planned write-backs, even when not performed).
    """
    gva &= VA_MASK
    reads = 0
    pwc_hits = 0

    def xlate(gpa: int) -> tuple[bool, int, bool, bool, bool, int]:
        nonlocal reads, pwc_hits
        gpn = gpa >> PAGE_SHIFT
        if pwc is not None:
            hit = pwc.lookup(gpn)
            if hit is not None:
                pwc_hits += 1
                low = (1 << (9 * hit.level)) - 1
                return (
                    True,
                    ((hit.hpn | (gpn & low)) << PAGE_SHIFT) | (gpa & (PAGE_BYTES - 1)),
                    hit.r,
                    hit.w,
                    hit.x,
                    hit.level,
                )
        res = ept_walk(mem, eptp, gpa)
        reads += res.reads
        if not res.ok:
            return (False, 0, False, False, False, res.level)
        if pwc is not None:
            low = (1 << (9 * res.level)) - 1
            pwc.fill(
                NestedEntry(
                    gpn & ~low, (res.hpa >> PAGE_SHIFT) & ~low, res.r, res.w, res.x, res.level
                )
            )
        return (True, res.hpa, res.r, res.w, res.x, res.level)

    def fail(fault: Fault) -> Translation:
        return Translation(fault, reads=reads, pwc_hits=pwc_hits)

    table = gcr3 & _PAGE_MASK
    rw = us = True
    xd = False
    used: list[tuple[int, int, bool]] = []  # (entry hpa, value, EPT W of its page)
    level = 3
    e = 0
    for level in (3, 2, 1, 0):
        ok, ehpa, er, ew, _, _ = xlate(table + 8 * level_index(gva, level))
        if not ok or not er:
            return fail(Fault.EPT_VIOLATION)
        e = mem.read64(ehpa)
        reads += 1
        bad, leaf = _x86_bad(e, level)
        if bad:
            return fail(Fault.GUEST_PF)
        rw, us, xd = rw and bool(_XRW.get(e)), us and bool(_XUS.get(e)), xd or bool(_XXD.get(e))
        used.append((ehpa, e, ew))
        if leaf:
            break
        table = _XPFN.get(e) << PAGE_SHIFT
    if _perm_fail(kind, user, rw, us, xd):
        return fail(Fault.GUEST_PF)
    mask = page_bytes(level) - 1
    gpa = ((_XPFN.get(e) << PAGE_SHIFT) & ~mask) | (gva & mask)
    ok, hpa, er, ew, ex, elevel = xlate(gpa)
    if not ok or not (er, ew, ex)[kind]:
        return fail(Fault.EPT_VIOLATION)

    writes: list[tuple[int, int]] = []
    need_w = False
    for i, (ehpa, value, pw) in enumerate(used):
        new = value | _XA_BIT
        if i == len(used) - 1 and kind == AccessKind.WRITE:
            new |= _XD_BIT
        if new != value:
            writes.append((ehpa, new))
            need_w = need_w or not pw
    if need_w:
        return fail(Fault.EPT_VIOLATION)
    if set_ad:
        for ehpa, new in writes:
            mem.write64(ehpa, new)
    leaf_value = writes[-1][1] if writes and writes[-1][0] == used[-1][0] else used[-1][1]
    return Translation(
        Fault.NONE,
        hpa=hpa,
        gpa=gpa,
        size=PageSize(min(level, elevel)),
        guest_level=level,
        ept_level=elevel,
        r=er,
        w=rw and ew,
        x=(not xd) and ex,
        u=us,
        dirty=bool(_XD.get(leaf_value)),
        pte_hpa=used[-1][0],
        reads=reads,
        writes=writes,
        pwc_hits=pwc_hits,
    )


def walk_shadow(
    mem: Memory,
    scr3: int,
    gva: int,
    kind: AccessKind,
    user: bool,
    *,
    pt_base: int = PT_BASE_DEFAULT,
) -> Translation:
    """The 1-D shadow walk of ``docs/mmu.md``: SHADOW_PF on a missing, malformed or denying
    entry; ``pte_hpa`` from the leaf's back-pointer (None when ``bp`` is clear)."""
    gva &= VA_MASK
    table = scr3 & _PAGE_MASK
    rw = us = True
    xd = False
    reads = 0
    level = 3
    e = 0
    for level in (3, 2, 1, 0):
        e = mem.read64(table + 8 * level_index(gva, level))
        reads += 1
        bad, leaf = _x86_bad(e, level)
        if bad:
            return Translation(Fault.SHADOW_PF, reads=reads)
        rw, us, xd = rw and bool(_XRW.get(e)), us and bool(_XUS.get(e)), xd or bool(_XXD.get(e))
        if leaf:
            break
        table = _XPFN.get(e) << PAGE_SHIFT
    if _perm_fail(kind, user, rw, us, xd):
        return Translation(Fault.SHADOW_PF, reads=reads)
    mask = page_bytes(level) - 1
    hpa = ((_XPFN.get(e) << PAGE_SHIFT) & ~mask) | (gva & mask)
    pte_hpa = None
    if _SBP.get(e):
        pte_hpa = (
            (pt_base & _PAGE_MASK)
            + (_SPAGE.get(e) << PAGE_SHIFT)
            + 8 * level_index(gva, _SGLEVEL.get(e))
        ) & PA_MASK
    return Translation(
        Fault.NONE,
        hpa=hpa,
        size=PageSize(level),
        guest_level=None,
        r=True,
        w=rw,
        x=not xd,
        u=us,
        dirty=True,
        pte_hpa=pte_hpa,
        reads=reads,
    )


def ref_translate(
    mem: Memory,
    gcr3: int,
    eptp: int,
    gva: int,
    kind: AccessKind,
    user: bool,
    *,
    set_ad: bool = False,
) -> Translation:
    """The reference 2-D translation of the tables in force, without a page-walk cache.

    Pure unless ``set_ad``: the A/D write-backs are only listed in ``writes``.
    """
    return walk_nested(mem, gcr3, eptp, gva, kind, user, pwc=None, set_ad=set_ad)


# ---- builders ------------------------------------------------------------------------------------


class GuestTables:
    """The guest's own x86-64 4-level tables, in the guest page-table region.

    Table pages are allocated at GPAs from :data:`GPT_GPA_BASE` (``alloc``) and stored at
    ``pt_base + (gpa - GPT_GPA_BASE)``. Non-leaf entries are permissive (P, RW, US, XD=0);
    permissions come from the leaf.

    Parameters
    ----------
    mem : Memory
    alloc : Allocator
        Of guest-physical table pages inside the guest page-table region.
    pt_base : int
        HPA of the guest page-table region.
    """

    def __init__(self, mem: Memory, alloc: Allocator, pt_base: int = PT_BASE_DEFAULT) -> None:
        if not (
            alloc.base >= GPT_GPA_BASE
            and alloc.base + alloc.pages * PAGE_BYTES <= GPT_GPA_BASE + GPT_PAGES * PAGE_BYTES
        ):
            raise ValueError("guest table pages must lie in the guest page-table region")
        self.mem = mem
        self.alloc = alloc
        self.pt_base = pt_base
        self._leaves: dict[tuple[int, int], int] = {}  # (level, gva base) -> leaf entry GPA
        self.root = self._new_table()

    @property
    def cr3(self) -> int:
        """GPA of the PML4 (the GCR3 value)."""
        return self.root

    def to_hpa(self, gpa: int) -> int:
        """HPA of a GPA inside the guest page-table region."""
        if not GPT_GPA_BASE <= gpa < GPT_GPA_BASE + GPT_PAGES * PAGE_BYTES:
            raise ValueError(f"GPA {gpa:#x} is outside the guest page-table region")
        return self.pt_base + (gpa - GPT_GPA_BASE)

    def pages(self) -> list[int]:
        """GPAs of the guest's table pages."""
        return self.alloc.allocated()

    def _new_table(self) -> int:
        return self.alloc.alloc()

    def map(
        self,
        gva: int,
        gpa: int,
        size: PageSize,
        *,
        writable: bool = True,
        user: bool = False,
        nx: bool = False,
    ) -> int:
        """Map ``[gva, gva + size)`` to ``gpa``; returns the GPA of the leaf entry.

        Raises
        ------
        ValueError
            Misaligned addresses, or a range that overlaps an existing mapping.
        """
        size = PageSize(size)
        nbytes = size.bytes
        gva &= VA_MASK
        if gva & (nbytes - 1) or gpa & (nbytes - 1) or not 0 <= gpa <= PA_MASK:
            raise ValueError(f"map {gva:#x} -> {gpa:#x}: not aligned to {nbytes:#x}")
        table = self.root
        for level in range(3, size.value, -1):
            egpa = table + 8 * level_index(gva, level)
            e = self.mem.read64(self.to_hpa(egpa))
            if _XP.get(e):
                if _XPS.get(e):
                    raise ValueError(f"map {gva:#x}: overlaps a larger page")
                table = _XPFN.get(e) << PAGE_SHIFT
            else:
                child = self._new_table()
                self.mem.write64(
                    self.to_hpa(egpa), X86.encode(p=1, rw=1, us=1, pfn=child >> PAGE_SHIFT)
                )
                table = child
        egpa = table + 8 * level_index(gva, size.value)
        if self.mem.read64(self.to_hpa(egpa)):
            raise ValueError(f"map {gva:#x}: overlaps an existing mapping")
        self.mem.write64(
            self.to_hpa(egpa),
            X86.encode(
                p=1,
                rw=int(writable),
                us=int(user),
                xd=int(nx),
                ps=int(size > 0),
                pfn=gpa >> PAGE_SHIFT,
            ),
        )
        self._leaves[(size.value, gva)] = egpa
        return egpa

    def leaf_pte_gpa(self, gva: int) -> tuple[int, int]:
        """``(level, GPA of the leaf entry)`` of the mapping that covers ``gva``.

        Found from the mappings made, so it works while the entry is not present.

        Raises
        ------
        KeyError
            ``gva`` is not covered by a mapping made with :meth:`map`.
        """
        gva &= VA_MASK
        for level in (0, 1, 2):
            egpa = self._leaves.get((level, gva & ~(page_bytes(level) - 1)))
            if egpa is not None:
                return level, egpa
        raise KeyError(f"no guest mapping covers GVA {canonical(gva):#x}")

    def leaf(self, gva: int) -> tuple[int, int, int]:
        """``(level, GPA of the leaf entry, its current value)`` for ``gva``."""
        level, egpa = self.leaf_pte_gpa(gva)
        return level, egpa, self.mem.read64(self.to_hpa(egpa))

    def mappings(self) -> Iterator[tuple[int, int, int]]:
        """``(gva, level, leaf entry GPA)`` of every mapping made."""
        for (level, gva), egpa in self._leaves.items():
            yield canonical(gva), level, egpa


class EptTables:
    """A real 4-level EPT built in host memory: non-leaf entries RWX, leaves memtype WB.

    Parameters
    ----------
    mem : Memory
    alloc : Allocator
        Of host table pages.
    """

    def __init__(self, mem: Memory, alloc: Allocator) -> None:
        self.mem = mem
        self.alloc = alloc
        self.root = alloc.alloc()

    @property
    def eptp(self) -> int:
        """HPA of the EPT PML4 (the EPTP value)."""
        return self.root

    def map(
        self, gpa: int, hpa: int, size: PageSize, *, r: bool = True, w: bool = True, x: bool = True
    ) -> int:
        """Map ``[gpa, gpa + size)`` to ``hpa``; returns the HPA of the leaf entry.

        ``r = w = x = False`` writes nothing (a hole), which is what such an entry would mean.

        Raises
        ------
        ValueError
            Misaligned addresses, or an overlap with an existing mapping.
        """
        size = PageSize(size)
        nbytes = size.bytes
        if (
            gpa & (nbytes - 1)
            or hpa & (nbytes - 1)
            or not (0 <= gpa <= PA_MASK and 0 <= hpa <= PA_MASK)
        ):
            raise ValueError(f"ept map {gpa:#x} -> {hpa:#x}: not aligned to {nbytes:#x}")
        table = self.root
        for level in range(3, size.value, -1):
            ehpa = table + 8 * level_index(gpa, level)
            e = self.mem.read64(ehpa)
            if e:
                if _EPS.get(e):
                    raise ValueError(f"ept map {gpa:#x}: overlaps a larger page")
                table = _EPFN.get(e) << PAGE_SHIFT
            else:
                child = self.alloc.alloc()
                self.mem.write64(ehpa, EPT.encode(r=1, w=1, x=1, pfn=child >> PAGE_SHIFT))
                table = child
        ehpa = table + 8 * level_index(gpa, size.value)
        if self.mem.read64(ehpa):
            raise ValueError(f"ept map {gpa:#x}: overlaps an existing mapping")
        if r or w or x:
            self.mem.write64(
                ehpa,
                EPT.encode(
                    r=int(r),
                    w=int(w),
                    x=int(x),
                    mt=EPT_MEMTYPE_WB,
                    ps=int(size > 0),
                    pfn=hpa >> PAGE_SHIFT,
                ),
            )
        return ehpa


@dataclass
class _GTable:
    """A guest table page the shadow was built from, and where its shadow counterpart is."""

    level: int
    gva: int  #: 48-bit base of the region the table maps
    hpa: int  #: HPA of the guest table page
    shadow: int  #: HPA of the shadow table page at the same level
    rw: bool  #: permissions accumulated above this table
    us: bool
    xd: bool


class ShadowTables:
    """Shadow tables (GVA -> HPA, :class:`~vmassist.formats.mmu.ShadowPTE`) derived from the
    guest tables and the EPT in memory.

    The shadow mirrors the guest's table structure; a guest leaf of level ``gl`` over EPT leaves
    of level ``el`` becomes shadow leaves of level ``min(gl, el)`` with ``rw = guest RW & EPT W``,
    ``us = guest US``, ``xd = guest XD | !EPT X``, present only when EPT R, and a back-pointer to
    the guest leaf. A guest leaf splitting into more than :attr:`LAZY_LIMIT` regions gets an
    empty table, filled one leaf at a time by :meth:`fill`. A reverse map from each guest leaf
    entry's GPA to the shadow leaves derived from it drives :meth:`resync` and :meth:`zap`.

    Limitations: the guest tables must form a tree (no page-table page referenced twice) and
    lie in the ``pt_base`` region for back-pointers (entries elsewhere get ``bp = 0``).

    Parameters
    ----------
    mem : Memory
    alloc : Allocator
        Of host table pages (must reuse freed pages only after zeroing them).
    gcr3, eptp : int
        The guest CR3 (GPA) and EPT pointer (HPA).
    pt_base : int
        HPA of the guest page-table region (base of the back-pointers).
    """

    LAZY_LIMIT = 512

    def __init__(
        self, mem: Memory, alloc: Allocator, *, gcr3: int, eptp: int, pt_base: int = PT_BASE_DEFAULT
    ) -> None:
        self.mem = mem
        self.alloc = alloc
        self.gcr3 = gcr3 & _PAGE_MASK
        self.eptp = eptp & _PAGE_MASK
        self.pt_base = pt_base & _PAGE_MASK
        self.root: int | None = None
        self._pages: set[int] = set()
        self._gtables: dict[int, _GTable] = {}  # guest table GPA -> record
        self._derived: dict[int, list[int]] = {}  # guest entry GPA -> shadow leaf HPAs
        self._lazy: set[int] = set()  # guest entry GPAs filled lazily

    # -- public ------------------------------------------------------------------------------

    @property
    def scr3(self) -> int:
        """HPA of the shadow PML4."""
        if self.root is None:
            raise RuntimeError("shadow tables not built: call prepopulate() first")
        return self.root

    @property
    def pages(self) -> list[int]:
        """HPAs of the shadow table pages in use."""
        return sorted(self._pages)

    def guest_table_pages(self) -> list[int]:
        """GPAs of the guest table pages the shadow was derived from."""
        return sorted(self._gtables)

    def derived(self, gpte_gpa: int) -> list[int]:
        """HPAs of the shadow leaves derived from the guest entry at ``gpte_gpa``."""
        return list(self._derived.get(gpte_gpa, ()))

    def is_lazy(self, gpte_gpa: int) -> bool:
        return gpte_gpa in self._lazy

    def leaf_count(self) -> int:
        """Present shadow leaves."""
        return sum(len(v) for v in self._derived.values())

    def prepopulate(self) -> int:
        """Rebuild the whole shadow from the tables in force; returns the present leaves."""
        for page in list(self._pages):
            self._free(page)
        self._gtables.clear()
        self._derived.clear()
        self._lazy.clear()
        self.root = self._new_page()
        ghpa = self._guest_table_hpa(self.gcr3)
        if ghpa is not None:
            self._gtables[self.gcr3] = _GTable(3, 0, ghpa, self.root, True, True, False)
            self._build_table(self.gcr3)
        return self.leaf_count()

    def zap(self, gpte_gpa: int) -> int:
        """Remove every shadow entry derived from the guest entry at ``gpte_gpa`` (its shadow
        slot becomes not present); returns how many present leaves were removed."""
        gt = self._gtables.get(gpte_gpa & ~(PAGE_BYTES - 1))
        if gt is None:
            return 0
        slot = gt.shadow + (gpte_gpa & (PAGE_BYTES - 1))
        removed = len(self._derived.pop(gpte_gpa, ()))
        self._lazy.discard(gpte_gpa)
        if gt.level > 0:
            lo = gt.gva | (((gpte_gpa & (PAGE_BYTES - 1)) >> 3) << level_shift(gt.level))
            hi = lo + page_bytes(gt.level)
            for tgpa in [
                t for t, g in self._gtables.items() if g.level < gt.level and lo <= g.gva < hi
            ]:
                del self._gtables[tgpa]
                for egpa in [k for k in self._derived if k & ~(PAGE_BYTES - 1) == tgpa]:
                    removed += len(self._derived.pop(egpa))
                    self._lazy.discard(egpa)
            self._free_below(slot, gt.level)
        self.mem.write64(slot, 0)
        return removed

    def resync(self, gpte_gpa: int) -> int:
        """Re-derive the shadow of the guest entry at ``gpte_gpa`` from its current value;
        returns the present shadow leaves now derived from it (0 for a lazy split)."""
        gt = self._gtables.get(gpte_gpa & ~(PAGE_BYTES - 1))
        if gt is None:
            return 0
        self.zap(gpte_gpa)
        i = (gpte_gpa & (PAGE_BYTES - 1)) >> 3
        self._build_entry(gpte_gpa & ~(PAGE_BYTES - 1), gt, i, self.mem.read64(gt.hpa + 8 * i))
        return len(self._derived.get(gpte_gpa, ()))

    def fill(self, gva: int) -> bool:
        """Write the one shadow leaf for ``gva`` (lazy fill); True when it is present.

        Nothing is written when the guest gives no leaf for ``gva`` or its table is unknown.
        """
        gva &= VA_MASK
        leaf = guest_leaf(self.mem, self.gcr3, self.eptp, gva)
        if leaf is None:
            return False
        gt = self._gtables.get(leaf.pte_gpa & ~(PAGE_BYTES - 1))
        if gt is None or gt.level != leaf.level:
            return False
        slot = gt.shadow + (leaf.pte_gpa & (PAGE_BYTES - 1))
        res = ept_walk(self.mem, self.eptp, leaf.gpa)
        s = min(leaf.level, res.level)
        region = EptRegion(
            leaf.gpa & ~(page_bytes(s) - 1),
            s,
            res.ok,
            (res.hpa & ~(page_bytes(s) - 1)) if res.ok else 0,
            res.r,
            res.w,
            res.x,
        )
        return self._write_leaf(
            leaf.pte_gpa, leaf.level, slot, gva, region, leaf.rw, leaf.us, leaf.xd, leaf.pte_hpa
        )

    # -- building ------------------------------------------------------------------------------

    def _new_page(self) -> int:
        page = self.alloc.alloc()
        self._pages.add(page)
        return page

    def _free(self, page: int) -> None:
        self._pages.discard(page)
        self.alloc.free(page)

    def _free_below(self, slot: int, level: int) -> None:
        """Free the shadow tables under the entry at ``slot`` (of ``level``)."""
        e = self.mem.read64(slot)
        if level == 0 or not _XP.get(e) or _XPS.get(e):
            return
        child = _XPFN.get(e) << PAGE_SHIFT
        if child not in self._pages:
            return
        for i in range(512):
            if self.mem.read64(child + 8 * i):
                self._free_below(child + 8 * i, level - 1)
        self._free(child)

    def _guest_table_hpa(self, gpa: int) -> int | None:
        res = ept_walk(self.mem, self.eptp, gpa)
        return res.hpa if res.ok and res.r else None

    def _nonleaf(self, table: int) -> int:
        return SHADOW.encode(p=1, rw=1, us=1, pfn=table >> PAGE_SHIFT)

    def _build_table(self, tgpa: int) -> None:
        gt = self._gtables[tgpa]
        for i in range(512):
            e = self.mem.read64(gt.hpa + 8 * i)
            if e:
                self._build_entry(tgpa, gt, i, e)

    def _build_entry(self, tgpa: int, gt: _GTable, i: int, e: int) -> None:
        egpa = tgpa + 8 * i
        slot = gt.shadow + 8 * i
        bad, leaf = _x86_bad(e, gt.level)
        if bad:
            self.mem.write64(slot, 0)
            return
        gva = gt.gva | (i << level_shift(gt.level))
        rw, us, xd = (
            gt.rw and bool(_XRW.get(e)),
            gt.us and bool(_XUS.get(e)),
            gt.xd or bool(_XXD.get(e)),
        )
        if not leaf:
            child_gpa = _XPFN.get(e) << PAGE_SHIFT
            child_hpa = self._guest_table_hpa(child_gpa)
            if child_hpa is None or child_gpa in self._gtables:
                self.mem.write64(slot, 0)  # unreadable, or not a tree: leave it to SHADOW_PF
                return
            stable = self._new_page()
            self.mem.write64(slot, self._nonleaf(stable))
            self._gtables[child_gpa] = _GTable(gt.level - 1, gva, child_hpa, stable, rw, us, xd)
            self._build_table(child_gpa)
            return
        gl = gt.level
        gpa = (_XPFN.get(e) << PAGE_SHIFT) & ~(page_bytes(gl) - 1)
        regions = ept_regions(self.mem, self.eptp, gpa, gl)
        gpte_hpa = gt.hpa + 8 * i
        self._derived.setdefault(egpa, [])
        if len(regions) > self.LAZY_LIMIT:
            self.mem.write64(slot, self._nonleaf(self._new_page()))
            self._lazy.add(egpa)
            return
        for region in regions:
            self._write_leaf(egpa, gl, slot, gva + (region.gpa - gpa), region, rw, us, xd, gpte_hpa)

    def _leaf_value(
        self, region: EptRegion, gl: int, rw: bool, us: bool, xd: bool, gpte_hpa: int
    ) -> int:
        if not (region.ok and region.r):
            return 0
        page = (gpte_hpa - self.pt_base) >> PAGE_SHIFT
        bp = 0 <= page < GUEST_TABLE_PAGES
        return SHADOW.encode(
            p=1,
            rw=int(rw and region.w),
            us=int(us),
            xd=int(xd or not region.x),
            ps=int(region.level > 0),
            a=1,
            d=1,
            glevel=gl,
            bp=int(bp),
            pfn=region.hpa >> PAGE_SHIFT,
            gpt_page=page if bp else 0,
        )

    def _write_leaf(
        self,
        egpa: int,
        gl: int,
        slot: int,
        gva: int,
        region: EptRegion,
        rw: bool,
        us: bool,
        xd: bool,
        gpte_hpa: int,
    ) -> bool:
        """Write the shadow leaf for ``region`` (which starts at ``gva``) under the guest entry's
        shadow ``slot``; returns whether it is present."""
        value = self._leaf_value(region, gl, rw, us, xd, gpte_hpa)
        leaves = self._derived.setdefault(egpa, [])
        level = gl
        while level > region.level:
            e = self.mem.read64(slot)
            if _XP.get(e) and not _XPS.get(e):
                table = _XPFN.get(e) << PAGE_SHIFT
            else:
                if not value:
                    return False  # a hole under a missing table: nothing to write
                table = self._new_page()
                self.mem.write64(slot, self._nonleaf(table))
            level -= 1
            slot = table + 8 * level_index(gva, level)
        if level == gl:
            self._free_below(slot, level)
        self.mem.write64(slot, value)
        if value:
            if slot not in leaves:
                leaves.append(slot)
        elif slot in leaves:
            leaves.remove(slot)
        return bool(value)
