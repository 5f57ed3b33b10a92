"""The block RAM FIFO (``hdl/common/bramfifo.py``) against a queue, in Amaranth's simulator: it
holds exactly ``depth`` words, ``level`` and ``w_rdy`` are ``SyncFIFOBuffered``'s (the count
of words written and not read, and ``w_rdy`` low only while it is ``depth``), words come out
in order, one per cycle once there, no later than ``READ_LATENCY`` cycles after their write;
and its invariants (which the GPU tracker's proofs assert) are inductive."""

from __future__ import annotations

import random
from collections import deque

import pytest
from amaranth import Module
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Elaboratable, Fragment, ResetSignal
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.sim import Simulator

from hdl.common.bramfifo import BramFifo
from vmassist.formal import prove


def _run(dut: BramFifo, rng: random.Random, *, cycles: int, p_w, p_r) -> dict:
    """Random writes and reads (``p_w``/``p_r`` give each cycle's probability), every cycle
    checked against a queue; returns how often each case came up."""
    seen = {"full": 0, "refused": 0, "read": 0, "streak": 0}

    async def bench(ctx):
        model: deque[tuple[int, int]] = deque()  # (word, cycle written)
        streak = 0  # reads in consecutive cycles
        for t in range(cycles):
            level = ctx.get(dut.level)
            assert level == len(model), (t, level, len(model))
            assert ctx.get(dut.w_rdy) == (len(model) < dut.depth), t
            r_rdy = ctx.get(dut.r_rdy)
            if model and t - model[0][1] >= BramFifo.READ_LATENCY:
                assert r_rdy, f"cycle {t}: a word written at {model[0][1]} is not offered"
            if r_rdy:
                assert model, t
                assert ctx.get(dut.r_data) == model[0][0], t
            w_en, r_en = rng.random() < p_w(t), rng.random() < p_r(t)
            word = rng.randrange(1 << dut.width)
            ctx.set(dut.w_en, w_en)
            ctx.set(dut.w_data, word)
            ctx.set(dut.r_en, r_en)
            seen["full"] += len(model) == dut.depth
            if r_en and r_rdy:
                model.popleft()
                seen["read"] += 1
                streak += 1
                seen["streak"] = max(seen["streak"], streak)
            else:
                streak = 0
            if w_en and level < dut.depth:
                model.append((word, t))
            elif w_en:
                seen["refused"] += 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen


@pytest.mark.parametrize("depth", [2, 3, 4, 5, 16, 512])
def test_against_a_queue(depth):
    dut = BramFifo(width=9, depth=depth)
    rng = random.Random(depth)
    n = max(3000, 8 * depth)

    # Phases: fill (reads rare), drain (writes rare), then both at random rates.
    def phase(t):
        return (t * 4 // n) % 4

    seen = _run(
        dut,
        rng,
        cycles=n,
        p_w=lambda t: (0.9, 0.1, 0.5, 1.0)[phase(t)],
        p_r=lambda t: (0.1, 1.0, 0.5, 1.0)[phase(t)],
    )
    assert seen["full"] and seen["refused"] and seen["read"]
    assert seen["streak"] >= min(depth, 32)  # a word per cycle while there are words


def test_level_and_w_rdy_are_sync_fifo_buffered_s():
    # Writes only, then reads only: both FIFOs' level and w_rdy agree cycle by cycle while
    # neither is read (their reads take words at different times).
    depth = 7
    ours, theirs = BramFifo(width=4, depth=depth), SyncFIFOBuffered(width=4, depth=depth)
    m = Module()
    m.submodules.ours, m.submodules.theirs = ours, theirs

    async def bench(ctx):
        for t in range(2 * depth + 4):
            assert ctx.get(ours.level) == ctx.get(theirs.level), t
            assert ctx.get(ours.w_rdy) == ctx.get(theirs.w_rdy), t
            for f in (ours, theirs):
                ctx.set(f.w_en, 1)
                ctx.set(f.w_data, t)
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_parameter_checks():
    with pytest.raises(ValueError, match="depth"):
        BramFifo(width=4, depth=1)
    with pytest.raises(ValueError, match="width"):
        BramFifo(width=0, depth=4)
    with pytest.raises(TypeError, match="depth"):
        BramFifo(width=4, depth=4.0)


class _InvariantHarness(Elaboratable):
    """The FIFO with every input free, its invariants asserted."""

    def __init__(self, depth):
        self.dut = BramFifo(width=3, depth=depth)

    def elaborate(self, platform):
        m = Module()
        dut = self.dut
        m.submodules.dut = Fragment.get(dut, platform)
        m.d.comb += [
            dut.w_en.eq(AnySeq(1)),
            dut.w_data.eq(AnySeq(3)),
            dut.r_en.eq(AnySeq(1)),
            Assume(~ResetSignal()),
            *(Assert(inv) for inv in dut.invariants()),
        ]
        return m


@pytest.mark.formal
@pytest.mark.parametrize("depth", [3, 4])
def test_invariants_are_inductive(depth, tmp_path):
    result = prove(f"bramfifo{depth}", _InvariantHarness(depth), depth=2, build_dir=tmp_path)
    assert result.passed, f"{result.status}: {result.detail}\nlog: {result.log}"
