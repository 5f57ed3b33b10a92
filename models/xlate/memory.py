"""The guest's address space, inside the modelled VM of :mod:`models.vmm`.

A guest virtual address is translated by the guest's x86-64 4-level tables and the EPT (both built
with :mod:`models.vmm.paging`, walked by :func:`~models.vmm.paging.ref_translate`, which also sets
the Accessed and Dirty bits), giving a host-physical address in the VM's RAM. A softmmu TLB (one
dict per access kind, guest page number -> offset of the host page in :attr:`AddressSpace.ram`)
serves the tiers' fast paths; a miss comes here.

Pages are mapped the way Linux would: the ELF segments, the ``brk`` heap and the stack are
:class:`Area` s, and a guest page fault inside an area allocates and maps a frame (demand paging);
outside any area, or against the area's permissions, it is a segmentation fault.

Every walk (and so every page the guest touched, with its kind) is recorded in :attr:`trace`, in
the access format of :mod:`models.vmm.scenario`, so the guest's memory behaviour can drive the MMU
hardware.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from models.vmm.memory import PAGE_BYTES, SparseMemory
from models.vmm.paging import (
    GUEST_TABLE_PAGES,
    HOST_TABLE_BASE,
    PT_BASE_DEFAULT,
    Allocator,
    EptTables,
    GuestTables,
    ref_translate,
    zero_page,
)
from vmassist.formats.mmu import GPT_GPA_BASE, GPT_PAGES, AccessKind, Fault, PageSize

__all__ = ["AddressSpace", "Area", "SegFault", "RAM_HPA", "PAGE_BYTES"]

RAM_HPA = 0x1_0000_0000
"""Host-physical base of the VM's RAM (guest-physical 0 maps here through the EPT)."""
_HOST_TABLE_PAGES = 4096
PAGE_SHIFT = 12
_OFF = PAGE_BYTES - 1

_FMT = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}
_SFMT = {1: "<b", 2: "<h", 4: "<i", 8: "<q"}


class SegFault(Exception):
    """A guest access no mapping allows: Linux would deliver SIGSEGV.

    Members
    -------
    addr : int
        The guest virtual address.
    kind : AccessKind
    """

    def __init__(self, addr: int, kind: AccessKind, why: str) -> None:
        super().__init__(f"{kind.name.lower()} at {addr:#x}: {why}")
        self.addr = addr
        self.kind = kind


@dataclass
class Area:
    """A range of guest virtual memory the guest may touch (a Linux VMA)."""

    start: int
    end: int
    r: bool
    w: bool
    x: bool
    name: str

    def allows(self, kind: AccessKind) -> bool:
        return {AccessKind.READ: self.r, AccessKind.WRITE: self.w, AccessKind.FETCH: self.x}[kind]


class AddressSpace:
    """One guest process's memory: areas, guest tables, EPT, RAM, softmmu TLB.

    Parameters
    ----------
    ram_bytes : int
        The VM's RAM (a multiple of 2 MiB); guest-physical frames are handed out from 0 up.

    Members
    -------
    ram : mmap.mmap
        The VM's RAM, host-physical :data:`RAM_HPA` onwards.
    tlb_r, tlb_w, tlb_x : dict of int to int
        Softmmu TLB: guest page number -> offset of its page in :attr:`ram`. ``tlb_w`` never holds
        a page with translated code (:attr:`code_pages`), so stores there take the slow path.
    code_pages : set of int
        Guest page numbers some tier translated code from.
    on_code_write : callable or None
        Called with a guest page number before a store changes a page in :attr:`code_pages`.
    trace : list of (int, AccessKind)
        Every translation the softmmu asked the VMM's walk for: ``(guest page address, kind)``.
    """

    def __init__(self, ram_bytes: int = 256 << 20) -> None:
        if ram_bytes % PageSize.SIZE_2M.bytes:
            raise ValueError("guest RAM must be a multiple of 2 MiB")
        self.ram = mmap.mmap(-1, ram_bytes)
        self.ram_bytes = ram_bytes
        self.tables = SparseMemory()
        host = Allocator(
            HOST_TABLE_BASE,
            _HOST_TABLE_PAGES,
            name="host table",
            zero=lambda a: zero_page(self.tables, a),
        )
        self.ept = EptTables(self.tables, host)
        for off in range(0, ram_bytes, PageSize.SIZE_2M.bytes):
            self.ept.map(off, RAM_HPA + off, PageSize.SIZE_2M)
        for off in range(0, GPT_PAGES * PAGE_BYTES, PageSize.SIZE_2M.bytes):
            self.ept.map(GPT_GPA_BASE + off, PT_BASE_DEFAULT + off, PageSize.SIZE_2M, x=False)
        self.guest = GuestTables(
            self.tables, Allocator(GPT_GPA_BASE, GUEST_TABLE_PAGES, name="guest table")
        )
        self.gcr3 = self.guest.cr3
        self.eptp = self.ept.eptp
        self._next_frame = 0
        self.areas: list[Area] = []
        self.tlb_r: dict[int, int] = {}
        self.tlb_w: dict[int, int] = {}
        self.tlb_x: dict[int, int] = {}
        self.code_pages: set[int] = set()
        self.on_code_write: Callable[[int], None] | None = None
        self.trace: list[tuple[int, AccessKind]] = []
        self.walks = 0

    # ---- areas and frames ----------------------------------------------------------------------

    def add_area(self, start: int, end: int, *, r: bool, w: bool, x: bool, name: str) -> Area:
        """Make ``[start, end)`` (page-aligned outward) accessible with these permissions."""
        start &= ~_OFF
        end = (end + _OFF) & ~_OFF
        for a in self.areas:
            if start < a.end and a.start < end:
                raise ValueError(f"area {name} [{start:#x}, {end:#x}) overlaps {a.name}")
        area = Area(start, end, r, w, x, name)
        self.areas.append(area)
        return area

    def area(self, addr: int) -> Area | None:
        for a in self.areas:
            if a.start <= addr < a.end:
                return a
        return None

    def _frame(self, addr: int, kind: AccessKind) -> int:
        gpa = self._next_frame
        if gpa + PAGE_BYTES > self.ram_bytes:  # Linux would kill the process; we fault it
            raise SegFault(addr, kind, f"the VM's {self.ram_bytes >> 20} MiB of RAM are used up")
        self._next_frame += PAGE_BYTES
        return gpa

    def _map_page(self, vpn: int, area: Area, kind: AccessKind) -> None:
        self.guest.map(
            vpn << PAGE_SHIFT, self._frame(vpn << PAGE_SHIFT, kind), PageSize.SIZE_4K,
            writable=area.w, user=True,
            nx=not area.x,
        )  # fmt: skip

    # ---- translation ---------------------------------------------------------------------------

    def translate(self, addr: int, kind: AccessKind) -> int:
        """Offset in :attr:`ram` of guest virtual ``addr`` (filling the softmmu TLB).

        Raises
        ------
        SegFault
            No area covers ``addr``, or the area forbids ``kind``.
        """
        vpn = addr >> PAGE_SHIFT
        area = self.area(addr)
        if area is None:
            raise SegFault(addr, kind, "no mapping")
        if not area.allows(kind):
            raise SegFault(addr, kind, f"not permitted in {area.name}")
        self.walks += 1
        self.trace.append((vpn << PAGE_SHIFT, kind))
        t = ref_translate(self.tables, self.gcr3, self.eptp, addr, kind, True, set_ad=True)
        if t.fault == Fault.GUEST_PF:  # demand paging: the guest kernel maps a frame
            self._map_page(vpn, area, kind)
            t = ref_translate(self.tables, self.gcr3, self.eptp, addr, kind, True, set_ad=True)
        if not t.ok:
            raise AssertionError(f"the VM's tables refuse {kind.name} at {addr:#x}: {t.fault}")
        for hpa, value in t.writes:  # the Accessed / Dirty bits
            self.tables.write64(hpa, value)
        page = (t.hpa - RAM_HPA) & ~_OFF
        if kind == AccessKind.WRITE:
            if vpn in self.code_pages:
                if self.on_code_write is not None:
                    self.on_code_write(vpn)
                self.code_pages.discard(vpn)
            self.tlb_w[vpn] = page
        elif kind == AccessKind.FETCH:
            self.tlb_x[vpn] = page
        else:
            self.tlb_r[vpn] = page
        return page | (addr & _OFF)

    def mark_code(self, vpn: int) -> None:
        """A tier translated code from page ``vpn``: stores to it must come here first."""
        self.code_pages.add(vpn)
        self.tlb_w.pop(vpn, None)

    # ---- accesses (the slow paths, and the interpreter's only path) ----------------------------

    def load(self, addr: int, size: int, signed: bool = False) -> int:
        """Load ``size`` bytes at ``addr``, little-endian, any alignment."""
        off = addr & _OFF
        if off + size <= PAGE_BYTES:
            page = self.tlb_r.get(addr >> PAGE_SHIFT)
            o = self.translate(addr, AccessKind.READ) if page is None else page | off
            return struct.unpack_from((_SFMT if signed else _FMT)[size], self.ram, o)[0]
        value = int.from_bytes(bytes(self.load(addr + i, 1) for i in range(size)), "little")
        return value - (1 << 8 * size) if signed and value >> (8 * size - 1) else value

    def store(self, addr: int, size: int, value: int) -> bool:
        """Store the low ``size`` bytes of ``value`` at ``addr``; True when translated code was
        on the page (the caller must leave its block: the code may have changed)."""
        off = addr & _OFF
        if off + size > PAGE_BYTES:
            hit = False
            for i in range(size):
                hit |= self.store(addr + i, 1, value >> 8 * i)
            return hit
        vpn = addr >> PAGE_SHIFT
        page = self.tlb_w.get(vpn)
        hit = page is None and vpn in self.code_pages
        o = self.translate(addr, AccessKind.WRITE) if page is None else page | off
        struct.pack_into(_FMT[size], self.ram, o, value & ((1 << 8 * size) - 1))
        return hit

    def fetch(self, addr: int) -> int:
        """The 32 bits at ``addr`` for decoding (only 16 when the second half is unmapped)."""
        page = self.tlb_x.get(addr >> PAGE_SHIFT)
        o = self.translate(addr, AccessKind.FETCH) if page is None else page | (addr & _OFF)
        if (addr & _OFF) <= PAGE_BYTES - 4:
            return struct.unpack_from("<I", self.ram, o)[0]
        low = struct.unpack_from("<H", self.ram, o)[0]
        if low & 3 != 3:
            return low
        return low | self.fetch(addr + 2) << 16 & 0xFFFF_0000

    def _spans(self, addr: int, n: int, kind: AccessKind) -> Iterator[tuple[int, int, int]]:
        """``(offset in ram, offset from addr, length)`` of each page's piece of
        ``[addr, addr + n)``, translated for ``kind``."""
        tlb = self.tlb_w if kind == AccessKind.WRITE else self.tlb_r
        i = 0
        while i < n:
            chunk = min(n - i, PAGE_BYTES - (addr & _OFF))
            page = tlb.get(addr >> PAGE_SHIFT)
            yield self.translate(addr, kind) if page is None else page | (addr & _OFF), i, chunk
            addr += chunk
            i += chunk

    def _copy_in(self, addr: int, data: bytes, kind: AccessKind) -> None:
        for o, i, chunk in self._spans(addr, len(data), kind):
            self.ram[o : o + chunk] = data[i : i + chunk]

    def read_bytes(self, addr: int, n: int) -> bytes:
        """``n`` guest bytes from ``addr`` (syscall buffers)."""
        return b"".join(
            self.ram[o : o + chunk] for o, _, chunk in self._spans(addr, n, AccessKind.READ)
        )

    def write_bytes(self, addr: int, data: bytes) -> None:
        """Store ``data`` at ``addr`` (loader, syscalls), through the store path."""
        self._copy_in(addr, data, AccessKind.WRITE)

    def poke(self, addr: int, data: bytes) -> None:
        """Store ``data`` at ``addr`` whatever the area's write permission (the loader filling
        read-only text): through the tables' read translation, which every area allows."""
        self._copy_in(addr, data, AccessKind.READ)
