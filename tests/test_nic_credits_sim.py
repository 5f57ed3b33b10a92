"""The admission credits (``hdl/common/creditfifo.py``, ``Credits``) in Amaranth's simulator:
the registered room flags agree with the count they stand for, and admitting a frame on ``two``
never lets the count go below zero, on random traffic that keeps the contract (a frame is
pushed the cycle after a last beat that found room; a pop takes a frame that is there)."""

from __future__ import annotations

import random

import pytest
from amaranth import Elaboratable, Module, Signal
from amaranth.sim import Simulator

from hdl.common import Credits


class _Harness(Elaboratable):
    def __init__(self, depth):
        self.depth = depth
        self.last = Signal()  # a frame's last beat, admitted if there is room
        self.pop = Signal()
        self.push = Signal()  # registered: the admitted frame's commit
        self.credits = None

    def elaborate(self, platform):
        m = Module()
        self.credits = cr = Credits(m, "q", self.depth, self.push, self.pop)
        m.d.sync += self.push.eq(self.last & cr.two)
        return m


@pytest.mark.parametrize("depth", [2, 3, 4, 16])
def test_room_flags_follow_the_count(depth):
    dut = _Harness(depth)
    rng = random.Random(depth)
    seen = {"full": 0, "room": 0}

    async def bench(ctx):
        held = 0  # frames counted in the queue (pushed, not popped)
        for _ in range(4000):
            cr = dut.credits
            free, push = ctx.get(cr.free), ctx.get(dut.push)
            assert free == depth - held >= 0
            assert (ctx.get(cr.some), ctx.get(cr.two)) == (free > 0, free > 1)
            seen["room" if free > 1 else "full"] += 1
            pop = held > 0 and rng.random() < 0.3
            ctx.set(dut.pop, pop)
            ctx.set(dut.last, rng.random() < 0.6)
            await ctx.tick()
            held += push - pop

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen["full"] and seen["room"]  # both sides of the check were exercised
