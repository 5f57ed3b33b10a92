"""Page-walk cache: a small nested TLB of GPA page -> HPA page translations."""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from vmassist.formats.mmu import PA_BITS

from ..common.params import require
from .tlb import encode, first_one, mux_onehot, size_mask

__all__ = ["PwcEntry", "Pwc"]

PN_BITS = PA_BITS - 12


class PwcEntry(data.Struct):
    """A cached EPT translation of one EPT leaf page (4K, 2M or 1G): page numbers aligned to the
    leaf's size, the permissions, and the leaf level."""

    valid: 1
    gpn: PN_BITS
    hpn: PN_BITS
    r: 1
    w: 1
    x: 1
    level: 2


class Pwc(wiring.Component):
    """Fully associative nested TLB: the EPT leaf translations the 2-D walker used. An entry
    serves every GPA inside its leaf page, so one 2M EPT page needs one entry.

    Lookup is combinational. A fill goes to the lowest invalid entry, else to a round-robin
    pointer that advances after each fill into a full cache.

    Parameters
    ----------
    entries : int
        1 to 64.

    Members
    -------
    q_gpn : In
        GPA page to look up; ``hit``, ``entry`` and ``hpn`` (the HPA page of ``q_gpn``) answer in
        the same cycle.
    fill, fill_entry : In
    flush : In
        Invalidate everything.
    """

    def __init__(self, entries: int = 8):
        require(
            self,
            isinstance(entries, int) and 1 <= entries <= 64,
            ValueError(f"pwc entries must be an integer from 1 to 64, not {entries!r}"),
        )
        self._entries = entries
        super().__init__(
            {
                "q_gpn": In(PN_BITS),
                "hit": Out(1),
                "entry": Out(PwcEntry),
                "hpn": Out(PN_BITS),
                "fill": In(1),
                "fill_entry": In(PwcEntry),
                "flush": In(1),
            }
        )

    @property
    def entries(self) -> int:
        return self._entries

    def elaborate(self, platform):
        m = Module()
        n = self._entries
        ents = [Signal(PwcEntry, name=f"pwc{i}") for i in range(n)]
        rr = Signal(range(n))

        match = Signal(n)
        for i, e in enumerate(ents):
            m.d.comb += match[i].eq(
                e.valid & (((e.gpn ^ self.q_gpn) & ~size_mask(e.level, PN_BITS)) == 0)
            )
        m.d.comb += [self.hit.eq(match.any()), self.entry.eq(mux_onehot(first_one(match), ents))]
        mask = size_mask(self.entry.level, PN_BITS)
        m.d.comb += self.hpn.eq((self.entry.hpn & ~mask) | (self.q_gpn & mask))

        invalid = Signal(n)
        m.d.comb += invalid.eq(Cat(~e.valid for e in ents))
        full = ~invalid.any()
        slot = Signal(range(n))
        m.d.comb += slot.eq(Mux(full, rr, encode(first_one(invalid))))

        with m.If(self.flush):
            for e in ents:
                m.d.sync += e.valid.eq(0)
        with m.Elif(self.fill):
            for i, e in enumerate(ents):
                with m.If(slot == i):
                    m.d.sync += e.eq(self.fill_entry)
            with m.If(full):
                m.d.sync += rr.eq(Mux(rr == n - 1, 0, rr + 1))
        return m
