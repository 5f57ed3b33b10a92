"""Page-walk cache: a small nested TLB of GPA page -> HPA page translations."""

from amaranth import Array, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from vmassist.formats.mmu import PA_BITS

__all__ = ["PwcEntry", "Pwc"]

PN_BITS = PA_BITS - 12


class PwcEntry(data.Struct):
    """A cached EPT translation of one 4K GPA page, with its permissions and leaf level."""

    valid: 1
    gpn: PN_BITS
    hpn: PN_BITS
    r: 1
    w: 1
    x: 1
    level: 2


class Pwc(wiring.Component):
    """Fully associative cache of GPA -> HPA translations used by the 2-D walker.

    Lookup is combinational. A fill goes to the lowest invalid entry, else to a round-robin
    pointer that advances after each fill into a full cache.

    Parameters
    ----------
    entries : int
        1 to 64.

    Members
    -------
    q_gpn : In
        GPA page to look up; ``hit`` and ``entry`` answer in the same cycle.
    fill, fill_entry : In
    flush : In
        Invalidate everything.
    """

    def __init__(self, entries: int = 8):
        if not isinstance(entries, int) or not 1 <= entries <= 64:
            raise ValueError(f"pwc entries must be an integer from 1 to 64, not {entries!r}")
        self._entries = entries
        super().__init__({
            "q_gpn": In(PN_BITS), "hit": Out(1), "entry": Out(PwcEntry),
            "fill": In(1), "fill_entry": In(PwcEntry), "flush": In(1),
        })

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
            m.d.comb += match[i].eq(e.valid & (e.gpn == self.q_gpn))
        first = Signal(range(n))
        for i in reversed(range(n)):
            with m.If(match[i]):
                m.d.comb += first.eq(i)
        m.d.comb += [self.hit.eq(match.any()), self.entry.eq(Array(ents)[first])]

        slot = Signal(range(n))
        full = Signal()
        m.d.comb += [slot.eq(rr), full.eq(1)]
        for i in reversed(range(n)):
            with m.If(~ents[i].valid):
                m.d.comb += [slot.eq(i), full.eq(0)]

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
