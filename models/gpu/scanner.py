"""The command scanner: run on a submission before the GPU sees it, as GVT-g's command parser.

:func:`scan` decodes the commands between the ring's head and its new tail, follows
MI_BATCH_BUFFER_START into batch buffers (graphics addresses, GGTT only), rejects what the
model does not allow (:class:`ScanError`), and predicts two things for every command: the
guest-physical pages it will dirty, and its run time in cycles.

The scanned list is also what runs: the executor takes it as GVT-g takes its shadow copy of
the ring and batch buffers, so a guest that rewrites a batch after the tail write cannot
change what executes.

Batch buffers
-------------
The ring may start a first-level batch; a first-level batch may start a second-level one
(Second Level Batch Buffer = 1), which returns to it at its MI_BATCH_BUFFER_END, or chain to
another first-level batch (the bit clear). MI_BATCH_BUFFER_END ends a first-level batch and
returns to the ring. As GVT-g's parser does, a second-level start from the ring, any start
inside a second-level batch, a batch end in the ring, and PPGTT batches are refused. A jump
that repeats an earlier (target, return path) would loop forever and is refused; so is a
submission of more than ``max_commands`` commands.

What a command dirties
----------------------
========================  ========================================================================
MI_STORE_DATA_IMM         the dword (qword with Store Qword) at Address
PIPE_CONTROL              with a post-sync operation: the qword at Address
XY_COLOR_BLT              every row of the destination rectangle,
XY_SRC_COPY_BLT           ``[dst + y·pitch + x1·bpp, dst + y·pitch + x2·bpp)`` for ``y1 <= y < y2``
others                    nothing (MI_LOAD_REGISTER_IMM writes shadow registers, not memory)
========================  ========================================================================

Each graphics page is translated through the GGTT at scan time, so a destination that is not
mapped is refused here rather than faulting in the GPU. The prediction over-counts a 32 bpp
blit that writes neither RGB nor alpha (it writes nothing). It cannot know, and so may miss:

- a GGTT entry the guest rewrites between the tail write and the execution (the pages are
  translated at scan time, the writes at execution time);
- writes the GPU makes that are not a command's destination: context save, the hardware
  status page (neither is modelled by the executor either).

Cost model
----------
The command streamer (CS) parses every command and executes the MI commands itself; blits and
post-sync writes go to the engine, which runs its work in order, each item starting when the
CS has issued it and the previous one is done. A PIPE_CONTROL with CS stall makes the CS wait
until the engine is idle. A command's cycles are what it adds to the submission's completion
time (the later of the CS and the engine), so they sum to the submission's run time; a command
issued while the engine is still busy may cost 0. Parameters (:class:`CostModel`), in cycles:

========================  =================================  ==================================
command                   command streamer                   engine
========================  =================================  ==================================
every command             ``dword`` = 1 per dword            —
MI_BATCH_BUFFER_START/END + ``jump`` = 20 (fetch redirect)   —
MI_STORE_DATA_IMM         + ``store`` = 10 (the write)       —
                          + ``page`` = 20 (translation)
MI_LOAD_REGISTER_IMM      + ``register`` = 4 per register    —
PIPE_CONTROL              CS stall: first wait for the       with a post-sync operation:
                          engine, then + ``stall`` = 30      ``post_sync`` = 10 + ``page`` = 20
XY_COLOR_BLT              —                                  ``blt_setup`` = 50
                                                             + ceil(bytes / ``fill_rate`` = 64)
                                                             + ``page`` = 20 per page
XY_SRC_COPY_BLT           —                                  ``blt_setup`` = 50
                                                             + ceil(bytes / ``copy_rate`` = 32)
                                                             + ``page`` = 20 per page
========================  =================================  ==================================

``bytes`` is the destination rectangle's size, ``(x2 - x1)·(y2 - y1)·bpp``; "per page" counts
the distinct graphics pages the command writes or reads, each taken to need a GGTT
translation. An empty blit rectangle costs the command streamer's dwords only. The executor
(:mod:`models.gpu.executor`) uses the same model but for translations, and adds what the
scanner cannot see: a seeded per-command jitter of the engine time, and a translation cache
(a page already cached costs nothing, a miss costs ``miss_cycles``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vmassist.formats.gen9 import (
    CS_GPR_BASE,
    CS_GPR_COUNT,
    GTT_PAGE_BITS,
    MI_PREDICATE_SRC0,
    MI_PREDICATE_SRC1,
    ROP_PATCOPY,
    ROP_SRCCOPY,
    ColorDepth,
    PostSync,
)

from .gen9 import Command, CommandError, Op, decode

if TYPE_CHECKING:
    from .vgpu import Ggtt, GuestMemory

__all__ = [
    "Scanned",
    "ScanError",
    "CostModel",
    "COST",
    "Timeline",
    "LRI_WHITELIST",
    "MAX_COMMANDS",
    "scan",
    "check",
    "blit_rows",
    "bytes_per_pixel",
]

MAX_COMMANDS = 1 << 16
"""Default limit of commands in one submission, batch buffers included."""

#: Registers MI_LOAD_REGISTER_IMM may write: the CS general-purpose registers and the
#: predicate operands (both dwords of each 64-bit register). GVT-g's parser has such a list.
LRI_WHITELIST = frozenset(
    [CS_GPR_BASE + 4 * i for i in range(2 * CS_GPR_COUNT)]
    + [r + d for r in (MI_PREDICATE_SRC0, MI_PREDICATE_SRC1) for d in (0, 4)]
)

_PAGE = 1 << GTT_PAGE_BITS


class ScanError(ValueError):
    """A submission the scanner refuses; nothing of it runs.

    Members
    -------
    address : int or None
        Graphics address of the command at fault, when there is one.
    """

    def __init__(self, problem: str, address: int | None = None) -> None:
        self.address = address
        where = f"command at {address:#x}: " if address is not None else ""
        super().__init__(f"scan: {where}{problem}")


@dataclass(frozen=True)
class Scanned:
    """One command as the scanner saw it.

    Members
    -------
    command : Command
        The decoded command.
    address : int
        Graphics address of its header.
    pages : frozenset of int
        Guest-physical page numbers it will dirty.
    cycles : int
        Predicted cycles it adds to the submission's run time.
    """

    command: Command
    address: int
    pages: frozenset[int]
    cycles: int


@dataclass(frozen=True)
class CostModel:
    """The parameters of the cost model (the table in the module docstring), in cycles."""

    dword: int = 1
    jump: int = 20
    store: int = 10
    register: int = 4
    post_sync: int = 10
    stall: int = 30
    blt_setup: int = 50
    fill_rate: int = 64
    copy_rate: int = 32
    page: int = 20

    def costs(self, command: Command, pages: int = 0) -> tuple[int, int, bool]:
        """``(cs, engine, cs_stall)``: the command's command-streamer and engine cycles, and
        whether the command streamer first waits for the engine to be idle. ``pages`` is the
        number of graphics pages it reads or writes, ``page`` cycles each (the executor
        passes 0 and charges its translation-cache misses instead)."""
        op, f = command.op, command.fields
        cs = self.dword * command.length
        translation = self.page * pages
        if op in (Op.MI_BATCH_BUFFER_START, Op.MI_BATCH_BUFFER_END):
            return cs + self.jump, 0, False
        if op == Op.MI_STORE_DATA_IMM:
            return cs + self.store + translation, 0, False
        if op == Op.MI_LOAD_REGISTER_IMM:
            return cs + self.register * len(command.registers), 0, False
        if op == Op.PIPE_CONTROL:
            stall = bool(f["cs_stall"])
            engine = self.post_sync + translation if f["post_sync"] != PostSync.NONE else 0
            return cs + (self.stall if stall else 0), engine, stall
        if op in (Op.XY_COLOR_BLT, Op.XY_SRC_COPY_BLT):
            size = (f["x2"] - f["x1"]) * (f["y2"] - f["y1"]) * bytes_per_pixel(f["depth"])
            if size <= 0:
                return cs, 0, False
            rate = self.fill_rate if op == Op.XY_COLOR_BLT else self.copy_rate
            return cs, self.blt_setup + -(-size // rate) + translation, False
        return cs, 0, False


COST = CostModel()


class Timeline:
    """The command streamer and the engine of one submission, from idle at time 0."""

    def __init__(self) -> None:
        self.cs = 0
        self.engine = 0

    @property
    def done(self) -> int:
        """The submission's completion time so far."""
        return max(self.cs, self.engine)

    def step(self, cs: int, engine: int, stall: bool) -> int:
        """Run one command; returns the cycles it added to the completion time."""
        before = self.done
        if stall:
            self.cs = max(self.cs, self.engine)
        self.cs += cs
        if engine:
            self.engine = max(self.cs, self.engine) + engine
        return self.done - before


def bytes_per_pixel(depth: int) -> int:
    return ColorDepth(depth).bytes_per_pixel


def blit_rows(f: Mapping[str, int]) -> Iterator[tuple[int, int]]:
    """The destination rows of a blit with fields ``f``, as graphics ``[lo, hi)`` spans."""
    bpp = bytes_per_pixel(f["depth"])
    lo = f["x1"] * bpp
    hi = f["x2"] * bpp
    if hi <= lo:
        return
    for y in range(f["y1"], f["y2"]):
        row = f["dst"] + y * f["pitch"]
        yield row + lo, row + hi


def _source_rows(f: Mapping[str, int]) -> Iterator[tuple[int, int]]:
    bpp = bytes_per_pixel(f["depth"])
    width = (f["x2"] - f["x1"]) * bpp
    if width <= 0:
        return
    for dy in range(f["y2"] - f["y1"]):
        row = f["src"] + (f["src_y"] + dy) * f["src_pitch"] + f["src_x"] * bpp
        yield row, row + width


def check(command: Command, lri_allowed: Collection[int] = LRI_WHITELIST) -> str | None:
    """What the model refuses in ``command`` (a sentence), or ``None`` when it may run."""
    op, f = command.op, command.fields
    if op == Op.MI_BATCH_BUFFER_START and f["address_space"]:
        return "MI_BATCH_BUFFER_START into PPGTT space: only the GGTT is modelled"
    if op == Op.MI_STORE_DATA_IMM:
        if not f["use_ggtt"]:
            return "MI_STORE_DATA_IMM to a PPGTT address: only the GGTT is modelled"
        if f["store_qword"] and f["address"] & 7:
            return f"MI_STORE_DATA_IMM qword address {f['address']:#x} is not qword aligned"
    if op == Op.MI_LOAD_REGISTER_IMM:
        for offset, _ in command.registers:
            if offset not in lri_allowed:
                return f"MI_LOAD_REGISTER_IMM to register {offset:#x}, which is not whitelisted"
    if op == Op.PIPE_CONTROL and f["post_sync"] != PostSync.NONE:
        if f["lri_post_sync"]:
            return "PIPE_CONTROL post-sync write to an MMIO register is not modelled"
        if f["store_data_index"]:
            return "PIPE_CONTROL Store Data Index (status page) is not modelled"
        if not f["dest_ggtt"]:
            return "PIPE_CONTROL post-sync write to a PPGTT address: only the GGTT is modelled"
        if f["address"] & 7:
            return f"PIPE_CONTROL post-sync address {f['address']:#x} is not qword aligned"
    if op in (Op.XY_COLOR_BLT, Op.XY_SRC_COPY_BLT):
        if f["dst_tiled"] or f.get("src_tiled"):
            return f"{op} on a tiled surface: only linear surfaces are modelled"
        if f["clip"]:
            return f"{op} with clipping: not modelled"
        if f["pitch"] & 0x8000 or f.get("src_pitch", 0) & 0x8000:
            return f"{op} with a negative pitch: not modelled"
        rop = ROP_PATCOPY if op == Op.XY_COLOR_BLT else ROP_SRCCOPY
        if f["rop"] != rop:
            return f"{op} raster operation {f['rop']:#04x}: only {rop:#04x} is modelled"
        if f["x2"] < f["x1"] or f["y2"] < f["y1"]:
            return f"{op} rectangle ({f['x1']}, {f['y1']})-({f['x2']}, {f['y2']}) is inverted"
    return None


def _pages(spans: Iterable[tuple[int, int]]) -> set[int]:
    pages: set[int] = set()
    for lo, hi in spans:
        pages.update(range(lo >> GTT_PAGE_BITS, ((hi - 1) >> GTT_PAGE_BITS) + 1))
    return pages


def _gfx_spans(command: Command) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The graphics byte spans ``command`` writes and reads (besides its own dwords)."""
    op, f = command.op, command.fields
    if op == Op.MI_STORE_DATA_IMM:
        return [(f["address"], f["address"] + (8 if f["store_qword"] else 4))], []
    if op == Op.PIPE_CONTROL and f["post_sync"] != PostSync.NONE:
        return [(f["address"], f["address"] + 8)], []
    if op == Op.XY_COLOR_BLT:
        return list(blit_rows(f)), []
    if op == Op.XY_SRC_COPY_BLT:
        return list(blit_rows(f)), list(_source_rows(f))
    return [], []


def scan(
    memory: GuestMemory,
    ggtt: Ggtt,
    ring_start: int,
    ring_size: int,
    head: int,
    tail: int,
    *,
    lri_allowed: Collection[int] = LRI_WHITELIST,
    max_commands: int = MAX_COMMANDS,
    cost: CostModel = COST,
) -> list[Scanned]:
    """Scan the ring's commands from offset ``head`` up to offset ``tail`` (wrapping at
    ``ring_size``), following batch buffers, in execution order.

    Parameters
    ----------
    memory, ggtt
        Where the ring and the batches are read, and how graphics addresses translate.
    ring_start : int
        Graphics address of the ring (4 KiB aligned).
    ring_size : int
        Its size in bytes.
    head, tail : int
        Byte offsets in the ring: the first command, and the end of the last one.
    lri_allowed : collection of int
        Registers MI_LOAD_REGISTER_IMM may write.
    max_commands : int
        Most commands the submission may hold, batch buffers included.
    cost : CostModel
        Cycle costs.

    Raises
    ------
    ScanError
        An unknown or invalid command, a command the model refuses (:func:`check`), an
        unmapped graphics address, a command running past the tail, a bad batch nesting, a
        batch loop, or too many commands.
    """
    if not (0 <= head < ring_size and 0 <= tail < ring_size):
        raise ScanError(
            f"head {head:#x} and tail {tail:#x} must lie in the ring of {ring_size:#x} bytes"
        )
    ring_end = ring_start + ring_size

    def read(addr: int) -> int:
        if level == 0 and addr >= ring_end:
            addr -= ring_size  # a ring command wrapping past the end of the ring
        gpa = ggtt.lookup(addr)
        if gpa is None:
            raise ScanError(f"graphics address {addr:#x} is not mapped", at)
        return memory.read32(gpa)

    def translate(gfx_pages: set[int], what: str) -> set[int]:
        out = set()
        for page in gfx_pages:
            gpa = ggtt.lookup(page << GTT_PAGE_BITS)
            if gpa is None:
                raise ScanError(
                    f"{what} graphics page {page << GTT_PAGE_BITS:#x} is not mapped", at
                )
            out.add(gpa >> GTT_PAGE_BITS)
        return out

    pos = head  # linear offset in the ring while level == 0
    end = tail if tail >= head else tail + ring_size
    level = 0  # 0 ring, 1 first-level batch, 2 second-level batch
    ring_return = 0  # ring offset after the MI_BATCH_BUFFER_START that left the ring
    calls: list[int] = []  # return addresses of second-level batches
    jumps: set[tuple[int, int, int, tuple[int, ...]]] = set()
    timeline = Timeline()
    out: list[Scanned] = []
    at: int | None = None
    while True:
        if level == 0:
            if pos == end:
                return out
            at = ring_start + pos % ring_size
        else:
            at = pos
        if len(out) == max_commands:
            raise ScanError(f"more than {max_commands} commands in one submission", at)
        try:
            cmd = decode(read, at)
        except CommandError as e:
            raise ScanError(f"header {e.header:#010x}: {e.problem}", at) from e
        if level == 0 and pos + 4 * cmd.length > end:
            raise ScanError(f"{cmd.op} runs past the tail ({tail:#x})", at)
        problem = check(cmd, lri_allowed)
        if problem:
            raise ScanError(problem, at)
        writes, reads = _gfx_spans(cmd)
        dst, src = _pages(writes), _pages(reads)
        pages = translate(dst, "destination")
        translate(src, "source")
        cycles = timeline.step(*cost.costs(cmd, len(dst | src)))
        out.append(Scanned(cmd, at, frozenset(pages), cycles))
        if cmd.op == Op.MI_BATCH_BUFFER_START:
            target, second = cmd["address"], bool(cmd["second_level"])
            if level == 2:
                raise ScanError("MI_BATCH_BUFFER_START in a second-level batch", at)
            if second and level == 0:
                raise ScanError("second-level MI_BATCH_BUFFER_START from the ring", at)
            if level == 0:
                ring_return, level = pos + 4 * cmd.length, 1
            elif second:
                calls.append(at + 4 * cmd.length)
                level = 2
            key = (target, level, ring_return, tuple(calls))
            if key in jumps:
                raise ScanError(f"batch buffer loop: {target:#x} is started again", at)
            jumps.add(key)
            pos = target
        elif cmd.op == Op.MI_BATCH_BUFFER_END:
            if level == 0:
                raise ScanError("MI_BATCH_BUFFER_END in the ring, outside a batch buffer", at)
            if level == 2:
                pos, level = calls.pop(), 1
            else:
                pos, level = ring_return, 0
        else:
            pos = pos + 4 * cmd.length
