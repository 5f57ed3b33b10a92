"""The bit-vector helpers (``hdl/common/bits.py``) in Amaranth's simulator, exhaustively for
short vectors and at random for wide ones, against Python's integers: ``first_one`` on both
sides of ``LUT_PRIORITY`` (logic, then the carry chain), ``encode`` of its result,
``popcount`` and ``mux_onehot``."""

from __future__ import annotations

import random

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from hdl.common.bits import LUT_PRIORITY, encode, first_one, mux_onehot, popcount


def _lowest(v: int) -> int:
    return v & -v


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, LUT_PRIORITY, LUT_PRIORITY + 1, 12, 33])
def test_first_one_encode_popcount(n):
    vec = Signal(n)
    first, index, count = Signal(n), Signal(max(1, (n - 1).bit_length())), Signal(n.bit_length())
    values = [Signal(5, name=f"value{i}") for i in range(n)]
    picked = Signal(5)
    m = Module()
    m.d.comb += [
        first.eq(first_one(vec)),
        index.eq(encode(first)),
        count.eq(popcount(vec)),
        picked.eq(mux_onehot(first, values)),
    ]
    rng = random.Random(n)
    cases = range(1 << n) if n <= 12 else [rng.getrandbits(n) for _ in range(3000)] + [0]

    async def bench(ctx):
        for i, sig in enumerate(values):
            ctx.set(sig, (7 * i + 3) % 32)
        for v in cases:
            ctx.set(vec, v)
            low = _lowest(v)
            assert ctx.get(first) == low, (n, v)
            assert ctx.get(index) == (low.bit_length() - 1 if low else 0), (n, v)
            assert ctx.get(count) == bin(v).count("1"), (n, v)
            assert ctx.get(picked) == ((7 * (low.bit_length() - 1) + 3) % 32 if low else 0)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
