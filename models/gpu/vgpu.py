"""The vGPU: guest memory, the GGTT, and trapped MMIO over a shadow register file.

The guest's MMIO accesses to the GPU are trapped: they land in a shadow register file (the
copy of the guest's context the vGPU keeps, :data:`SHADOW_REGISTERS`) or, in the GGTT range of
the BAR, in the vGPU's GGTT. A write of RING_TAIL submits the commands between the last
submitted tail and the new one: the scanner (:mod:`models.gpu.scanner`) checks them and
predicts their dirty pages and run time, and the submission waits in :attr:`Vgpu.pending`
until :meth:`Vgpu.run` executes it (:mod:`models.gpu.executor`) and advances RING_HEAD.

While the ring is disabled (RING_CTL bit 0 clear) a RING_TAIL write only sets the register, so
the driver can program head, tail, start and length first; writing RING_HEAD sets where the
next submission starts. A submission the scanner refuses raises
:class:`~models.gpu.scanner.ScanError` and leaves the shadow RING_TAIL as it was: nothing of
it runs, as GVT-g refuses a workload its command parser rejects.

:meth:`Vgpu.state` snapshots everything but guest memory (shadow registers, GGTT, pending
work, the executor's timing state) as an immutable :class:`VgpuState`;
:meth:`Vgpu.restore` puts one back. Guest memory is checkpointed page by page with
:meth:`GuestMemory.copy_pages` and :meth:`GuestMemory.restore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from models.vmm.bits import Codec
from vmassist.formats.gen9 import (
    CS_GPR_BASE,
    CS_GPR_COUNT,
    GGTT_BASE,
    GGTT_ENTRIES,
    GGTT_PTE_BYTES,
    GPA_BITS,
    GTT_PAGE_BITS,
    MI_PREDICATE_SRC0,
    MI_PREDICATE_SRC1,
    RING_CTL,
    RING_HEAD,
    RING_START,
    RING_TAIL,
    GgttPte,
    RingCtl,
    RingHead,
    RingTail,
)

from .executor import Executed, Executor, ExecutorState
from .scanner import COST, LRI_WHITELIST, MAX_COMMANDS, CostModel, Scanned, scan

__all__ = [
    "PAGE_SIZE",
    "SHADOW_REGISTERS",
    "GuestMemory",
    "Ggtt",
    "GgttFault",
    "VgpuError",
    "Submission",
    "VgpuState",
    "Vgpu",
]

PAGE_SIZE = 1 << GTT_PAGE_BITS
_PAGE_MASK = PAGE_SIZE - 1
_GPA_LIMIT = 1 << GPA_BITS
_ZERO_PAGE = bytes(PAGE_SIZE)

_PTE = Codec(GgttPte)
_PTE_PRESENT = _PTE["present"]
_PTE_PFN = _PTE["pfn"]
_CTL = Codec(RingCtl)
_HEAD = Codec(RingHead)
_TAIL = Codec(RingTail)


def _gpr_names() -> dict[int, str]:
    names = {}
    for n in range(CS_GPR_COUNT):
        names[CS_GPR_BASE + 8 * n] = f"CS_GPR{n}"
        names[CS_GPR_BASE + 8 * n + 4] = f"CS_GPR{n}_UDW"
    return names


#: The shadow register file: MMIO offset -> name. Every register resets to 0. The ring
#: registers drive submission; the others are the general registers MI_LOAD_REGISTER_IMM may
#: write (:data:`~models.gpu.scanner.LRI_WHITELIST`). Any other offset outside the GGTT range
#: is refused (:class:`VgpuError`).
SHADOW_REGISTERS: Mapping[int, str] = MappingProxyType(
    {
        RING_TAIL: "RING_TAIL",
        RING_HEAD: "RING_HEAD",
        RING_START: "RING_START",
        RING_CTL: "RING_CTL",
        MI_PREDICATE_SRC0: "MI_PREDICATE_SRC0",
        MI_PREDICATE_SRC0 + 4: "MI_PREDICATE_SRC0_UDW",
        MI_PREDICATE_SRC1: "MI_PREDICATE_SRC1",
        MI_PREDICATE_SRC1 + 4: "MI_PREDICATE_SRC1_UDW",
        **_gpr_names(),
    }
)


class VgpuError(ValueError):
    """An MMIO access or a ring state the vGPU refuses."""


class GgttFault(LookupError):
    """A graphics address whose GGTT entry is not present (or lies past the GGTT).

    Members
    -------
    address : int
        The graphics address.
    """

    def __init__(self, address: int) -> None:
        self.address = address
        super().__init__(
            f"GGTT fault: graphics address {address:#x} (entry {address >> GTT_PAGE_BITS:#x}) "
            "is not mapped"
        )


class GuestMemory:
    """Sparse guest-physical memory in 4 KiB pages; bytes never written read 0.

    Two memories are equal when every byte is (a page never written equals a zero page).

    Raises
    ------
    ValueError
        An address range outside ``[0, 2**GPA_BITS)``, a page image that is not 4 KiB.
    """

    def __init__(self) -> None:
        self._pages: dict[int, bytearray] = {}

    @staticmethod
    def _check(addr: int, n: int) -> None:
        if addr < 0 or n < 0 or addr + n > _GPA_LIMIT:
            raise ValueError(f"guest-physical range {addr:#x}+{n:#x} is outside {GPA_BITS} bits")

    def read(self, addr: int, n: int) -> bytes:
        """``n`` bytes from ``addr``."""
        self._check(addr, n)
        out = bytearray()
        while n:
            page, off = addr >> GTT_PAGE_BITS, addr & _PAGE_MASK
            k = min(n, PAGE_SIZE - off)
            data = self._pages.get(page)
            out += data[off : off + k] if data is not None else bytes(k)
            addr, n = addr + k, n - k
        return bytes(out)

    def write(self, addr: int, data: bytes) -> None:
        """Store ``data`` at ``addr``."""
        self._check(addr, len(data))
        view = memoryview(data)
        while view:
            page, off = addr >> GTT_PAGE_BITS, addr & _PAGE_MASK
            k = min(len(view), PAGE_SIZE - off)
            frame = self._pages.get(page)
            if frame is None:
                frame = self._pages[page] = bytearray(PAGE_SIZE)
            frame[off : off + k] = view[:k]
            addr, view = addr + k, view[k:]

    def read32(self, addr: int) -> int:
        """The little-endian dword at ``addr``."""
        off = addr & _PAGE_MASK
        if off <= PAGE_SIZE - 4 and 0 <= addr < _GPA_LIMIT:
            frame = self._pages.get(addr >> GTT_PAGE_BITS)
            return 0 if frame is None else int.from_bytes(frame[off : off + 4], "little")
        return int.from_bytes(self.read(addr, 4), "little")

    def read64(self, addr: int) -> int:
        """The little-endian qword at ``addr``."""
        return int.from_bytes(self.read(addr, 8), "little")

    def write32(self, addr: int, value: int) -> None:
        """Store the dword ``value`` at ``addr``, little-endian."""
        self.write(addr, value.to_bytes(4, "little"))

    def write64(self, addr: int, value: int) -> None:
        """Store the qword ``value`` at ``addr``, little-endian."""
        self.write(addr, value.to_bytes(8, "little"))

    def pages(self) -> list[int]:
        """Page numbers (``gpa >> 12``) ever written, ascending."""
        return sorted(self._pages)

    def copy_pages(self, pages: Iterable[int]) -> dict[int, bytes]:
        """An image of each page in ``pages`` (a page never written is zeros)."""
        return {p: bytes(self._pages.get(p, _ZERO_PAGE)) for p in pages}

    def restore(self, pages: Mapping[int, bytes]) -> None:
        """Put back page images taken with :meth:`copy_pages`."""
        for p, data in pages.items():
            if len(data) != PAGE_SIZE:
                raise ValueError(f"page {p:#x}: an image of {len(data)} bytes, not {PAGE_SIZE}")
            self._check(p << GTT_PAGE_BITS, PAGE_SIZE)
            self._pages[p] = bytearray(data)

    def copy(self) -> GuestMemory:
        """An independent copy."""
        other = GuestMemory()
        other._pages = {p: bytearray(d) for p, d in self._pages.items()}
        return other

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GuestMemory):
            return NotImplemented
        for p in self._pages.keys() | other._pages.keys():
            if self._pages.get(p, _ZERO_PAGE) != other._pages.get(p, _ZERO_PAGE):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]  # mutable


class Ggtt:
    """The global graphics translation table: 4 KiB graphics pages to guest-physical pages,
    one Gen8 PTE (:class:`~vmassist.formats.gen9.GgttPte`) each.

    Parameters
    ----------
    entries : int
        PTEs in the table: graphics memory is ``entries * 4 KiB`` from address 0.
    """

    def __init__(self, entries: int = GGTT_ENTRIES) -> None:
        if not 1 <= entries <= GGTT_ENTRIES:
            raise ValueError(f"entries must be 1 to {GGTT_ENTRIES}, not {entries}")
        self.entries = entries
        self._ptes: dict[int, int] = {}

    def _index(self, index: int) -> int:
        if not 0 <= index < self.entries:
            raise ValueError(f"GGTT entry {index:#x} is outside the table of {self.entries:#x}")
        return index

    def read_pte(self, index: int) -> int:
        return self._ptes.get(self._index(index), 0)

    def write_pte(self, index: int, pte: int) -> None:
        if not 0 <= pte < 1 << 64:
            raise ValueError(f"a GGTT PTE is 64 bits, not {pte:#x}")
        if pte:
            self._ptes[self._index(index)] = pte
        else:
            self._ptes.pop(self._index(index), None)

    def mmio_read(self, offset: int, size: int = 4) -> int:
        """Read ``size`` (4 or 8) bytes at ``offset`` in the PTE array."""
        pte = self.read_pte(offset // GGTT_PTE_BYTES)
        if size == 8:
            return pte
        return pte >> 32 if offset & 4 else pte & 0xFFFF_FFFF

    def mmio_write(self, offset: int, value: int, size: int = 4) -> None:
        """Write ``size`` (4 or 8) bytes at ``offset`` in the PTE array: a whole PTE, or the
        half of one."""
        index = offset // GGTT_PTE_BYTES
        if size == 8:
            self.write_pte(index, value)
            return
        pte = self.read_pte(index)
        if offset & 4:
            pte = (pte & 0xFFFF_FFFF) | value << 32
        else:
            pte = (pte & ~0xFFFF_FFFF) | value
        self.write_pte(index, pte)

    @staticmethod
    def pte(gpa: int) -> int:
        """A present PTE mapping the page at guest-physical ``gpa`` (4 KiB aligned)."""
        if gpa & _PAGE_MASK or not 0 <= gpa < _GPA_LIMIT:
            raise ValueError(
                f"guest-physical page {gpa:#x} is not a 4 KiB page below 2**{GPA_BITS}"
            )
        return _PTE.encode(present=1, pfn=gpa >> GTT_PAGE_BITS)

    def map(self, gfx: int, gpa: int) -> None:
        """Map the graphics page at ``gfx`` to the guest-physical page at ``gpa``."""
        if gfx & _PAGE_MASK:
            raise ValueError(f"graphics page {gfx:#x} is not 4 KiB aligned")
        self.write_pte(gfx >> GTT_PAGE_BITS, self.pte(gpa))

    def lookup(self, gfx: int) -> int | None:
        """The guest-physical address of graphics address ``gfx``, or ``None`` if unmapped."""
        index = gfx >> GTT_PAGE_BITS
        if not 0 <= index < self.entries:
            return None
        pte = self._ptes.get(index, 0)
        if not _PTE_PRESENT.get(pte):
            return None
        return _PTE_PFN.get(pte) << GTT_PAGE_BITS | (gfx & _PAGE_MASK)

    def translate(self, gfx: int) -> int:
        """The guest-physical address of graphics address ``gfx``.

        Raises
        ------
        GgttFault
            The entry is not present, or ``gfx`` lies past the table.
        """
        gpa = self.lookup(gfx)
        if gpa is None:
            raise GgttFault(gfx)
        return gpa

    def ptes(self) -> dict[int, int]:
        """Every non-zero PTE, ``{index: pte}``, in index order."""
        return {i: self._ptes[i] for i in sorted(self._ptes)}

    def load(self, ptes: Mapping[int, int]) -> None:
        """Replace the whole table with ``ptes`` (``{index: pte}``)."""
        self._ptes.clear()
        for index, pte in ptes.items():
            self.write_pte(index, pte)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ggtt):
            return NotImplemented
        return self.entries == other.entries and self._ptes == other._ptes

    __hash__ = None  # type: ignore[assignment]  # mutable


@dataclass(frozen=True)
class Submission:
    """The commands one RING_TAIL write submitted, as scanned.

    Members
    -------
    head, tail : int
        Ring offsets the submission spans.
    commands : tuple of Scanned
        Its commands in execution order, batch buffers included.
    """

    head: int
    tail: int
    commands: tuple[Scanned, ...]

    @property
    def pages(self) -> frozenset[int]:
        """Every guest-physical page the scanner predicts the submission dirties."""
        return frozenset().union(*(s.pages for s in self.commands))

    @property
    def cycles(self) -> int:
        """The predicted run time."""
        return sum(s.cycles for s in self.commands)


@dataclass(frozen=True)
class VgpuState:
    """A snapshot of a :class:`Vgpu`, guest memory excepted.

    Members
    -------
    registers : tuple of (int, int)
        The shadow registers, ``(offset, value)`` in offset order.
    ggtt : tuple of (int, int)
        The non-zero GGTT PTEs, ``(index, pte)`` in index order.
    submitted : int
        Ring offset up to which commands have been submitted.
    pending : tuple of Submission
        Submissions scanned but not yet run.
    executor : ExecutorState
        The executor's timing state (clock, translation cache, jitter sequence).
    """

    registers: tuple[tuple[int, int], ...]
    ggtt: tuple[tuple[int, int], ...]
    submitted: int
    pending: tuple[Submission, ...]
    executor: ExecutorState

    def register(self, offset: int) -> int:
        return dict(self.registers)[offset]


class Vgpu:
    """A vGPU: trapped MMIO, shadow registers, the GGTT, the render ring, and its work.

    Parameters
    ----------
    memory : GuestMemory, optional
        The guest's memory (a new, empty one by default).
    ggtt_entries : int
        Size of the GGTT in entries.
    seed : int
        Seed of the executor's timing jitter.
    bus_bytes : int
        The executor's AXI data-bus width in bytes.
    max_commands : int
        Most commands one submission may hold.
    cost : CostModel
        The scanner's (and the executor's base) cost model.

    Members
    -------
    memory : GuestMemory
    ggtt : Ggtt
    executor : Executor
    """

    def __init__(
        self,
        memory: GuestMemory | None = None,
        *,
        ggtt_entries: int = GGTT_ENTRIES,
        seed: int = 0,
        bus_bytes: int = 16,
        max_commands: int = MAX_COMMANDS,
        cost: CostModel = COST,
    ) -> None:
        self.memory = GuestMemory() if memory is None else memory
        self.ggtt = Ggtt(ggtt_entries)
        self.max_commands = max_commands
        self.cost = cost
        self._regs: dict[int, int] = dict.fromkeys(SHADOW_REGISTERS, 0)
        self._submitted = 0
        self._pending: list[Submission] = []
        self.executor = Executor(
            self.memory, self.ggtt, self._regs, seed=seed, bus_bytes=bus_bytes, cost=cost
        )

    # --- the ring, as the shadow registers describe it -----------------------------------

    @property
    def registers(self) -> Mapping[int, int]:
        """The shadow register file, read-only."""
        return MappingProxyType(self._regs)

    @property
    def ring_start(self) -> int:
        return self._regs[RING_START] & ~_PAGE_MASK

    @property
    def ring_size(self) -> int:
        return (_CTL["pages"].get(self._regs[RING_CTL]) + 1) * PAGE_SIZE

    @property
    def ring_enabled(self) -> bool:
        return bool(_CTL["valid"].get(self._regs[RING_CTL]))

    @property
    def head(self) -> int:
        """RING_HEAD's offset: where the GPU fetches next."""
        return _HEAD["offset"].get(self._regs[RING_HEAD]) << 2

    @property
    def tail(self) -> int:
        """RING_TAIL's offset: the end of the last accepted submission."""
        return _TAIL["offset"].get(self._regs[RING_TAIL]) << 3

    @property
    def pending(self) -> tuple[Submission, ...]:
        """Submissions scanned and waiting to run, oldest first."""
        return tuple(self._pending)

    # --- trapped MMIO ----------------------------------------------------------------------

    def _in_ggtt(self, offset: int) -> bool:
        return GGTT_BASE <= offset < GGTT_BASE + self.ggtt.entries * GGTT_PTE_BYTES

    @staticmethod
    def _check_access(offset: int, size: int) -> None:
        if size not in (4, 8):
            raise VgpuError(f"MMIO access of {size} bytes at {offset:#x}: only 4 or 8")
        if offset < 0 or offset % size:
            raise VgpuError(f"MMIO offset {offset:#x} is not {size}-byte aligned")

    def _register(self, offset: int, verb: str) -> int:
        if offset not in self._regs:
            raise VgpuError(f"MMIO {verb} at {offset:#x}: not a register of the vGPU")
        return offset

    def mmio_read(self, offset: int, size: int = 4) -> int:
        """The guest reads ``size`` (4 or 8) bytes at MMIO ``offset``.

        Raises
        ------
        VgpuError
            A misaligned access, or an offset that is neither a shadow register nor a PTE.
        """
        self._check_access(offset, size)
        if self._in_ggtt(offset):
            return self.ggtt.mmio_read(offset - GGTT_BASE, size)
        value = self._regs[self._register(offset, "read")]
        if size == 8:
            value |= self._regs[self._register(offset + 4, "read")] << 32
        return value

    def mmio_write(self, offset: int, value: int, size: int = 4) -> Submission | None:
        """The guest writes ``value`` (``size`` = 4 or 8 bytes) at MMIO ``offset``; returns the
        submission a RING_TAIL write made, if any. An 8-byte register write is two dword
        writes, the low one first.

        Raises
        ------
        VgpuError
            A misaligned access, an unknown offset, a value too wide, a RING_TAIL past the
            end of the ring or overrunning its head, RING_HEAD written while work is pending.
        ScanError
            The scanner refused the submission; RING_TAIL keeps its old value.
        """
        self._check_access(offset, size)
        if not 0 <= value < 1 << (8 * size):
            raise VgpuError(f"MMIO write at {offset:#x}: {value:#x} does not fit {size} bytes")
        if self._in_ggtt(offset):
            self.ggtt.mmio_write(offset - GGTT_BASE, value, size)
            return None
        if size == 8:
            self._register(offset + 4, "write")
            low = self._write_register(offset, value & 0xFFFF_FFFF)
            high = self._write_register(offset + 4, value >> 32)
            return low or high
        return self._write_register(offset, value)

    def _write_register(self, offset: int, value: int) -> Submission | None:
        self._register(offset, "write")
        if offset == RING_TAIL:
            return self._submit(value)
        if offset == RING_HEAD:
            if self._pending:
                raise VgpuError(
                    f"RING_HEAD written while {len(self._pending)} submission(s) are pending"
                )
            self._regs[RING_HEAD] = value
            self._submitted = self.head
            return None
        self._regs[offset] = value
        return None

    def _submit(self, value: int) -> Submission | None:
        if not self.ring_enabled:  # the driver programs the ring before enabling it
            self._regs[RING_TAIL] = value
            return None
        size, tail = self.ring_size, _TAIL["offset"].get(value) << 3
        if tail >= size:
            raise VgpuError(f"RING_TAIL offset {tail:#x} is past the ring's {size:#x} bytes")
        if tail == self._submitted:
            self._regs[RING_TAIL] = value
            return None
        used = (self._submitted - self.head) % size
        if used + (tail - self._submitted) % size >= size:
            raise VgpuError(
                f"RING_TAIL {tail:#x} overruns the head {self.head:#x}: the ring would overflow"
            )
        commands = scan(
            self.memory,
            self.ggtt,
            self.ring_start,
            size,
            self._submitted,
            tail,
            lri_allowed=LRI_WHITELIST,
            max_commands=self.max_commands,
            cost=self.cost,
        )
        submission = Submission(self._submitted, tail, tuple(commands))
        self._pending.append(submission)
        self._submitted = tail
        self._regs[RING_TAIL] = value
        return submission

    # --- execution ---------------------------------------------------------------------------

    def run(self, limit: int | None = None) -> list[Executed]:
        """Execute the pending submissions (at most ``limit`` of them), oldest first; each
        advances RING_HEAD to its tail (counting a wrap). Returns every command's execution.

        Raises
        ------
        GgttFault
            A page the scanner translated was unmapped since (the submission stays pending).
        """
        done: list[Executed] = []
        count = len(self._pending) if limit is None else min(limit, len(self._pending))
        for _ in range(count):
            sub = self._pending[0]
            done += self.executor.run(sub.commands)
            wrap = _HEAD["wrap"].get(self._regs[RING_HEAD]) + (sub.tail < sub.head)
            self._regs[RING_HEAD] = _HEAD.encode(offset=sub.tail >> 2, wrap=wrap % (1 << 11))
            self._pending.pop(0)
        return done

    # --- checkpoints -------------------------------------------------------------------------

    def state(self) -> VgpuState:
        """An immutable snapshot of everything but guest memory."""
        return VgpuState(
            registers=tuple(sorted(self._regs.items())),
            ggtt=tuple(self.ggtt.ptes().items()),
            submitted=self._submitted,
            pending=tuple(self._pending),
            executor=self.executor.state(),
        )

    def restore(self, state: VgpuState) -> None:
        """Return to ``state`` (guest memory is restored separately)."""
        self._regs.clear()
        self._regs.update(state.registers)
        self.ggtt.load(dict(state.ggtt))
        self._submitted = state.submitted
        self._pending = list(state.pending)
        self.executor.restore(state.executor)
