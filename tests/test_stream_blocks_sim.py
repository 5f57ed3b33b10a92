"""Amaranth-simulator tests of the word-stream blocks: :class:`CreditFifo` (a writer holding
credits, distributed RAM written every cycle) and :class:`StreamRegister` (a two-word skid
buffer).

Each is driven cycle by cycle with random writes and random back-pressure and compared every
cycle with a model of its contract (what is on ``r``/``o`` and whether the input is taken);
the words must also leave whole, in order, none lost or invented. Seeds are in the test ids.
"""

from __future__ import annotations

import random
from collections import deque

import pytest
from amaranth.sim import Simulator

from hdl.common import CreditFifo, StreamRegister


def _run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


# --- CreditFifo -----------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "depth", "seed"), [(16, 2, 1), (100, 16, 2), (130, 5, 3)])
def test_credit_fifo_against_model(width, depth, seed):
    """Words written within the credits come out in order, each ``LATENCY`` cycles after its
    write when the FIFO was empty; the model says every cycle what ``r`` shows. The writer
    fills the FIFO to its last credit, where the RAM's every-cycle write lands on the word
    being loaded into ``r``'s register."""
    dut = CreditFifo(width, depth)
    rng = random.Random(seed)
    seen = {"full": 0}

    async def bench(ctx):
        ram: deque[int] = deque()  # written, not yet in r's register
        out_valid, out = False, 0
        outstanding = 0  # written and not yet transferred on r: the writer's credits in use
        written, read = [], []
        phase_full = 0
        for cycle in range(6000):
            # Bursts that fill the FIFO, then drain it.
            if cycle % 400 == 0:
                phase_full = rng.random() < 0.5
            p_write = 0.9 if phase_full else 0.35
            p_ready = 0.2 if phase_full else 0.8
            w_en = outstanding < depth and rng.random() < p_write
            ready = rng.random() < p_ready
            word = rng.getrandbits(width)
            assert ctx.get(dut.r.valid) == out_valid
            if out_valid:
                assert ctx.get(dut.r.payload) == out
            ctx.set(dut.w_en, w_en)
            ctx.set(dut.w_data, word)
            ctx.set(dut.r.ready, ready)
            await ctx.delay(1e-9)
            transfer = out_valid and ready
            if transfer:
                read.append(out)
            load = bool(ram) and (not out_valid or ready)
            if load:
                out_valid, out = True, ram.popleft()
            elif ready:
                out_valid = False
            if w_en:
                ram.append(word)
                written.append(word)
            outstanding += int(w_en) - int(transfer)
            seen["full"] += outstanding == depth
            await ctx.tick()
        assert read == written[: len(read)] and len(read) > 1000

    _run(dut, bench)
    assert seen["full"] > 50  # the last credit was used, often


def test_credit_fifo_latency_and_checks():
    dut = CreditFifo(8, 4)

    async def bench(ctx):
        ctx.set(dut.r.ready, 1)
        ctx.set(dut.w_en, 1)
        ctx.set(dut.w_data, 0x5A)
        await ctx.tick()
        ctx.set(dut.w_en, 0)
        for _ in range(CreditFifo.LATENCY - 1):
            assert not ctx.get(dut.r.valid)
            await ctx.tick()
        assert ctx.get(dut.r.valid) and ctx.get(dut.r.payload) == 0x5A
        await ctx.tick()
        assert not ctx.get(dut.r.valid)

    _run(dut, bench)
    for bad in (1, 17, True, "4"):
        with pytest.raises(ValueError, match="depth"):
            CreditFifo(8, bad)
    with pytest.raises(TypeError, match="shape"):
        CreditFifo(object(), 4)


# --- StreamRegister ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stream_register_against_model(seed):
    """Every output signal and ``i.ready`` match a two-word skid buffer each cycle; the words
    leave in order at one per cycle while ``o.ready`` is held; a stalled ``o`` holds its word."""
    dut = StreamRegister(12)
    rng = random.Random(seed)

    async def bench(ctx):
        o_valid, o_word, skid = False, 0, None
        sent, got = [], []
        queue = deque(rng.getrandbits(12) for _ in range(3000))
        for cycle in range(4000):
            i_valid = bool(queue) and rng.random() < (0.95 if cycle % 500 < 250 else 0.5)
            o_ready = rng.random() < (0.95 if cycle % 300 < 150 else 0.4)
            word = queue[0] if queue else 0
            assert ctx.get(dut.i.ready) == (skid is None)
            assert ctx.get(dut.o.valid) == o_valid
            if o_valid:
                assert ctx.get(dut.o.payload) == o_word
            ctx.set(dut.i.valid, i_valid)
            ctx.set(dut.i.payload, word)
            ctx.set(dut.o.ready, o_ready)
            await ctx.delay(1e-9)
            taken = i_valid and skid is None
            if taken:
                sent.append(queue.popleft())
            if o_valid and o_ready:
                got.append(o_word)
            if o_ready or not o_valid:
                if skid is not None:
                    o_valid, o_word, skid = True, skid, None
                else:
                    o_valid, o_word = taken, word if taken else o_word
            elif taken:
                skid = word
            await ctx.tick()
        assert got == sent[: len(got)] and len(got) > 2000

    _run(dut, bench)


def test_stream_register_full_rate():
    """Input valid and output ready every cycle: a word out every cycle, one cycle behind."""
    dut = StreamRegister(8)

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        for n in range(50):
            assert ctx.get(dut.i.ready)
            ctx.set(dut.i.payload, n)
            await ctx.tick()
            assert ctx.get(dut.o.valid) and ctx.get(dut.o.payload) == n

    _run(dut, bench)
    with pytest.raises(TypeError, match="shape"):
        StreamRegister("eight")
