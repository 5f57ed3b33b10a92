"""Amaranth-simulator tests of the frame-stream blocks: the AXI4-Stream signature, the
store-and-forward :class:`PacketFifo` and the round-robin :class:`FrameArbiter`.

The FIFO and the arbiter are driven cycle by cycle with random gaps and random back-pressure,
checked every cycle against a queue model of their contract, and at the end against invariants
that need no model (frames whole, in order, none lost or invented). Seeds are in the test ids.
"""

from __future__ import annotations

import random
import re
from collections import deque
from dataclasses import dataclass, field

import pytest
from amaranth import Module, Shape
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hdl.common import AxiStreamSignature, FrameArbiter, PacketFifo
from hdl.common.fifo import SKID

TAG = 8  # test data words are (frame index << TAG) | beat index, so a beat names its frame


def _run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def _word(frame: int, beat: int, src: int = 0) -> int:
    return (src << 20) | (frame << TAG) | beat


def _split(beats: list[tuple[int, int]]) -> list[list[int]]:
    """(data, last) beats → frames; a trailing partial frame is returned too, to be caught."""
    frames, cur = [], []
    for d, last in beats:
        cur.append(d)
        if last:
            frames.append(cur)
            cur = []
    return frames + ([cur] if cur else [])


# --- AXI4-Stream signature --------------------------------------------------------------------


def test_axis_signature_members_names_and_checks():
    sig = AxiStreamSignature(64)
    assert {name: (m.flow, Shape.cast(m.shape).width) for name, m in sig.members.items()} == {
        "tdata": (Out, 64),
        "tkeep": (Out, 8),
        "tvalid": (Out, 1),
        "tready": (In, 1),
        "tlast": (Out, 1),
    }
    full = AxiStreamSignature(8, user_width=3, dest_width=2)
    assert {name: Shape.cast(m.shape).width for name, m in full.members.items()} == {
        "tdata": 8,
        "tkeep": 1,
        "tvalid": 1,
        "tready": 1,
        "tlast": 1,
        "tuser": 3,
        "tdest": 2,
    }
    assert sig == AxiStreamSignature(64) and sig != AxiStreamSignature(64, user_width=1)
    assert sig != full and hash(sig) == hash(AxiStreamSignature(64))
    assert repr(full) == "AxiStreamSignature(8, user_width=3, dest_width=2)"
    assert repr(AxiStreamSignature(1024)) == "AxiStreamSignature(1024)"

    class Top(wiring.Component):
        def __init__(self):
            super().__init__(
                {
                    "rx": In(AxiStreamSignature(32, user_width=1)),
                    "tx": Out(AxiStreamSignature(32, dest_width=4)),
                }
            )

        def elaborate(self, platform):
            m = Module()
            for name in ("tdata", "tkeep", "tvalid", "tlast"):
                m.d.comb += getattr(self.tx, name).eq(getattr(self.rx, name))
            m.d.comb += [self.rx.tready.eq(self.tx.tready), self.tx.tdest.eq(self.rx.tuser)]
            return m

    ports = {
        line.split()[-1].rstrip(";")
        for line in verilog.convert(Top(), name="top").splitlines()
        if line.strip().startswith(("input", "output"))
    }
    # What AxiStreamBus.from_prefix(dut, "rx", bus_separator="__") looks up.
    for p in ("rx", "tx"):
        assert {f"{p}__{s}" for s in ("tdata", "tkeep", "tvalid", "tready", "tlast")} <= ports
    assert "rx__tuser" in ports and "rx__tdest" not in ports
    assert "tx__tdest" in ports and "tx__tuser" not in ports

    for bad in (0, 12, 1032, -8):
        with pytest.raises(ValueError, match="data_width"):
            AxiStreamSignature(bad)
    for bad in ("64", 64.0, None, True):
        with pytest.raises(TypeError, match="data_width"):
            AxiStreamSignature(bad)
    with pytest.raises(ValueError, match="user_width"):
        AxiStreamSignature(64, user_width=-1)
    with pytest.raises(TypeError, match="dest_width"):
        AxiStreamSignature(64, dest_width=1.5)


# --- PacketFifo ---------------------------------------------------------------------------------


class RefPacketFifo:
    """What :class:`PacketFifo` promises, cycle by cycle, in queues instead of pointers.

    ``stored`` holds the committed words still in memory, ``pending`` the frame being written,
    ``s1`` and ``s2`` the words in the block RAM's read latch and output register, ``skid`` the
    words waiting for ``r`` (its head on ``r``). A beat fits iff the memory (``stored`` +
    ``pending``) had room at the start of its cycle; fetched words have left the memory. A word
    is fetched while fewer than ``SKID`` words are held between the memory and ``r``, once the
    read side has seen its commit (the cycle after the commit: ``unseen`` words at the end of
    ``stored`` are the frame committed in the last step).
    """

    def __init__(self, depth: int):
        self.depth = depth
        self.stored: deque[tuple[int, int]] = deque()
        self.pending: list[tuple[int, int]] = []
        self.dropping = False
        self.s1: tuple[int, int] | None = None
        self.s2: tuple[int, int] | None = None
        self.skid: deque[tuple[int, int]] = deque()
        self.unseen = 0
        self.committed = self.overflow = 0
        self.kept: list[list[int]] = []  # the frames committed, as the reader must see them

    @property
    def level(self) -> int:
        return len(self.stored) + len(self.pending)

    @property
    def fetched(self) -> list[tuple[int, int]]:
        return [*self.skid, *(w for w in (self.s2, self.s1) if w is not None)]

    @property
    def frames(self) -> int:
        return sum(last for _, last in [*self.stored, *self.fetched])

    @property
    def empty(self) -> bool:
        return not (self.stored or self.pending or self.fetched)

    def outputs(self) -> tuple:
        out = self.skid[0] if self.skid else None
        return (out is not None, out, self.committed, self.overflow, self.level)

    def step(self, w_valid, w_data, w_last, w_abort, r_ready) -> None:
        full = self.level == self.depth
        # Read: the skid buffer's head leaves when taken; the RAM's registers move on; a word
        # is fetched while fewer than SKID are held.
        fetch = len(self.fetched) < SKID and len(self.stored) > self.unseen
        self.unseen = 0
        if self.skid and r_ready:
            self.skid.popleft()
        if self.s2 is not None:
            self.skid.append(self.s2)
        self.s2 = self.s1
        self.s1 = self.stored.popleft() if fetch else None
        # Write.
        self.committed = self.overflow = 0
        if w_abort:
            self.pending, self.dropping = [], False
        elif w_valid:
            if self.dropping or full:
                self.dropping = not w_last
                if w_last:
                    self.pending, self.overflow = [], 1
            else:
                self.pending.append((w_data, w_last))
                if w_last:
                    self.stored.extend(self.pending)
                    self.unseen = len(self.pending)
                    self.kept.append([d for d, _ in self.pending])
                    self.pending, self.committed = [], 1


@dataclass
class FifoRun:
    read: list[tuple[int, int]] = field(default_factory=list)  # (data, last) transfers on r
    committed: int = 0
    overflow: int = 0
    aborted: list[int] = field(default_factory=list)
    ref: RefPacketFifo | None = None
    cycles: int = 0


def rtl_fifo(depth, frames, *, seed, gap=0.0, stall=0.0, abort=0.0) -> FifoRun:
    """Write ``frames`` (lists of words) into a PacketFifo and read it out, with a chance
    ``gap`` of an idle write cycle, ``stall`` of a read cycle without ready, and ``abort`` of
    abandoning a frame before each of its beats after the first. Every output is compared with
    :class:`RefPacketFifo` every cycle, and the stream rules are checked on ``r``."""
    dut = PacketFifo(24, depth)
    ref = RefPacketFifo(depth)
    run = FifoRun(ref=ref)
    rng = random.Random(seed)

    async def bench(ctx):
        fi = bi = 0
        prev = None  # (valid, ready, payload) of the previous cycle
        idle = 0
        while idle < 4:
            w_valid = w_last = w_abort = 0
            w_data = 0
            if fi < len(frames) and rng.random() >= gap:
                if bi and rng.random() < abort:
                    w_abort = 1
                    run.aborted.append(fi)
                    fi, bi = fi + 1, 0
                else:
                    w_valid, w_data = 1, frames[fi][bi]
                    w_last = int(bi == len(frames[fi]) - 1)
                    fi, bi = (fi + 1, 0) if w_last else (fi, bi + 1)
            r_ready = int(rng.random() >= stall)
            ctx.set(dut.w_valid, w_valid)
            ctx.set(dut.w_data, w_data)
            ctx.set(dut.w_last, w_last)
            ctx.set(dut.w_abort, w_abort)
            ctx.set(dut.r.ready, r_ready)

            valid = ctx.get(dut.r.valid)
            p = ctx.get(dut.r.payload)
            beat = (p.data, p.last) if valid else None
            got = (valid, beat, ctx.get(dut.committed), ctx.get(dut.overflow), ctx.get(dut.level))
            assert got == ref.outputs(), f"cycle {run.cycles}: rtl {got}, ref {ref.outputs()}"
            assert ctx.get(dut.frames) == ref.frames, f"cycle {run.cycles}"
            if prev and prev[0] and not prev[1]:
                assert valid and beat == prev[2], f"cycle {run.cycles}: r changed while stalled"
            prev = (valid, r_ready, beat)
            if valid and r_ready:
                run.read.append(beat)
            run.committed += got[2]
            run.overflow += got[3]

            ref.step(w_valid, w_data, w_last, w_abort, r_ready)
            await ctx.tick()
            run.cycles += 1
            drained = fi == len(frames) and ref.empty
            idle = idle + 1 if drained else 0

    _run(dut, bench)
    return run


def _random_frames(rng, depth, count):
    # Half the lengths from the whole 1..3*depth range (mostly too long to fit), half from
    # 1..depth (fit unless the reader is behind), so both outcomes are common.
    lengths = [rng.randint(1, 3 * depth if rng.random() < 0.5 else depth) for _ in range(count)]
    return [[_word(f, b) for b in range(n)] for f, n in enumerate(lengths)]


@pytest.mark.parametrize(
    "depth, gap, stall, abort, seed",
    [
        (2, 0.0, 0.0, 0.0, 1),
        (4, 0.3, 0.5, 0.0, 2),
        (8, 0.0, 0.7, 0.0, 3),
        (16, 0.5, 0.2, 0.0, 4),
        (16, 0.2, 0.6, 0.0, 5),
        (8, 0.3, 0.4, 0.05, 6),
    ],
)
def test_fifo_random_frames_match_reference(depth, gap, stall, abort, seed):
    rng = random.Random(seed)
    frames = _random_frames(rng, depth, 160 if depth < 16 else 90)
    run = rtl_fifo(depth, frames, seed=seed, gap=gap, stall=stall, abort=abort)

    read = _split(run.read)
    # Model-free: every frame read is a written frame, whole, in write order, never partial.
    idx = [f[0] >> TAG for f in read]
    assert idx == sorted(set(idx)), f"seed {seed}: frames out of order or repeated"
    for i, f in zip(idx, read, strict=True):
        assert f == frames[i], f"seed {seed}: frame {i} read as {f}"
    assert all(len(frames[i]) <= depth for i in idx)
    assert run.committed == len(read)
    assert run.committed + run.overflow + len(run.aborted) == len(frames)
    assert not set(idx) & set(run.aborted)
    # And exactly the frames the reference kept (the ones whose every beat found room).
    assert read == run.ref.kept
    # The random case must exercise both outcomes, or it proves little.
    assert run.committed and run.overflow


def test_fifo_keeps_every_frame_that_fits_an_empty_fifo():
    """With the reader always ready, a frame of up to ``depth`` beats written into an empty
    FIFO is never dropped, whatever its gaps; one of ``depth + 1`` beats always is."""
    depth = 8
    rng = random.Random(7)
    dut = PacketFifo(24, depth)
    lengths = [rng.randint(1, depth) for _ in range(40)] + [depth, depth + 1, depth, 1]
    read, pulses = [], []

    async def bench(ctx):
        ctx.set(dut.r.ready, 1)
        for f, n in enumerate(lengths):
            while ctx.get(dut.level) or ctx.get(dut.r.valid):  # wait until empty
                await ctx.tick()
            for b in range(n):
                while rng.random() < 0.3:  # nothing is readable before the commit
                    ctx.set(dut.w_valid, 0)
                    await ctx.tick()
                ctx.set(dut.w_valid, 1)
                ctx.set(dut.w_data, _word(f, b))
                ctx.set(dut.w_last, b == n - 1)
                await ctx.tick()
            ctx.set(dut.w_valid, 0)
            pulses.append((ctx.get(dut.committed), ctx.get(dut.overflow)))
            for _ in range(depth + PacketFifo.READ_LATENCY):
                if ctx.get(dut.r.valid):
                    read.append((ctx.get(dut.r.payload.data), ctx.get(dut.r.payload.last)))
                await ctx.tick()

    _run(dut, bench)
    expect = [(0, 1) if n > depth else (1, 0) for n in lengths]
    assert pulses == expect
    kept = [[_word(f, b) for b in range(n)] for f, n in enumerate(lengths) if n <= depth]
    assert _split(read) == kept


def test_fifo_frame_of_exactly_depth_and_capacity():
    """A ``depth``-beat frame fills the memory; with the reader stalled its words move into the
    skid buffer (``SKID`` of them), which frees the memory for another ``depth``-beat frame; the
    next beat then overflows its frame. Levels and counts are checked on the way, and the
    reader then gets the two frames that fitted."""
    depth = SKID
    dut = PacketFifo(24, depth)

    async def put(ctx, words):
        for i, w in enumerate(words):
            ctx.set(dut.w_valid, 1)
            ctx.set(dut.w_data, w)
            ctx.set(dut.w_last, i == len(words) - 1)
            await ctx.tick()
        ctx.set(dut.w_valid, 0)

    async def bench(ctx):
        a = [_word(0, b) for b in range(depth)]
        b = [_word(1, b) for b in range(depth)]
        await put(ctx, a)
        assert (ctx.get(dut.committed), ctx.get(dut.overflow)) == (1, 0)
        assert (ctx.get(dut.level), ctx.get(dut.frames), ctx.get(dut.r.valid)) == (depth, 1, 0)
        await ctx.tick().repeat(PacketFifo.READ_LATENCY - 1)
        assert ctx.get(dut.r.valid) == 0
        await ctx.tick()  # the first word has reached r; the next two are in the RAM's registers
        assert (ctx.get(dut.level), ctx.get(dut.r.valid)) == (depth - 3, 1)
        assert ctx.get(dut.r.payload.data) == a[0]
        await ctx.tick().repeat(depth)  # the whole frame has left the memory for the skid buffer
        assert (ctx.get(dut.level), ctx.get(dut.frames)) == (0, 1)
        await put(ctx, b)
        assert (ctx.get(dut.committed), ctx.get(dut.level), ctx.get(dut.frames)) == (1, depth, 2)
        await put(ctx, [_word(2, 0)])  # no room for it
        assert (ctx.get(dut.committed), ctx.get(dut.overflow)) == (0, 1)
        assert (ctx.get(dut.level), ctx.get(dut.frames)) == (depth, 2)
        await ctx.tick()
        assert ctx.get(dut.overflow) == 0  # a pulse, not a level
        assert ctx.get(dut.r.payload.data) == a[0]  # held while stalled
        got = []
        ctx.set(dut.r.ready, 1)
        for _ in range(2 * depth + PacketFifo.READ_LATENCY + 2):
            if ctx.get(dut.r.valid):
                got.append((ctx.get(dut.r.payload.data), ctx.get(dut.r.payload.last)))
            await ctx.tick()
        assert _split(got) == [a, b]
        assert (ctx.get(dut.level), ctx.get(dut.frames), ctx.get(dut.r.valid)) == (0, 0, 0)

    _run(dut, bench)


def test_fifo_abort_discards_the_frame_being_written():
    depth = 4
    dut = PacketFifo(24, depth)

    async def beat(ctx, w, last=0, abort=0):
        ctx.set(dut.w_valid, 1)
        ctx.set(dut.w_data, w)
        ctx.set(dut.w_last, last)
        ctx.set(dut.w_abort, abort)
        await ctx.tick()
        ctx.set(dut.w_valid, 0)
        ctx.set(dut.w_abort, 0)
        return ctx.get(dut.committed), ctx.get(dut.overflow)

    async def abort(ctx):
        ctx.set(dut.w_abort, 1)
        await ctx.tick()
        ctx.set(dut.w_abort, 0)
        return ctx.get(dut.committed), ctx.get(dut.overflow), ctx.get(dut.level)

    async def bench(ctx):
        await beat(ctx, _word(0, 0))
        await beat(ctx, _word(0, 1))
        assert await abort(ctx) == (0, 0, 0)  # two beats gone, no pulse
        assert await beat(ctx, _word(1, 0)) == (0, 0)
        assert await beat(ctx, _word(1, 1), last=1) == (1, 0)
        await beat(ctx, _word(2, 0))
        assert await beat(ctx, _word(2, 1), last=1, abort=1) == (0, 0)  # abort wins over last
        await ctx.tick()  # frame 1's commit reaches the read side a cycle late
        assert ctx.get(dut.level) == 0  # frame 1 has left the memory for the skid buffer
        for b in range(depth + 1):  # overflows (the reader is stalled), then is abandoned
            await beat(ctx, _word(3, b))
        assert await abort(ctx) == (0, 0, 0)  # an overflowed frame aborted: no overflow pulse
        assert await abort(ctx) == (0, 0, 0)  # between frames: harmless
        assert await beat(ctx, _word(4, 0), last=1) == (1, 0)
        got = []
        ctx.set(dut.r.ready, 1)
        for _ in range(PacketFifo.READ_LATENCY + 4):
            if ctx.get(dut.r.valid):
                got.append((ctx.get(dut.r.payload.data), ctx.get(dut.r.payload.last)))
            await ctx.tick()
        assert _split(got) == [[_word(1, 0), _word(1, 1)], [_word(4, 0)]]

    _run(dut, bench)


def test_fifo_parameter_checks():
    for bad in (0, 1, 3, 12, 2.0):
        with pytest.raises(ValueError, match="depth"):
            PacketFifo(8, bad)
    with pytest.raises(TypeError, match="shape"):
        PacketFifo("wide", 8)
    dut = PacketFifo(16, 32)
    assert (dut.shape, dut.depth) == (16, 32)
    # One memory of depth words of data + last, so that it maps to a block RAM; the skid buffer.
    arrays = re.findall(r"reg \[(\d+):0\] \w+ \[(\d+):0\];", verilog.convert(dut, name="fifo"))
    assert sorted(arrays) == sorted([("16", "31"), ("16", str(SKID - 1))])  # and the skid


# --- FrameArbiter -------------------------------------------------------------------------------


class RefArbiter:
    """Which input :class:`FrameArbiter` must grant: the held one inside a frame, else the
    first valid input after the one that sent the last frame."""

    def __init__(self, n: int):
        self.n = n
        self.prev = n - 1
        self.held: int | None = None  # input whose frame has been offered and is not done

    def grant(self, valid: list[int]) -> int | None:
        if self.held is not None:
            return self.held
        after = [(self.prev + k) % self.n for k in range(1, self.n + 1)]
        return next((j for j in after if valid[j]), None)

    def step(self, valid: list[int], ready: int, last: int) -> None:
        g = self.grant(valid)
        if g is not None and valid[g]:
            if ready and last:
                self.prev, self.held = g, None
            else:
                self.held = g


@dataclass
class ArbRun:
    out: list[tuple[int, int]] = field(default_factory=list)  # (data, last) transfers on o
    cycles: int = 0
    busy: int = 0  # cycles with a transfer on o


def rtl_arbiter(n, frames, *, seed, gap=0.0, stall=0.0) -> ArbRun:
    """Offer ``frames[k]`` (lists of words) on input ``k``, with a chance ``gap`` of an idle
    cycle before each beat and ``stall`` of a cycle without ``o.ready``. The grant is checked
    against :class:`RefArbiter` every cycle, with the stream rules on ``o``."""
    dut = FrameArbiter(32, n)
    ref = RefArbiter(n)
    run = ArbRun()
    rng = random.Random(seed)

    async def bench(ctx):
        pos = [[0, 0] for _ in range(n)]  # per input: frame, beat
        offer: list[tuple[int, int] | None] = [None] * n
        prev = None
        while any(p[0] < len(frames[k]) for k, p in enumerate(pos)) or any(offer):
            for k in range(n):
                f, b = pos[k]
                if offer[k] is None and f < len(frames[k]) and rng.random() >= gap:
                    offer[k] = (frames[k][f][b], int(b == len(frames[k][f]) - 1))
                ctx.set(dut.i[k].valid, offer[k] is not None)
                if offer[k]:
                    ctx.set(dut.i[k].payload, {"data": offer[k][0], "last": offer[k][1]})
            ready = int(rng.random() >= stall)
            ctx.set(dut.o.ready, ready)

            valid = [int(o is not None) for o in offer]
            g = ref.grant(valid)
            o_valid = ctx.get(dut.o.valid)
            p = ctx.get(dut.o.payload)
            beat = (p.data, p.last) if o_valid else None
            readies = [ctx.get(dut.i[k].ready) for k in range(n)]
            assert o_valid == (g is not None and valid[g]), f"cycle {run.cycles}"
            if o_valid:
                assert ctx.get(dut.src) == g, f"cycle {run.cycles}: granted {ctx.get(dut.src)}"
                assert beat == offer[g], f"cycle {run.cycles}"
            # Only a granted, valid input may transfer (ready to an idle input is harmless).
            for k in range(n):
                if valid[k]:
                    assert readies[k] == int(ready and k == g), f"cycle {run.cycles}: input {k}"
            if prev and prev[0] and not prev[1]:
                assert o_valid and beat == prev[2], f"cycle {run.cycles}: o changed while stalled"
            prev = (o_valid, ready, beat)
            ref.step(valid, ready, offer[g][1] if o_valid else 0)

            if o_valid and ready:
                run.out.append(beat)
                run.busy += 1
                offer[g] = None
                f, b = pos[g]
                pos[g] = [f + 1, 0] if beat[1] else [f, b + 1]
            await ctx.tick()
            run.cycles += 1

    _run(dut, bench)
    return run


def _arb_frames(rng, n, count, max_len):
    return [
        [[_word(f, b, src) for b in range(rng.randint(1, max_len))] for f in range(count)]
        for src in range(n)
    ]


def _check_frames(frames, out):
    """Every frame out is one input's frame, contiguous and whole; each input's frames come
    out in its order; all of them do. Returns the source of each frame out."""
    got = _split(out)
    srcs = [f[0] >> 20 for f in got]
    for src, f in zip(srcs, got, strict=True):
        assert all(w >> 20 == src for w in f), f"beats of two inputs interleaved: {f}"
    per_src = {k: [f for s, f in zip(srcs, got, strict=True) if s == k] for k in range(len(frames))}
    assert per_src == dict(enumerate(frames))
    return srcs


@pytest.mark.parametrize(
    "n, gap, stall, seed",
    [(1, 0.3, 0.3, 11), (2, 0.0, 0.0, 12), (2, 0.4, 0.4, 13), (3, 0.2, 0.6, 14), (4, 0.6, 0.2, 15)],
)
def test_arbiter_random_frames_match_reference(n, gap, stall, seed):
    rng = random.Random(seed)
    frames = _arb_frames(rng, n, 50 if n < 4 else 35, 6)
    run = rtl_arbiter(n, frames, seed=seed, gap=gap, stall=stall)
    _check_frames(frames, run.out)
    if gap == stall == 0:  # every input always has a beat: no bubble, ever
        assert run.busy == run.cycles == sum(len(f) for fs in frames for f in fs)


@pytest.mark.parametrize("n, backlogged", [(2, (0, 1)), (4, (1, 3)), (4, (0, 1, 2, 3))])
def test_arbiter_backlogged_inputs_alternate_without_bubbles(n, backlogged):
    """Inputs that always have a frame take turns in order, a whole frame each, back to back;
    the idle ones never hold anything up."""
    rng = random.Random(n * 10 + len(backlogged))
    frames = [_arb_frames(rng, 1, 25, 4)[0] if k in backlogged else [] for k in range(n)]
    for k in backlogged:
        frames[k] = [[w | (k << 20) for w in f] for f in frames[k]]
    run = rtl_arbiter(n, frames, seed=n, gap=0.0, stall=0.0)
    srcs = _check_frames(frames, run.out)
    assert srcs == list(backlogged) * 25
    assert run.busy == run.cycles

    stalled = rtl_arbiter(n, frames, seed=n, gap=0.0, stall=0.5)  # back-pressure changes nothing
    assert _check_frames(frames, stalled.out) == list(backlogged) * 25


def test_arbiter_parameter_checks():
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="n must"):
            FrameArbiter(8, bad)
    with pytest.raises(TypeError, match="layout"):
        FrameArbiter(object(), 2)
    dut = FrameArbiter(16, 3)
    assert (dut.layout, dut.n) == (16, 3)
    assert "i__2__payload" in verilog.convert(dut, name="arb")
