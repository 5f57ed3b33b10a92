"""The NIC's counters (``hdl/nic/filter.py``, ``_Counters``) in Amaranth's simulator, against a
dictionary of counts: decisions every cycle, most of them hits of a few rules, so that the
rule-hit memory's read-modify-write pipeline meets every distance of repeated rows (back to
back, one and two cycles apart); and every counter read back through the selection, which
must show it ``READ_LATENCY`` cycles after the selection changes."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from amaranth import Elaboratable, Module, Signal
from amaranth.sim import Simulator

from hdl.nic.filter import _Counters
from vmassist.formats.nic import CounterKind, Decision, VerdictCode

N_VFS, RULES = 3, 5


class _Harness(Elaboratable):
    def __init__(self):
        self.valid = Signal()
        self.dec = Signal(Decision)
        self.reinject = Signal(N_VFS)
        self.kind = Signal(4)
        self.vf = Signal(8)
        self.rule = Signal(8)
        self.counters = None
        self.out = None

    def elaborate(self, platform):
        m = Module()
        self.counters = c = _Counters(m, N_VFS, RULES)
        c.decision(self.valid, self.dec)
        for k in range(N_VFS):
            c.bump(CounterKind.REINJECT, k, self.reinject[k])
        self.out = c.read(self.kind, self.vf, self.rule)
        return m


def _decision(rng: random.Random) -> dict:
    verdict = rng.choice([VerdictCode.PASS, VerdictCode.BLOCK, VerdictCode.BOUNCE])
    if rng.random() < 0.1:
        return {"verdict": rng.choice([VerdictCode.UNKNOWN, VerdictCode.MALFORMED])}
    d = {"verdict": verdict, "vf_valid": 1, "vf": rng.randrange(N_VFS)}
    if rng.random() < 0.8:
        # A few hot rules, so the same row comes back 1, 2 and 3 cycles apart.
        d |= {"rule_valid": 1, "rule": rng.choice([0, 0, 1, RULES - 1])}
    return d


@pytest.mark.parametrize("seed", [1, 2])
def test_counts_match_a_dictionary(seed):
    dut = _Harness()
    rng = random.Random(seed)

    async def bench(ctx):
        want: Counter = Counter()
        for _ in range(3000):
            busy = rng.random() < 0.9
            d = _decision(rng) if busy else {}
            rj = rng.getrandbits(N_VFS) if rng.random() < 0.2 else 0
            ctx.set(dut.valid, busy)
            ctx.set(dut.dec, d)
            ctx.set(dut.reinject, rj)
            if busy:
                v = VerdictCode(d["verdict"])
                if d.get("vf_valid"):
                    vf = d["vf"]
                    want[(CounterKind.PASS, vf, 0)] += v == VerdictCode.PASS
                    want[(CounterKind.BLOCK, vf, 0)] += v != VerdictCode.PASS
                    want[(CounterKind.BOUNCE, vf, 0)] += v == VerdictCode.BOUNCE
                    want[(CounterKind.DROP, vf, 0)] += v == VerdictCode.BLOCK
                    if d.get("rule_valid"):
                        want[(CounterKind.RULE_HITS, vf, d["rule"])] += 1
                want[(CounterKind.UNKNOWN, 0, 0)] += v == VerdictCode.UNKNOWN
                want[(CounterKind.MALFORMED, 0, 0)] += v == VerdictCode.MALFORMED
            for k in range(N_VFS):
                want[(CounterKind.REINJECT, k, 0)] += rj >> k & 1
            await ctx.tick()
        ctx.set(dut.valid, 0)
        ctx.set(dut.reinject, 0)
        await ctx.tick().repeat(4)  # the last hit's write lands
        selections = [
            *((CounterKind.RULE_HITS, vf, r) for vf in range(N_VFS) for r in range(RULES)),
            *((k, vf, 0) for k in (CounterKind.PASS, CounterKind.BLOCK) for vf in range(N_VFS)),
            *((k, vf, 0) for k in (CounterKind.BOUNCE, CounterKind.DROP) for vf in range(N_VFS)),
            *((CounterKind.REINJECT, vf, 0) for vf in range(N_VFS)),
            (CounterKind.UNKNOWN, 0, 0),
            (CounterKind.MALFORMED, 0, 0),
            (CounterKind.RULE_HITS, N_VFS, 0),  # names no counter: 0
            (CounterKind.PASS, N_VFS, 0),
        ]
        for kind, vf, rule in selections:
            ctx.set(dut.kind, kind)
            ctx.set(dut.vf, vf)
            ctx.set(dut.rule, rule)
            await ctx.tick().repeat(_Counters.READ_LATENCY)
            got = ctx.get(dut.out)
            assert got == want[(kind, vf, rule)], (kind, vf, rule, got)
        hot = [want[(CounterKind.RULE_HITS, vf, 0)] for vf in range(N_VFS)]
        assert min(hot) > 300  # the hot rows were hit back to back, often

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
