"""Functional model of the MMU block (``hdl/mmu``), exactly per ``docs/mmu.md``.

:class:`MMUModel` implements :class:`~models.vmm.port.MmuPort` on a
:class:`~models.vmm.memory.SparseMemory`: the CSR file of
:data:`~vmassist.formats.mmu.MMU_CSR`, the TLB (fully associative, lowest match wins, tree
pseudo-LRU), the page-walk cache, the 2-D and shadow walkers (shared with the reference walks in
:mod:`models.vmm.paging`), A/D write-backs, stores, write-protect faults and fault injection.
It is untimed: responses carry ``cycles=None``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from vmassist.formats.csr import Access
from vmassist.formats.mmu import (
    MMU_COUNTERS,
    MMU_CSR,
    MMU_ID,
    PA_BITS,
    PAGE_SHIFT,
    VA_BITS,
    AccessKind,
    Fault,
    FlushOp,
    PageSize,
)

from .memory import PAGE_BYTES, SparseMemory
from .paging import NestedEntry, Translation, walk_nested, walk_shadow
from .port import Response

__all__ = ["MMUModel", "TlbEntry", "Plru", "PageWalkCache", "COUNTERS"]

COUNTERS = MMU_COUNTERS
"""The RO event counters of ``MMU_CSR``, in register order."""

_VA_MASK = (1 << VA_BITS) - 1
_PN_MASK = (1 << (PA_BITS - PAGE_SHIFT)) - 1
_CNT_MASK = (1 << 32) - 1
_F = {
    name: {f.name: f for f in MMU_CSR[name].fields}
    for name in (
        "CTRL",
        "GCR3",
        "EPTP",
        "SCR3",
        "PT_BASE",
        "FLUSH_GVA",
        "FLUSH",
        "WPT",
        "INJ_MASK",
        "INJ",
    )
}


def _size_mask(size: int) -> int:
    """Low page-number bits an entry of ``size`` covers."""
    return (1 << (9 * size)) - 1


@dataclass
class TlbEntry:
    """One TLB entry, as in ``docs/mmu.md``. ``ppn`` is aligned to ``size``; ``pte`` is the
    guest PTE's HPA >> 3, meaningful when ``pte_valid``."""

    valid: bool = False
    mode: int = 0
    vpid: int = 0
    vpn: int = 0
    size: PageSize = PageSize.SIZE_4K
    ppn: int = 0
    r: bool = False
    w: bool = False
    x: bool = False
    u: bool = False
    dirty: bool = False
    pte_valid: bool = False
    pte: int = 0

    def covers(self, vpn: int) -> bool:
        return ((self.vpn ^ vpn) & ~_size_mask(self.size)) == 0

    def hpa(self, gva: int) -> int:
        """The HPA this entry gives ``gva`` (PPN bits below the entry size are ignored)."""
        m = _size_mask(self.size)
        return (((self.ppn & ~m) | ((gva >> PAGE_SHIFT) & m)) << PAGE_SHIFT) | (
            gva & (PAGE_BYTES - 1)
        )

    def serves(self, kind: AccessKind, user: bool) -> bool:
        """READ needs r; WRITE needs w and dirty; FETCH needs x; a user access also needs u."""
        if user and not self.u:
            return False
        if kind == AccessKind.READ:
            return self.r
        if kind == AccessKind.WRITE:
            return self.w and self.dirty
        return self.x


class Plru:
    """Tree pseudo-LRU over ``n`` (a power of two) entries, heap-indexed as in ``docs/mmu.md``:
    node 1 is the root, node ``k`` has children ``2k`` and ``2k+1``, entry ``i`` is leaf node
    ``n + i``; a bit of 0 points left. All bits reset to 0."""

    def __init__(self, n: int) -> None:
        if n < 1 or n & (n - 1):
            raise ValueError(f"PLRU size must be a power of two, not {n}")
        self.n = n
        self.bits = [0] * max(n, 1)  # bits[0] unused

    def victim(self) -> int:
        node = 1
        while node < self.n:
            node = 2 * node + self.bits[node]
        return node - self.n

    def touch(self, i: int) -> None:
        """Point every node on entry ``i``'s path away from it."""
        node = self.n + i
        while node > 1:
            parent = node >> 1
            self.bits[parent] = 1 if node == 2 * parent else 0
            node = parent


class PageWalkCache:
    """The page-walk cache: ``n`` EPT-leaf translations (GPA page -> HPA page, aligned to the
    leaf's size) with EPT permissions and leaf level. Lookup: lowest index whose leaf page holds
    the GPA. Fill: lowest invalid entry, else the round-robin
    pointer, which advances after each fill into a full cache and is never reset by a flush."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.entries: list[NestedEntry | None] = [None] * n
        self.ptr = 0

    def lookup(self, gpn: int) -> NestedEntry | None:
        for e in self.entries:
            if e is not None and (e.gpn ^ gpn) >> (9 * e.level) == 0:
                return e
        return None

    def fill(self, entry: NestedEntry) -> None:
        for i, e in enumerate(self.entries):
            if e is None:
                self.entries[i] = entry
                return
        self.entries[self.ptr] = entry
        self.ptr = (self.ptr + 1) % self.n

    def flush(self) -> None:
        self.entries = [None] * self.n


class MMUModel:
    """The MMU, functionally: same results, same TLB contents and replacement, same counters as
    the RTL (``docs/mmu.md``).

    Parameters
    ----------
    entries : int
        TLB entries, a power of two from 2 to 256.
    pwc_entries : int
        Page-walk-cache entries, 1 to 64.
    wp_pages : int
        Pages covered by the write-protect table from PT_BASE, a power of two from 2 to 4096.
    mem : SparseMemory, optional
        The memory to walk and store to (a new one by default).

    Members
    -------
    mem : SparseMemory
    tlb : list of TlbEntry
    plru : Plru
    pwc : PageWalkCache
    wpt : bytearray
        One byte (0/1) per write-protect-table page.

    Raises
    ------
    ValueError
        A parameter out of range.
    """

    def __init__(
        self,
        entries: int = 32,
        pwc_entries: int = 8,
        wp_pages: int = 4096,
        *,
        mem: SparseMemory | None = None,
    ) -> None:
        if not isinstance(entries, int) or not 2 <= entries <= 256 or entries & (entries - 1):
            raise ValueError(f"entries must be a power of two from 2 to 256, not {entries!r}")
        if not isinstance(pwc_entries, int) or not 1 <= pwc_entries <= 64:
            raise ValueError(f"pwc_entries must be an integer from 1 to 64, not {pwc_entries!r}")
        if not isinstance(wp_pages, int) or not 2 <= wp_pages <= 4096 or wp_pages & (wp_pages - 1):
            raise ValueError(f"wp_pages must be a power of two from 2 to 4096, not {wp_pages!r}")
        self.entries = entries
        self.pwc_entries = pwc_entries
        self.wp_pages = wp_pages
        self.mem: SparseMemory = mem if mem is not None else SparseMemory()
        self.reset()

    def reset(self) -> None:
        """Hardware reset: TLB, PWC and WPT empty, registers at their reset values, counters 0.
        Memory is kept."""
        self.tlb = [TlbEntry() for _ in range(self.entries)]
        self.plru = Plru(self.entries)
        self.pwc = PageWalkCache(self.pwc_entries)
        self.wpt = bytearray(self.wp_pages)
        self.regs = {r.name: r.reset for r in MMU_CSR if r.access is Access.RW}
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.wp_gva = self.wp_hpa = self.wp_data = 0

    # ---- registers -----------------------------------------------------------------------------

    def _field(self, reg: str, name: str) -> int:
        return _F[reg][name].get(self.regs[reg])

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = (self.counters[name] + n) & _CNT_MASK

    def write_csr(self, name: str, value: int) -> None:
        """Register write: RW registers hold all 64 bits, WO registers act, RO writes are ignored.

        Raises
        ------
        KeyError
            No register ``name``.
        """
        reg = MMU_CSR[name]
        value &= (1 << 64) - 1
        if reg.access is Access.RW:
            self.regs[name] = value
        elif reg.access is Access.WO:
            if name == "FLUSH":
                self._flush(FlushOp(_F["FLUSH"]["op"].get(value)), _F["FLUSH"]["vpid"].get(value))
            elif name == "WPT":
                page = _F["WPT"]["page"].get(value) & (self.wp_pages - 1)
                self.wpt[page] = _F["WPT"]["set"].get(value)
            elif name == "INJ":
                idx = _F["INJ"]["entry"].get(value) & (self.entries - 1)
                mask = self._field("INJ_MASK", "mask") & _PN_MASK
                self.tlb[idx].ppn ^= mask

    def read_csr(self, name: str) -> int:
        """Register read: WO registers read 0.

        Raises
        ------
        KeyError
            No register ``name``.
        """
        reg = MMU_CSR[name]
        if reg.access is Access.RW:
            return self.regs[name]
        if reg.access is Access.WO:
            return 0
        if name in self.counters:
            return self.counters[name]
        return {
            "ID": MMU_ID,
            "STATUS": 0,
            "WP_GVA": self.wp_gva,
            "WP_HPA": self.wp_hpa,
            "WP_DATA": self.wp_data,
        }[name]

    async def csr_write(self, name: str, value: int) -> None:
        self.write_csr(name, value)

    async def csr_read(self, name: str) -> int:
        return self.read_csr(name)

    # ---- TLB ---------------------------------------------------------------------------------

    def _flush(self, op: FlushOp, vpid: int) -> int:
        vpn = _F["FLUSH_GVA"]["gva"].get(self.regs["FLUSH_GVA"]) >> PAGE_SHIFT
        n = 0
        for e in self.tlb:
            if not e.valid:
                continue
            if (
                op == FlushOp.ALL
                or (op == FlushOp.VPID and e.vpid == vpid)
                or (op == FlushOp.INVLPG and e.vpid == vpid and e.covers(vpn))
                or (op == FlushOp.PWC and e.mode == 0)
            ):
                e.valid = False
                n += 1
        if op in (FlushOp.ALL, FlushOp.PWC):
            self.pwc.flush()
        self._count("FLUSHES")
        self._count("FLUSHED", n)
        return n

    def lookup(self, gva: int, mode: int, vpid: int) -> int | None:
        """Index of the lowest matching valid entry, or None."""
        vpn = (gva & _VA_MASK) >> PAGE_SHIFT
        for i, e in enumerate(self.tlb):
            if e.valid and e.mode == mode and e.vpid == vpid and e.covers(vpn):
                return i
        return None

    def _fill(self, entry: TlbEntry) -> int:
        idx = next((i for i, e in enumerate(self.tlb) if not e.valid), None)
        if idx is None:
            idx = self.plru.victim()
        self.tlb[idx] = entry
        self.plru.touch(idx)
        return idx

    def _protected(self, hpa: int) -> bool:
        pte = hpa >> 3
        if any(e.valid and e.pte_valid and e.pte == pte for e in self.tlb):
            return True
        base = _F["PT_BASE"]["pfn"].get(self.regs["PT_BASE"])
        off = (hpa >> PAGE_SHIFT) - base
        return 0 <= off < self.wp_pages and bool(self.wpt[off])

    def valid_entries(self) -> list[tuple[int, TlbEntry]]:
        """``(index, copy)`` of every valid TLB entry."""
        return [(i, replace(e)) for i, e in enumerate(self.tlb) if e.valid]

    # ---- requests ------------------------------------------------------------------------------

    def walk(self, gva: int, kind: AccessKind, user: bool) -> Translation:
        """The walk the current mode does for a miss (with PWC and A/D write-backs)."""
        if self._field("CTRL", "mode"):
            return walk_shadow(
                self.mem,
                self._field("SCR3", "pfn") << PAGE_SHIFT,
                gva,
                kind,
                user,
                pt_base=self._field("PT_BASE", "pfn") << PAGE_SHIFT,
            )
        return walk_nested(
            self.mem,
            self._field("GCR3", "pfn") << PAGE_SHIFT,
            self._field("EPTP", "pfn") << PAGE_SHIFT,
            gva,
            kind,
            user,
            pwc=self.pwc if self._field("CTRL", "pwc_en") else None,
            set_ad=True,
        )

    def request(self, gva: int, kind: AccessKind, user: bool, wdata: int = 0) -> Response:
        """Serve one request (synchronously); see :meth:`access`."""
        gva &= _VA_MASK
        kind = AccessKind(kind)
        mode = self._field("CTRL", "mode")
        vpid = self._field("CTRL", "vpid")
        hit = False
        reads = 0
        idx = self.lookup(gva, mode, vpid)
        if idx is not None:
            e = self.tlb[idx]
            if e.serves(kind, bool(user)):
                self.plru.touch(idx)
                self._count("HITS")
                hit = True
                hpa, size = e.hpa(gva), e.size
            else:
                e.valid = False  # re-walk: sets D, or reports the fault the tables give
        if not hit:
            self._count("MISSES")
            t = self.walk(gva, kind, bool(user))
            reads = t.reads
            self._count("WALK_READS", t.reads)
            self._count("PWC_HITS", t.pwc_hits)
            if not t.ok:
                self._count("FAULTS")
                return Response(0, t.fault, PageSize.SIZE_4K, False, reads, 0)
            if not mode:
                self._count("WALK_WRITES", len(t.writes))
            self._fill(
                TlbEntry(
                    valid=True,
                    mode=mode,
                    vpid=vpid,
                    vpn=gva >> PAGE_SHIFT,
                    size=t.size,
                    ppn=t.ppn,
                    r=t.r,
                    w=t.w,
                    x=t.x,
                    u=t.u,
                    dirty=t.dirty,
                    pte_valid=t.pte_hpa is not None,
                    pte=(t.pte_hpa or 0) >> 3,
                )
            )
            hpa, size = t.hpa, t.size
        if kind == AccessKind.WRITE:
            if self._protected(hpa):
                pte = hpa >> 3
                n = 0
                for e in self.tlb:
                    if e.valid and e.pte_valid and e.pte == pte:
                        e.valid = False
                        n += 1
                self.wp_gva, self.wp_hpa, self.wp_data = gva, hpa, wdata
                self._count("WP_FAULTS")
                self._count("FLUSHES")
                self._count("FLUSHED", n)
                return Response(hpa, Fault.WP, size, hit, reads, n)
            self.mem.write64(hpa & ~7, wdata)
            self._count("STORES")
        return Response(hpa, Fault.NONE, size, hit, reads, 0)

    async def access(self, gva: int, kind: AccessKind, user: bool, wdata: int = 0) -> Response:
        """Serve one request: TLB lookup, walk on a miss (or a hit that cannot serve), fill,
        then for a WRITE the store or a WP fault."""
        return self.request(gva, kind, user, wdata)
