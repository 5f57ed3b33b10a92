"""The GPU executor: runs scanned commands on guest memory and reports what they wrote.

For every command :meth:`Executor.run` returns an :class:`Executed`: the bytes it stored
(guest-physical address and data, in order), the AXI4 write bursts that carry them (what the
dirty tracker snoops: :class:`~models.gpu.axi.Aw`, INCR, ``awaddr`` = guest-physical address),
and the cycles it actually took.

Semantics
---------
- MI_STORE_DATA_IMM stores its dword or qword; MI_LOAD_REGISTER_IMM writes the shadow
  registers (a set Byte Write Disable bit keeps that byte of every register it writes).
- PIPE_CONTROL's post-sync operation stores a qword: the immediate data, the depth count (here
  the pixels the blitter has written since the executor started) or the timestamp (the
  executor's clock, in cycles, when the write happens).
- XY_COLOR_BLT fills its rectangle with the colour's low 1, 2 or 4 bytes; XY_SRC_COPY_BLT
  reads the whole source rectangle, then writes it (so an overlapping copy behaves as
  ``memmove``). At 32 bpp only the byte lanes that Write RGB (bytes 0-2) and Write Alpha
  (byte 3) enable change; the other lanes of a row are written back unchanged, as the
  write strobes of a real blitter would leave them, so a row is one write either way. At 32
  bpp with neither bit set nothing is written.

Bursts
------
Each run of contiguous bytes becomes INCR bursts of ``bus_bytes``-wide beats: a burst starts
at the run's first byte (unaligned starts are legal AXI), never crosses 4 KiB and has at most
256 beats; its last beat may address bytes past the run, never past the 4 KiB page. So
:func:`pages_of` the bursts is exactly the set of pages the writes touch.

Timing
------
The scanner's cost model (:mod:`models.gpu.scanner`) with two things it cannot see: the engine
time of each command is scaled by a factor in [0.85, 1.25] drawn from ``(seed, commands run
so far)``, and where the scanner charges every graphics page a command touches a translation,
only the pages missing from a small LRU translation cache cost ``miss_cycles`` (on the engine
for blits and post-sync writes, on the command streamer for MI_STORE_DATA_IMM). The same seed
and the same commands give the same cycles; the prediction error is what the tests and the
statistics measure.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vmassist.formats.gen9 import GPA_BITS, GTT_PAGE_BITS, ColorDepth, PostSync

from .axi import Aw, Burst, pages_touched
from .gen9 import Command, Op
from .scanner import COST, CostModel, Scanned, Timeline, blit_rows, bytes_per_pixel, check

if TYPE_CHECKING:
    from .vgpu import Ggtt, GuestMemory

__all__ = ["Executed", "ExecutorState", "ExecutorError", "Executor", "bursts", "pages_of"]

_PAGE = 1 << GTT_PAGE_BITS
_MASK64 = (1 << 64) - 1


class ExecutorError(ValueError):
    """A command the executor cannot run (the scanner refuses the same ones)."""


@dataclass(frozen=True)
class Executed:
    """One command as it ran.

    Members
    -------
    command : Command
    address : int
        Graphics address of its header.
    writes : tuple of (int, bytes)
        The bytes it stored: guest-physical address and data, in order, contiguous runs
        merged.
    aws : tuple of Aw
        The AXI4 write bursts carrying ``writes``.
    cycles : int
        The cycles it added to its submission's run time.
    """

    command: Command
    address: int
    writes: tuple[tuple[int, bytes], ...]
    aws: tuple[Aw, ...]
    cycles: int

    @property
    def pages(self) -> frozenset[int]:
        """Guest-physical page numbers the writes touch."""
        return frozenset(
            p
            for gpa, data in self.writes
            for p in range(gpa >> GTT_PAGE_BITS, ((gpa + len(data) - 1) >> GTT_PAGE_BITS) + 1)
        )


@dataclass(frozen=True)
class ExecutorState:
    """The executor's timing state: commands run, clock, pixels written, cached pages."""

    executed: int
    clock: int
    pixels: int
    tlb: tuple[int, ...]


def bursts(gpa: int, length: int, bus_bytes: int = 16) -> list[Aw]:
    """INCR bursts of ``bus_bytes`` beats that write ``length`` bytes from ``gpa``: split at
    4 KiB boundaries and at 256 beats, the first one starting at ``gpa`` itself.

    Raises
    ------
    ValueError
        ``bus_bytes`` is not a power of two from 1 to 128.
    """
    size = bus_bytes.bit_length() - 1
    if not 1 <= bus_bytes <= 128 or bus_bytes != 1 << size:
        raise ValueError(f"bus_bytes must be a power of two from 1 to 128, not {bus_bytes}")
    out = []
    addr, end = gpa, gpa + length
    while addr < end:
        aligned = addr & -bus_bytes
        stop = min(end, (addr | (_PAGE - 1)) + 1, aligned + 256 * bus_bytes)
        beats = -(-(stop - aligned) // bus_bytes)
        out.append(Aw(addr, beats - 1, size, Burst.INCR))
        addr = stop
    return out


def pages_of(aws: Iterable[Aw]) -> frozenset[int]:
    """The guest-physical pages the bursts touch: the union of their
    :func:`~models.gpu.axi.pages_touched`."""
    return frozenset(p for aw in aws for p in pages_touched(aw, aperture=1 << GPA_BITS))


def _mix(x: int) -> int:
    """SplitMix64: a well-spread 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


class Executor:
    """Runs commands on guest memory through the GGTT.

    Parameters
    ----------
    memory : GuestMemory
    ggtt : Ggtt
    registers : mutable mapping of int to int
        The shadow registers MI_LOAD_REGISTER_IMM writes.
    seed : int
        Seed of the timing jitter.
    bus_bytes : int
        Beat size of the write bursts: a power of two, 1 to 128.
    cost : CostModel
        The base cost model (the scanner's).
    tlb_entries : int
        Graphics pages the translation cache holds.
    miss_cycles : int
        Cycles a translation-cache miss costs.
    """

    def __init__(
        self,
        memory: GuestMemory,
        ggtt: Ggtt,
        registers: MutableMapping[int, int],
        *,
        seed: int = 0,
        bus_bytes: int = 16,
        cost: CostModel = COST,
        tlb_entries: int = 32,
        miss_cycles: int = 20,
    ) -> None:
        bursts(0, 0, bus_bytes)  # validates bus_bytes
        if tlb_entries < 1:
            raise ValueError(f"tlb_entries must be at least 1, not {tlb_entries}")
        self.memory = memory
        self.ggtt = ggtt
        self.registers = registers
        self.seed = seed
        self.bus_bytes = bus_bytes
        self.cost = cost
        self.tlb_entries = tlb_entries
        self.miss_cycles = miss_cycles
        self._executed = 0
        self._clock = 0
        self._pixels = 0
        self._tlb: OrderedDict[int, None] = OrderedDict()

    def state(self) -> ExecutorState:
        return ExecutorState(self._executed, self._clock, self._pixels, tuple(self._tlb))

    def restore(self, state: ExecutorState) -> None:
        self._executed, self._clock, self._pixels = state.executed, state.clock, state.pixels
        self._tlb = OrderedDict.fromkeys(state.tlb)

    @property
    def clock(self) -> int:
        """Cycles run so far, over every :meth:`run`."""
        return self._clock

    # --- memory through the GGTT -----------------------------------------------------------

    def _pieces(self, gfx: int, n: int) -> list[tuple[int, int, int]]:
        """``(gfx, gpa, length)`` for each graphics page the range touches."""
        out = []
        while n:
            k = min(n, _PAGE - (gfx & (_PAGE - 1)))
            out.append((gfx, self.ggtt.translate(gfx), k))
            gfx, n = gfx + k, n - k
        return out

    def _read(self, gfx: int, n: int) -> bytes:
        return b"".join(self.memory.read(gpa, k) for _, gpa, k in self._pieces(gfx, n))

    def _write(self, gfx: int, data: bytes, out: list[tuple[int, bytes]]) -> None:
        pos = 0
        for _, gpa, k in self._pieces(gfx, len(data)):
            piece = data[pos : pos + k]
            self.memory.write(gpa, piece)
            if out and out[-1][0] + len(out[-1][1]) == gpa:
                out[-1] = (out[-1][0], out[-1][1] + piece)
            else:
                out.append((gpa, piece))
            pos += k

    def _misses(self, spans: Iterable[tuple[int, int]]) -> int:
        misses = 0
        for lo, hi in spans:
            for page in range(lo >> GTT_PAGE_BITS, ((hi - 1) >> GTT_PAGE_BITS) + 1):
                if page in self._tlb:
                    self._tlb.move_to_end(page)
                    continue
                misses += 1
                self._tlb[page] = None
                if len(self._tlb) > self.tlb_entries:
                    self._tlb.popitem(last=False)
        return misses

    def _jitter(self, cycles: int) -> int:
        factor = 85 + _mix(self.seed << 32 ^ self._executed) % 41  # percent, 85 to 125
        return cycles * factor // 100

    # --- commands --------------------------------------------------------------------------

    def run(self, commands: Iterable[Scanned]) -> list[Executed]:
        """Run ``commands`` (a scanned submission) in order, from an idle GPU.

        Raises
        ------
        ExecutorError
            A command the model cannot run.
        GgttFault
            A graphics address that is not mapped (any earlier command has run).
        """
        timeline = Timeline()
        out = []
        for item in commands:
            out.append(self._execute(item.command, item.address, timeline))
            self._executed += 1
        self._clock += timeline.done
        return out

    def _execute(self, cmd: Command, address: int, timeline: Timeline) -> Executed:
        problem = check(cmd, lri_allowed=self.registers.keys())
        if problem:
            raise ExecutorError(f"command at {address:#x}: {problem}")
        cs, engine, stall = self.cost.costs(cmd)
        f = cmd.fields
        writes: list[tuple[int, bytes]] = []
        if cmd.op == Op.MI_STORE_DATA_IMM:
            n = 8 if f["store_qword"] else 4
            cs += self.miss_cycles * self._misses([(f["address"], f["address"] + n)])
            cycles = timeline.step(cs, 0, False)
            self._write(f["address"], f["data"].to_bytes(n, "little"), writes)
        elif cmd.op == Op.MI_LOAD_REGISTER_IMM:
            keep = 0
            for lane in range(4):
                if f["byte_write_disables"] >> lane & 1:
                    keep |= 0xFF << (8 * lane)
            for offset, value in cmd.registers:
                self.registers[offset] = (self.registers[offset] & keep) | (value & ~keep)
            cycles = timeline.step(cs, 0, False)
        elif cmd.op == Op.PIPE_CONTROL and f["post_sync"] != PostSync.NONE:
            misses = self._misses([(f["address"], f["address"] + 8)])
            engine = self._jitter(engine) + self.miss_cycles * misses
            cycles = timeline.step(cs, engine, stall)
            value = {
                PostSync.IMMEDIATE: f["data"],
                PostSync.DEPTH_COUNT: self._pixels & _MASK64,
                PostSync.TIMESTAMP: (self._clock + timeline.engine) & _MASK64,
            }[PostSync(f["post_sync"])]
            self._write(f["address"], value.to_bytes(8, "little"), writes)
        elif cmd.op in (Op.XY_COLOR_BLT, Op.XY_SRC_COPY_BLT) and engine:
            engine, pixels = self._blit(cmd, writes)
            cycles = timeline.step(cs, engine, stall)
            self._pixels += pixels
        else:
            cycles = timeline.step(cs, engine, stall)
        aws = tuple(aw for gpa, data in writes for aw in bursts(gpa, len(data), self.bus_bytes))
        return Executed(cmd, address, tuple(writes), aws, cycles)

    def _blit(self, cmd: Command, writes: list[tuple[int, bytes]]) -> tuple[int, int]:
        """Do a non-empty blit; returns its engine cycles and the pixels it wrote."""
        f = cmd.fields
        _, engine, _ = self.cost.costs(cmd)
        bpp = bytes_per_pixel(f["depth"])
        width, height = f["x2"] - f["x1"], f["y2"] - f["y1"]
        rows = list(blit_rows(f))
        touched = list(rows)
        if cmd.op == Op.XY_COLOR_BLT:
            pixel = f["color"].to_bytes(4, "little")[:bpp]
            source = [pixel * width] * height
        else:
            first = f["src"] + f["src_y"] * f["src_pitch"] + f["src_x"] * bpp
            spans = [(first + dy * f["src_pitch"], width * bpp) for dy in range(height)]
            touched += [(lo, lo + n) for lo, n in spans]
            source = [self._read(lo, n) for lo, n in spans]
        engine = self._jitter(engine) + self.miss_cycles * self._misses(touched)
        lanes = range(4)
        if f["depth"] == ColorDepth.B32:
            lanes = [i for i, on in enumerate([f["write_rgb"]] * 3 + [f["write_alpha"]]) if on]
            if not lanes:
                return engine, 0
        for (lo, hi), data in zip(rows, source, strict=True):
            if len(lanes) < 4:
                row = bytearray(self._read(lo, hi - lo))
                for lane in lanes:
                    row[lane::4] = data[lane::4]
                data = bytes(row)
            self._write(lo, data, writes)
        return engine, width * height
