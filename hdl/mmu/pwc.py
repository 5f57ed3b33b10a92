"""Page-walk cache: a small nested TLB of GPA page -> HPA page translations."""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from vmassist.formats.mmu import PA_BITS

from ..common.bits import mux_onehot
from ..common.params import require
from .tlb import chunk_eqs, page_parts, size_mask

__all__ = ["PwcEntry", "Pwc"]

PN_BITS = PA_BITS - 12


def _lowest(vec):
    """The lowest set bit of a short vector alone, as plain logic (a carry chain costs more
    than it saves at this width)."""
    return Cat(vec[i] & ~vec[:i].any() if i else vec[0] for i in range(len(vec)))


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

    Lookup is pipelined: the compare is registered chunk by chunk, then the live matches, then
    the lowest match is read out; the answer comes ``LATENCY`` cycles after the query (a flush
    meanwhile drops it; no fill may land in between). A fill goes to the lowest invalid entry,
    else to a round-robin pointer that advances after each fill into a full cache. The slot is
    chosen a cycle ahead, so a fill may not follow a fill or a flush in the next cycle (the
    walker's never do).

    Parameters
    ----------
    entries : int
        1 to 64.

    Members
    -------
    q_gpn : In
        GPA page to look up; ``hit``, ``entry`` and ``hpn`` (the HPA page of ``q_gpn``) answer
        ``LATENCY`` cycles later.
    fill, fill_entry : In
    flush : In
        Invalidate everything.
    """

    LATENCY = 3

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
        rr = Signal(n, init=1)  # the round-robin pointer, one-hot

        valid = Signal(n)
        m.d.comb += valid.eq(Cat(e.valid for e in ents))
        # Stage 1: compare, in the three parts of a page number with the entry's size mask
        # applied. Stage 2: the lowest live match. Stage 3: read it out. A flush in any of the
        # three cycles drops the answer (it drops every entry).
        parts = [Signal(3, name=f"q_parts{i}") for i in range(n)]
        q_gpn1, q_gpn2, q_gpn3 = (Signal.like(self.q_gpn, name=f"q_gpn{k}") for k in (1, 2, 3))
        flush1 = Signal()
        match = Signal(n)
        first = Signal(n)
        hit2, hit3 = Signal(), Signal()
        entry3 = Signal(PwcEntry)
        m.d.sync += [
            q_gpn1.eq(self.q_gpn),
            q_gpn2.eq(q_gpn1),
            q_gpn3.eq(q_gpn2),
            flush1.eq(self.flush),
        ]
        for i, e in enumerate(ents):
            m.d.sync += parts[i].eq(page_parts(chunk_eqs(e.gpn, self.q_gpn, PN_BITS), e.level))
            m.d.comb += match[i].eq(e.valid & parts[i].all())
        m.d.sync += [
            first.eq(_lowest(match)),
            hit2.eq(match.any() & ~flush1 & ~self.flush),
            hit3.eq(hit2 & ~self.flush),
            entry3.eq(mux_onehot(first, ents)),
        ]
        m.d.comb += [self.hit.eq(hit3), self.entry.eq(entry3)]
        mask = size_mask(entry3.level, PN_BITS)
        m.d.comb += self.hpn.eq((entry3.hpn & ~mask) | (q_gpn3 & mask))

        # The fill slot (one-hot) is registered: it is computed from the previous cycle's
        # entries and pointer, hence the rule of no fill right after a fill or a flush.
        invalid = ~valid
        full = ~invalid.any()
        slot = Signal(n)
        m.d.sync += slot.eq(Mux(full, rr, _lowest(invalid)))

        with m.If(self.flush):
            for e in ents:
                m.d.sync += e.valid.eq(0)
        with m.Elif(self.fill):
            for i, e in enumerate(ents):
                with m.If(slot[i]):
                    m.d.sync += e.eq(self.fill_entry)
            with m.If(full):
                m.d.sync += rr.eq(rr.rotate_left(1))
        return m
