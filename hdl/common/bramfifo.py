"""A synchronous FIFO in block RAM read through its output register, with the interface and the
accounting of :class:`amaranth.lib.fifo.SyncFIFOBuffered`."""

from types import SimpleNamespace

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .params import require
from .ram import PipelinedRam, formal_words

__all__ = ["BramFifo"]


class BramFifo(wiring.Component):
    """``depth`` words of ``width`` bits, first in first out, stored in a
    :class:`~hdl.common.PipelinedRam` (on ECP5, DP16KD block RAM with its output register).

    As ``SyncFIFOBuffered``: ``level`` counts every word written and not yet read, wherever it
    is; a word is taken in a cycle with ``w_en`` and ``w_rdy``, and ``w_rdy`` is low exactly
    while ``level == depth`` (so the FIFO holds exactly ``depth`` words); ``r_data`` is the
    oldest word while ``r_rdy`` is high, and a cycle with ``r_en`` and ``r_rdy`` takes it.
    ``level`` moves in the cycle after a write or a read, by both.

    Unlike ``SyncFIFOBuffered``, a word is on ``r_data`` :data:`READ_LATENCY` cycles after the
    cycle it is written in, the FIFO otherwise empty (two there): the word is written to the
    RAM a cycle late, from registers (``w_en`` and ``w_data`` reach no block RAM pin through
    logic), then fetched through the RAM's two read registers into a prefetch buffer of
    :data:`SKID` words (LUT RAM), which ``r_data`` reads. A fetch is decided from registers
    alone, a cycle ahead, whenever a written word is left in the RAM and the buffer has room
    for it, so a word is offered at most :data:`READ_LATENCY` cycles after its write, and once
    words are there ``r_rdy`` stays high while ``r_en`` takes one per cycle; ``r_en`` moves
    only the buffer, never the RAM. ``w_rdy``, ``r_rdy`` and ``level`` are registers.

    Parameters
    ----------
    width : int
        Bits of a word, at least 1.
    depth : int
        Words the FIFO holds, 2 to 16384. The RAM has ``depth`` rounded up to a power of two.

    Members
    -------
    w_en, w_data, w_rdy : In, In, Out
    r_en, r_data, r_rdy : In, Out, Out
    level : Out(range(depth + 1))

    Attributes
    ----------
    probe : SimpleNamespace
        Set by ``elaborate``, for formal harnesses (:meth:`invariants` names it): ``wr_ptr``
        (words taken) and ``rd_ptr`` (words fetched), modulo twice the RAM's depth, and
        ``rd_p1`` (``rd_ptr + 1``); ``seen`` (``wr_ptr`` a cycle ago: the words in the RAM by
        the end of this cycle); ``pend_en`` and ``pend_addr`` (the write the RAM makes this
        cycle); ``fetch`` (this cycle reads ``rd_ptr``'s word); ``s1v`` and ``s2v`` (the read
        latch and the output register hold a fetched word); ``held`` (fetched words not yet
        read); the prefetch buffer's ``skid_level``, ``skid_wr``, ``skid_rd`` and
        ``skid_words`` (by address; only the ``"formal"`` platform reads them out); ``full``
        (``level == depth``); ``ram``, the :class:`~hdl.common.PipelinedRam`.
    """

    #: Prefetch buffer words: with the fetch, the read latch and the output register ahead of
    #: it, four keep one word per cycle flowing.
    SKID = 4

    #: Cycles from a word's write to ``r_rdy``, the FIFO empty: the RAM write, the fetch, the
    #: read latch, the output register, the prefetch buffer.
    READ_LATENCY = 5

    def __init__(self, *, width: int, depth: int):
        for name, value in (("width", width), ("depth", depth)):
            require(
                self,
                isinstance(value, int) and not isinstance(value, bool),
                TypeError(f"{name} must be an integer, not {value!r}"),
            )
        require(self, width >= 1, ValueError(f"width must be at least 1, not {width}"))
        require(self, 2 <= depth <= 16384, ValueError(f"depth must be 2 to 16384, not {depth}"))
        self._width = width
        self._depth = depth
        super().__init__(
            {
                "w_en": In(1),
                "w_data": In(width),
                "w_rdy": Out(1),
                "r_en": In(1),
                "r_data": Out(width),
                "r_rdy": Out(1),
                "level": Out(range(depth + 1)),
            }
        )

    @property
    def width(self) -> int:
        return self._width

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform):
        m = Module()
        depth, skid_words = self._depth, self.SKID
        abits = max(1, ceil_log2(depth))
        m.submodules.ram = ram = PipelinedRam(self._width, 1 << abits)
        pbits = abits + 1  # pointers tell a full RAM from an empty one

        # ---- the count, and w_rdy ----
        full = Signal()  # == (level == depth)
        level = self.level
        put = self.w_en & ~full
        take = self.r_en & self.r_rdy
        up, down = put & ~take, take & ~put
        # ``level +- 1`` are summed from the register, and picked by the late enables.
        m.d.sync += [
            level.eq(Mux(up, level + 1, Mux(down, level - 1, level))),
            full.eq(Mux(up, level == depth - 1, Mux(down, 0, full))),
        ]
        m.d.comb += self.w_rdy.eq(~full)

        # ---- the write: a cycle late, from registers ----
        wr_ptr = Signal(pbits)
        pend_en, pend_addr, pend_data = Signal(), Signal(abits), Signal(self._width)
        seen = Signal(pbits)  # wr_ptr a cycle ago: the words in the RAM at the end of the cycle
        with m.If(put):
            m.d.sync += wr_ptr.eq(wr_ptr + 1)
        m.d.sync += [
            pend_en.eq(put),
            pend_addr.eq(wr_ptr[:abits]),
            pend_data.eq(self.w_data),
            seen.eq(wr_ptr),
        ]
        m.d.comb += [
            ram.w_en[0].eq(pend_en),
            ram.w_addr[0].eq(pend_addr),
            ram.w_data.eq(pend_data),
        ]

        # ---- the fetch: rd_ptr's word, into the read latch, the output register, the buffer
        rd_ptr = Signal(pbits)
        rd_p1 = Signal(pbits, init=1)  # rd_ptr + 1, so that no adder follows ``fetch``
        fetch = Signal()  # this cycle reads rd_ptr's word, written to the RAM before this cycle
        s1v, s2v = Signal(), Signal()
        m.submodules.skid = skid = Memory(shape=self._width, depth=skid_words, init=[])
        skid_w = skid.write_port()
        skid_r = skid.read_port(domain="comb")
        skid_level = Signal(range(skid_words + 1))
        skid_wr, skid_rd = Signal(range(skid_words)), Signal(range(skid_words))
        held = Signal(range(skid_words + 1))  # s1v + s2v + skid_level
        m.d.comb += [
            ram.r_en.eq(1),
            ram.r_oe.eq(1),
            ram.r_addr[0].eq(rd_ptr[:abits]),
            skid_w.en.eq(s2v),
            skid_w.addr.eq(skid_wr),
            skid_w.data.eq(ram.r_data),
            skid_r.addr.eq(skid_rd),
            self.r_data.eq(skid_r.data),
        ]
        with m.If(fetch):
            m.d.sync += [rd_ptr.eq(rd_p1), rd_p1.eq(rd_p1 + 1)]
        # The next cycle's fetch: a word left in the RAM (rd_ptr's next value short of the words
        # written by the end of this cycle), and room for it after this cycle's take.
        avail_next = Mux(fetch, rd_p1, rd_ptr) != wr_ptr
        held_up = held + fetch
        room = Mux(take, held_up <= skid_words, held_up < skid_words)
        m.d.sync += [
            fetch.eq(avail_next & room),
            s1v.eq(fetch),
            s2v.eq(s1v),
            held.eq(held_up - take),
            skid_level.eq(skid_level + s2v - take),
            skid_wr.eq(skid_wr + s2v),
            skid_rd.eq(skid_rd + take),
            # == skid_level' != 0, picked by the late ``take``
            self.r_rdy.eq(s2v | Mux(take, skid_level != 1, self.r_rdy)),
        ]
        self.probe = SimpleNamespace(
            wr_ptr=wr_ptr,
            rd_ptr=rd_ptr,
            rd_p1=rd_p1,
            seen=seen,
            pend_en=pend_en,
            pend_addr=pend_addr,
            fetch=fetch,
            s1v=s1v,
            s2v=s2v,
            held=held,
            skid_level=skid_level,
            skid_wr=skid_wr,
            skid_rd=skid_rd,
            skid_words=formal_words(m, skid, platform),
            full=full,
            ram=ram,
        )
        return m

    def invariants(self) -> list:
        """What every reachable state satisfies, as boolean values over :attr:`probe` (call
        after ``elaborate``): a formal harness asserts them to make its proof inductive."""
        p = self.probe
        stored = (p.wr_ptr - p.rd_ptr)[: len(p.wr_ptr)]  # taken, not yet fetched
        return [
            self.level <= self._depth,
            p.full == (self.level == self._depth),
            self.level == stored + p.held,
            p.held == p.s1v + p.s2v + p.skid_level,
            p.held <= self.SKID,
            self.r_rdy == (p.skid_level != 0),
            p.skid_wr == (p.skid_rd + p.skid_level)[: len(p.skid_wr)],
            p.seen == (p.wr_ptr - p.pend_en)[: len(p.seen)],
            p.pend_addr == p.seen[: len(p.pend_addr)],
            p.rd_p1 == (p.rd_ptr + 1)[: len(p.rd_ptr)],
            stored >= p.pend_en,
            ~p.fetch | (p.rd_ptr != p.seen),
        ]
