"""The NIC classifier (steering + rule engine) in Amaranth's simulator against the model's
``judge``, on generated traffic and random rules."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from hdl.nic.classify import Classifier
from models.nic.filter import Steering, judge
from models.nic.hw import rule_row, verdict_from_decision, vf_row
from models.nic.parse import hdr_fields, parse
from models.nic.rules import random_rules
from models.nic.traffic import generate_traffic
from vmassist.formats.nic import Decision


def _run(dut, *benches):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for bench in benches:
        sim.add_testbench(bench)
    sim.run()


async def _program(ctx, dut, rules):
    """Write every VF row and rule slot (absent ones invalid), one per cycle."""
    for v in range(dut.n_vfs):
        ctx.set(dut.vf_we, 1)
        ctx.set(dut.vf_idx, v)
        ctx.set(dut.vf_row, vf_row(rules.vf(v)))
        await ctx.tick()
        vf = rules.vf(v)
        for i in range(dut.rules):
            rule = vf.rules[i] if vf is not None and i < len(vf.rules) else None
            ctx.set(dut.vf_we, 0)
            ctx.set(dut.rule_we, 1)
            ctx.set(dut.rule_vf, v)
            ctx.set(dut.rule_idx, i)
            ctx.set(dut.rule_row, rule_row(rule))
            await ctx.tick()
    ctx.set(dut.vf_we, 0)
    ctx.set(dut.rule_we, 0)


def _decision(ctx, dut):
    value = ctx.get(dut.dec)
    names = [name for name, _ in Decision.as_shape()]
    return verdict_from_decision({name: int(getattr(value, name)) for name in names})


@pytest.mark.parametrize(
    ("rules_per_vf", "width", "seed"), [(16, 64, 1), (4, 64, 2), (64, 64, 3), (16, 512, 4)]
)
def test_decisions_match_the_model(rules_per_vf, width, seed):
    rng = random.Random(seed)
    rules = random_rules(rng, n_vfs=4, max_rules=rules_per_vf)
    traffic = generate_traffic(rules, 400, seed)
    parsed = [parse(r.data) for r in traffic.records]
    steer = Steering(rules)
    expected = [judge(steer, p) for p in parsed]
    dut = Classifier(n_vfs=4, rules=rules_per_vf, data_width=width)
    got = []

    async def drive(ctx):
        await _program(ctx, dut, rules)
        for p in parsed:
            while rng.random() < 0.3:
                await ctx.tick()
            ctx.set(dut.i_valid, 1)
            ctx.set(dut.i_hdr, hdr_fields(p))
            while not ctx.get(dut.i_ready):  # ready for the coming edge
                await ctx.tick()
            await ctx.tick()
            ctx.set(dut.i_valid, 0)

    async def collect(ctx):
        for _ in range(40 * len(expected) + 10_000):  # a lost decision fails, never hangs
            await ctx.tick()
            if ctx.get(dut.dec_valid):
                got.append(_decision(ctx, dut))
            if len(got) == len(expected):
                break

    _run(dut, drive, collect)
    assert len(got) == len(expected), f"{len(got)} decisions for {len(expected)} frames"
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == e, f"seed {seed} frame {i} ({traffic.kinds[i]}): hardware {g}, model {e}"
    assert {e.verdict for e in expected} >= {"pass", "unknown", "malformed"}


def test_engine_keeps_up_with_the_shortest_frames():
    # One frame every (shortest frame's beats) cycles, all needing rules: never stalled, and
    # the latency of an isolated frame is what the component says.
    rng = random.Random(7)
    rules = random_rules(rng, n_vfs=4, max_rules=16)
    vf = next(v for v in rules.vfs)
    frame = generate_traffic(rules, 50, 7)
    hdrs = [parse(r.data) for r in frame.records]
    good = next(p for p in hdrs if p.malformed is None and p.dst == vf.mac)
    dut = Classifier(n_vfs=4, rules=16, data_width=64)
    assert dut.lanes * dut.groups >= 16 and dut.groups <= 8
    seen = []

    async def drive(ctx):
        await _program(ctx, dut, rules)
        ctx.set(dut.i_valid, 1)
        ctx.set(dut.i_hdr, hdr_fields(good))
        await ctx.tick()
        ctx.set(dut.i_valid, 0)
        for _ in range(30):
            await ctx.tick()
        for _ in range(40):
            ctx.set(dut.i_valid, 1)
            assert ctx.get(dut.i_ready), "the engine fell behind the line"
            await ctx.tick()
            ctx.set(dut.i_valid, 0)
            for _ in range(7):
                await ctx.tick()

    async def watch(ctx):
        cycle = 0
        while cycle < 600:
            await ctx.tick()
            cycle += 1
            if ctx.get(dut.dec_valid):
                seen.append(cycle)

    _run(dut, drive, watch)
    programming = 4 * (1 + 16)
    assert seen[0] - programming == dut.latency(True)
    assert len(seen) == 41
