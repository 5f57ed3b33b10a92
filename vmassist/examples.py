"""A tiny self-contained design that exercises the tool flows (formal, synthesis, CLI) end to end.

It is not a product block: the infrastructure tests and ``make formal`` use it to show that the
toolchain itself works before any block's own proofs or figures are looked at.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["WrapCounter"]


class WrapCounter(wiring.Component):
    """A counter that counts ``en`` pulses modulo ``n``.

    Parameters
    ----------
    n : int
        The modulus, 2 or more.
    claim : int, optional
        The bound the formal property claims, ``count < claim`` (default ``n``: true). A smaller
        value makes a false property, which the formal runner must report as failing.

    Members
    -------
    en : In(1)
        Count this cycle.
    count : Out(range(n))
        The count, always below ``n``.

    Raises
    ------
    ValueError
        ``n`` is below 2 or ``claim`` is below 1.
    """

    def __init__(self, n: int = 10, *, claim: int | None = None):
        if not isinstance(n, int) or n < 2:
            raise ValueError(f"n must be an integer >= 2, not {n!r}")
        claim = n if claim is None else claim
        if not isinstance(claim, int) or claim < 1:
            raise ValueError(f"claim must be an integer >= 1, not {claim!r}")
        self._n = n
        self._claim = claim
        # range(n) takes ceil(log2(n)) bits: unless n is a power of two, the values n.. fit in
        # `count`, so the property has real states to rule out.
        super().__init__({"en": In(1), "count": Out(range(n))})

    @property
    def n(self) -> int:
        return self._n

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            with m.If(self.count == self._n - 1):
                m.d.sync += self.count.eq(0)
            with m.Else():
                m.d.sync += self.count.eq(self.count + 1)
        m.d.comb += Assert(self.count < self._claim, "count stays below the claimed bound")
        return m
