"""The GPU dirty tracker (``hdl/gpu/tracker.py``) in Amaranth's simulator against the model
(``models/gpu``): random AW traffic with flips at random moments, every epoch's read-out and
the log compared with the model's, and the no-loss guarantee checked on every write."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from hdl.gpu import DirtyTracker
from models.gpu.axi import Aw, Burst, pages_touched
from tb.gpu.score import Seen
from tb.gpu.score import check as score


def random_aw(rng: random.Random, aperture: int, legal: bool) -> Aw:
    """An AW inside (mostly) or past the aperture; ``legal`` keeps to AXI4's rules (an INCR
    within 4 KiB, a WRAP of 2, 4, 8 or 16 beats, aligned), else any burst."""
    size = rng.randrange(8)
    addr = rng.randrange(aperture * 5 // 4)
    if not legal:
        return Aw(addr, rng.randrange(256), size, Burst(rng.randrange(4)))
    burst = rng.choice([Burst.FIXED, Burst.INCR, Burst.WRAP])
    if burst == Burst.WRAP:
        beats = rng.choice([2, 4, 8, 16])
        return Aw(addr >> size << size, beats - 1, size, burst)
    room = (4096 - addr % 4096) >> size  # beats to the 4 KiB boundary
    return Aw(addr, rng.randrange(max(1, min(room, 256))), size, burst)


def run(
    dut: DirtyTracker,
    rng: random.Random,
    *,
    n_aws: int,
    p_aw: float,
    p_flip: float,
    legal: bool,
    p_ready: float,
) -> Seen:
    seen = Seen()
    done = [False]

    async def driver(ctx):
        epoch, sent = 0, 0
        want_flip = False
        while sent < n_aws:
            if rng.random() < p_aw:
                aw = random_aw(rng, dut.aperture, legal)
                ctx.set(dut.aw.awvalid, 1)
                ctx.set(dut.aw.awready, rng.random() < 0.9)
                ctx.set(dut.aw.awaddr, aw.addr)
                ctx.set(dut.aw.awlen, aw.len)
                ctx.set(dut.aw.awsize, aw.size)
                ctx.set(dut.aw.awburst, aw.burst)
            else:
                aw = None
                ctx.set(dut.aw.awvalid, 0)
            want_flip = want_flip or rng.random() < p_flip
            ctx.set(dut.flip, want_flip)
            took_aw = aw is not None and ctx.get(dut.aw.awready)
            flipped = want_flip and ctx.get(dut.flip_ready)
            if took_aw:
                seen.aws.append((epoch, aw))  # an AW in the flip's cycle is the old epoch's
                sent += 1
            if flipped:
                epoch += 1
                want_flip = False
            await ctx.tick()
        ctx.set(dut.aw.awvalid, 0)
        # The last epoch ends with a flip, once the one before is read out.
        ctx.set(dut.flip, 1)
        await ctx.tick().until(dut.flip_ready)
        await ctx.tick()
        ctx.set(dut.flip, 0)
        await ctx.tick().until(dut.flip_ready)
        for _ in range(8):
            await ctx.tick()
        for name in DirtyTracker.COUNTERS:
            seen.counters[name] = ctx.get(getattr(dut, name))
        done[0] = True

    async def readout(ctx):
        # A read-out runs while flip_ready is low, from the cycle after a flip.
        pages: list[int] = []
        was_ready = True
        while not done[0]:
            ready = rng.random() < p_ready
            ctx.set(dut.dirty.ready, ready)
            if ctx.get(dut.dirty.valid) and ready:
                pages.append(ctx.get(dut.dirty.payload))
            now_ready = ctx.get(dut.flip_ready)
            if now_ready and not was_ready:
                seen.readouts.append((pages, bool(ctx.get(dut.readout_overflow))))
                pages = []
            was_ready = now_ready
            await ctx.tick()

    async def log(ctx):
        while not done[0]:
            ready = rng.random() < p_ready
            ctx.set(dut.log.ready, ready)
            if ctx.get(dut.log.valid) and ready:
                entry = ctx.get(dut.log.payload)
                seen.log.append((int(entry.epoch), int(entry.page)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for bench in (driver, readout, log):
        sim.add_testbench(bench)
    sim.run()
    return seen


def check(dut: DirtyTracker, seen: Seen, *, exact: bool) -> None:
    score(seen, page_bits=dut.page_bits, aperture=dut.aperture, exact=exact)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sustained_legal_traffic_loses_nothing(seed):
    # An AW nearly every cycle, flips often, consumers always ready: every epoch exact.
    dut = DirtyTracker(aperture_bits=20, log_depth=512)
    rng = random.Random(seed)
    seen = run(dut, rng, n_aws=1500, p_aw=0.95, p_flip=0.01, legal=True, p_ready=1.0)
    check(dut, seen, exact=True)
    assert len(seen.readouts) >= 5


@pytest.mark.parametrize("seed", [4, 5])
def test_illegal_bursts_and_a_small_log_are_flagged_not_lost(seed):
    # Multi-page bursts fill the op queue, a slow consumer fills the log: whatever is lost
    # is flagged for its epoch, and nothing is reported that was not written.
    dut = DirtyTracker(aperture_bits=20, log_depth=4, op_depth=2)
    rng = random.Random(seed)
    seen = run(dut, rng, n_aws=600, p_aw=0.9, p_flip=0.02, legal=False, p_ready=0.3)
    check(dut, seen, exact=False)
    assert any(ov for _, ov in seen.readouts), "the case never lost an update"


@pytest.mark.parametrize("seed", [6, 7])
def test_every_kind_of_burst_is_exact_while_nothing_overflows(seed):
    # Bursts of every kind, legal or not, some past the aperture, spaced so that the op queue
    # never fills: every epoch's pages and the log are the model's exactly.
    dut = DirtyTracker(aperture_bits=20, op_depth=64)
    rng = random.Random(seed)
    seen = run(dut, rng, n_aws=150, p_aw=0.05, p_flip=0.01, legal=False, p_ready=1.0)
    check(dut, seen, exact=True)
    assert any(len(pages_touched(aw, aperture=dut.aperture)) > 1 for _, aw in seen.aws)
