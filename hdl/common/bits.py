"""Bit-vector helpers shaped for FPGA timing: carry-chain priority, OR-tree encoders, AND-OR
multiplexers and a balanced popcount."""

import operator
from functools import reduce

from amaranth import Cat, Const, Value

__all__ = ["popcount", "sum_tree", "first_one", "encode", "mux_onehot"]


def popcount(vec):
    """Number of set bits, as a balanced tree of adders (a chain of ``n`` adders is ``n`` carry
    chains deep)."""
    return sum_tree(vec[i] for i in range(len(vec)))


def sum_tree(values):
    """The sum of ``values`` as a balanced tree of adders."""
    terms = list(values)
    while len(terms) > 1:
        odd = terms[-1:] if len(terms) % 2 else []
        terms = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)] + odd
    return terms[0] if terms else Const(0, 1)


#: Widest vector :func:`first_one` builds from LUTs rather than the carry chain.
LUT_PRIORITY = 8


def first_one(vec):
    """The lowest set bit of ``vec`` alone. Up to :data:`LUT_PRIORITY` bits, each bit is a
    function of itself and the bits below it, a LUT or two, which abc merges with the logic
    around it; wider, through the carry chain (``v & -v``), instead of an ``n``-deep priority
    mux. Entering and leaving a carry chain costs more than two LUT levels on ECP5."""
    n = len(vec)
    if n <= LUT_PRIORITY:
        return Cat(vec[i] & ~vec[:i].any() if i else vec[0] for i in range(n))
    return (vec & (~vec + 1))[:n]


def encode(onehot):
    """Index of the set bit of a one-hot vector, as a tree of ORs."""
    n = len(onehot)
    bits = max(1, (n - 1).bit_length())
    return Cat(
        *(
            Cat(*(onehot[i] for i in range(n) if i >> b & 1)).any() if n > 1 << b else Const(0, 1)
            for b in range(bits)
        )
    )


def mux_onehot(onehot, values):
    """AND-OR multiplexer: the value whose one-hot select bit is set (0 when none is)."""
    width = len(Value.cast(values[0]))
    terms = [Value.cast(v) & onehot[i].replicate(width) for i, v in enumerate(values)]
    return reduce(operator.or_, terms)
