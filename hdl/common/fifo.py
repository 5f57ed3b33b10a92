"""A store-and-forward frame FIFO: a reader only ever sees whole frames."""

from types import SimpleNamespace

from amaranth import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .axis import FrameBeat
from .params import require, require_shape
from .ram import PipelinedRam, formal_words
from .replica import replicas

__all__ = ["PacketFifo", "SKID"]

#: Words of the skid buffer between the block RAM's output register and ``r``.
SKID = 4


class PacketFifo(wiring.Component):
    """Frames in, whole frames out, stored in a :class:`~hdl.common.PipelinedRam` of ``depth``
    words (block RAM read through its output register).

    Write side: a writer never waits. Each beat goes to the tentative write pointer; the beat
    with ``w_last`` commits the frame, whose first beat the reader can see five cycles after
    that one, with the pipeline idle (``READ_LATENCY``). The block RAM is written a cycle after
    the beat, from registers alone (the word, its address and the enable, each by its block
    RAM), so no logic of the write side's inputs lies between a flip-flop and the RAM. A
    beat that finds the memory full (``level == depth`` at the start of its cycle) marks its
    frame overflowed: the rest of the frame is ignored and at its ``w_last`` the tentative
    pointer rolls back to the last commit, so no beat of it is ever read. A frame of more than
    ``depth`` beats therefore never fits; one of ``depth`` beats fits in an empty FIFO.

    Read side: first-word-fall-through, one beat per cycle while ``r.ready`` is held. Words are
    fetched through the block RAM's two read registers into a skid buffer of :data:`SKID` words
    that ``r`` reads; ``r.valid`` and ``r.payload.last`` are registers, ``r.payload.data`` the
    skid buffer's read, and ``r.ready`` moves only the skid buffer, never the block RAM (whose
    enables are constant).

    Parameters
    ----------
    shape : shape-castable
        Shape of one data word.
    depth : int
        Words of memory; a power of two, at least 2.

    Members
    -------
    w_valid, w_data, w_last : In
        A beat of the frame being written; ``w_data`` has ``shape``.
    w_abort : In
        Discard the frame being written (back to the last commit, no pulse), including a beat
        offered in the same cycle. Harmless between frames.
    committed : Out
        One-cycle pulse, the cycle after a ``w_last`` beat that committed its frame.
    overflow : Out
        One-cycle pulse, the cycle after the ``w_last`` beat of an overflowed frame.
    r : ``Out(stream.Signature(FrameBeat(shape)))``
        The frames, each whole, in the order they were committed.
    level : Out
        Memory words in use, the frame being written included; a beat offered while
        ``level == depth`` overflows its frame. Fetched words (in the read registers or the
        skid buffer, the one on ``r`` included) are not counted: they have left the memory.
    frames : Out
        Committed frames not yet fully read, the one on ``r`` included (up to
        ``depth + SKID``).

    Attributes
    ----------
    probe : SimpleNamespace
        Set by ``elaborate``, for formal harnesses: the pointers ``wr_ptr``, ``commit_ptr`` and
        ``rd_ptr`` (word counts modulo a power of two above ``depth + SKID``; ``rd_ptr`` is
        the next word to fetch); ``wr_p1`` and ``commit_p1`` (``wr_ptr`` and ``commit_ptr`` plus
        1); ``rd_p1``, ``rd_m2`` and ``rd_lim`` (``rd_ptr`` plus 1, ``depth - 2`` and ``depth -
        1``); the registered flags ``avail`` (``rd_ptr != seen``),
        ``full`` (``level == depth``), ``fills`` (``level == depth - 1``),
        ``c_full`` (committed words ``== depth``) and ``dropping``; ``fetch``, the copies of
        the fetch decision (each ``held < SKID`` and ``avail``);
        ``copies``, per block RAM the registers of its write enable and addresses (``(w_ok,
        w_addr, r_addr)``: last cycle's ``~full`` and ``wr_ptr``, and ``rd_ptr``, the pointers
        less their top bit); the write the RAM makes at the end of this cycle, ``pend_ok``,
        ``pend_ptr`` (last cycle's ``wr_ptr``, all its bits) and ``pend_data``; ``seen``, the
        commit pointer as the read side sees it (last cycle's ``commit_ptr``);
        ``ram`` (the :class:`~hdl.common.PipelinedRam`, whose own ``probe`` has the read latch
        and the words); ``s1v`` and ``s2v`` (the read latch and the output register hold a
        fetched word), ``held`` (fetched words not yet read), the skid buffer's
        ``skid_level``, ``skid_wr``, ``skid_rd`` and ``skid_words`` (by address), its words'
        ``last`` flags ``skid_last`` (by address), the head's ``head_last`` (``r.payload.last``)
        and ``valid`` (the read side's copy of ``r.valid``). Only the ``"formal"`` platform
        reads out the words.

    Raises
    ------
    TypeError
        ``shape`` is not shape-castable.
    ValueError
        ``depth`` is not a power of two of at least 2.
    """

    #: Cycles from a frame's commit (the cycle after its ``w_last``) to its first beat on ``r``,
    #: the FIFO otherwise empty: the RAM write, fetch, read latch, output register, skid buffer.
    READ_LATENCY = 4

    def __init__(self, shape, depth: int):
        require_shape(self, shape)
        require(
            self,
            isinstance(depth, int) and depth >= 2 and not depth & (depth - 1),
            ValueError(f"depth must be a power of two of at least 2, not {depth!r}"),
        )
        self._shape = shape
        self._depth = depth
        super().__init__(
            {
                "w_valid": In(1),
                "w_data": In(shape),
                "w_last": In(1),
                "w_abort": In(1),
                "committed": Out(1),
                "overflow": Out(1),
                "r": Out(stream.Signature(FrameBeat(shape))),
                "level": Out(range(depth + 1)),
                "frames": Out(range(depth + SKID + 1)),
            }
        )

    @property
    def shape(self):
        return self._shape

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        abits = (depth - 1).bit_length()

        # The RAM's enable and addresses in a copy per block RAM (replicas), each by its own.
        cols = PipelinedRam.columns(FrameBeat(self._shape), depth)
        m.submodules.ram = ram = PipelinedRam(FrameBeat(self._shape), depth, copies=cols)

        # Pointers count words modulo a power of two above depth + SKID: full and empty differ,
        # and so do the positions of every word stored or fetched (which formal views rely on;
        # at any real depth that is one bit more than the address).
        pbits = (depth + SKID).bit_length()
        wr_ptr = Signal(pbits)  # tentative: next word of the frame being written
        commit_ptr = Signal(pbits)  # end of the last committed frame
        # ``wr_ptr + 1`` and ``commit_ptr + 1``, kept in registers so that the next write
        # address (which a copy by every block RAM loads) is picked, never summed, after the
        # write case is known.
        wr_p1 = Signal(pbits, init=1)
        commit_p1 = Signal(pbits, init=1)
        rd_ptr = Signal(pbits)  # next word to fetch
        dropping = Signal()  # the frame being written has overflowed
        commit = Signal()  # this cycle's beat commits its frame
        held = Signal(range(SKID + 1))  # fetched words not yet read: s1v + s2v + skid_level
        avail = Signal()  # == (rd_ptr != seen): a committed word the read side sees is left
        # A committed word is fetched whenever there is room for it between the RAM and ``r``:
        # ``fetch`` == (held < SKID) & avail, worked out a cycle ahead into registers, as it
        # moves the read pointers, the flags and the block RAM's address; one copy for the
        # write side's flags, one (``fetch``) for the read side.
        fetch_next = Signal()
        fetch_w, fetch = replicas(m, platform, fetch_next, 2, name="fetch")

        m.d.comb += self.level.eq(wr_ptr - rd_ptr)
        # `level == depth`, registered, so the RAM's write enable depends on registers only.
        # Its next value, and those of the two flags it is made from (``fills``: one more word
        # fills the memory; ``c_full``: the committed words fill it), are picked by the
        # write-side case (hold, write, roll back) and ``fetch`` from flags and equalities of
        # registers, so the late inputs (``w_abort``, ``w_valid``) reach them through a mux.
        full, fills, c_full = Signal(), Signal(), Signal()
        full_next = Signal()
        # ``rd_ptr + 1``, ``rd_ptr + depth - 2`` and ``rd_ptr + depth - 1``, kept in registers
        # so that the compares are equalities of registers, with no adder before them.
        rd_p1 = Signal(pbits, init=1)
        rd_m2 = Signal(pbits, init=(depth - 2) % (1 << pbits))
        rd_lim = Signal(pbits, init=depth - 1)
        written, rolled = Signal(), Signal()  # this cycle's write case (else: hold)
        m.d.comb += full_next.eq(Mux(rolled, c_full, Mux(written, fills, full)) & ~fetch_w)
        m.d.sync += [
            full.eq(full_next),
            # level' == depth - 1: from level == depth - 1 (hold), depth - 2 (write), or
            # depth (hold and fetch); or committed level == depth - 1 (roll back)
            fills.eq(
                Mux(
                    rolled,
                    Mux(fetch_w, c_full, commit_ptr == rd_lim),
                    Mux(written, Mux(fetch_w, fills, wr_ptr == rd_m2), Mux(fetch_w, full, fills)),
                )
            ),
            # committed level' == depth: from committed level == depth (no commit), or level ==
            # depth - 1 (the commit of this cycle's word); never after a fetch
            c_full.eq(Mux(commit, fills, c_full) & ~fetch_w),
        ]
        wr_next = Signal(pbits)
        rd_next = Signal(pbits)
        dropping_next = Signal()
        m.d.sync += [
            wr_ptr.eq(wr_next),
            rd_ptr.eq(rd_next),
            dropping.eq(dropping_next),
        ]

        # Write side.
        m.d.comb += [
            wr_next.eq(wr_ptr),
            dropping_next.eq(dropping),
        ]
        # The RAM writes the word offered in each cycle the memory is not full, with a beat or
        # not, at ``wr_ptr``: that word is free (past every committed and every tentative
        # word), and a beat that is kept overwrites it before the pointer moves past it, so the
        # enable needs no input of the cycle (``w_valid`` and ``w_abort`` fan out no further).
        # The write lands a cycle late, from registers alone: the word in ``pend_data``, and
        # ``~full`` and ``wr_ptr`` in copies by every block RAM, each loaded from a flip-flop
        # (so no decision of the write side reaches a block RAM in the cycle it is made). The
        # read side waits a cycle for it: a commit shows there a cycle late (``avail``), and a
        # fetch never reads the word being written.
        w_oks = replicas(m, platform, ~full, cols, name="w_ok")
        w_addrs = replicas(m, platform, wr_ptr[:abits], cols, name="w_addr")
        pend_data = Signal(FrameBeat(self._shape))
        pend_ptr = Signal(pbits)  # for formal views: the pending write's position
        seen = Signal(pbits)  # for formal views: ``commit_ptr`` as the read side sees it
        m.d.sync += [
            pend_data.data.eq(self.w_data),
            pend_data.last.eq(self.w_last),
            pend_ptr.eq(wr_ptr),
            seen.eq(commit_ptr),
        ]
        m.d.comb += ram.w_data.eq(pend_data)
        m.d.sync += [self.committed.eq(0), self.overflow.eq(0)]
        with m.If(self.w_abort):
            m.d.comb += [wr_next.eq(commit_ptr), rolled.eq(1), dropping_next.eq(0)]
            m.d.sync += wr_p1.eq(commit_p1)
        with m.Elif(self.w_valid):
            with m.If(dropping | full):
                with m.If(self.w_last):
                    m.d.comb += [wr_next.eq(commit_ptr), rolled.eq(1), dropping_next.eq(0)]
                    m.d.sync += [wr_p1.eq(commit_p1), self.overflow.eq(1)]
                with m.Else():
                    m.d.comb += dropping_next.eq(1)
            with m.Else():
                m.d.comb += [wr_next.eq(wr_p1), written.eq(1)]
                m.d.sync += wr_p1.eq(wr_p1 + 1)
                with m.If(self.w_last):
                    m.d.comb += commit.eq(1)
                    m.d.sync += [
                        commit_ptr.eq(wr_p1),
                        commit_p1.eq(wr_p1 + 1),
                        self.committed.eq(1),
                    ]

        # Read side. Committed words are fetched through the block RAM's two read registers
        # into a four-word skid buffer (LUT RAM), which ``r`` reads. A fetch is decided from
        # registers alone (words held between the RAM and ``r`` below four), so ``r.ready``
        # reaches neither the RAM nor its pointer: it only moves the skid buffer. Four words
        # keep one beat per cycle flowing: two in the RAM's registers, one on ``r``, and room
        # for the fourth. Only committed words are fetched, so a read never meets the frame
        # being written (nor the word written in the same cycle).
        m.submodules.skid = skid = Memory(shape=FrameBeat(self._shape), depth=SKID, init=[])
        skid_w = skid.write_port()
        skid_r = skid.read_port(domain="comb")
        s1v = Signal()  # the RAM's read latch holds a fetched word
        s2v = Signal()  # the RAM's output register holds a fetched word
        skid_level = Signal(range(SKID + 1))
        skid_wr = Signal(range(SKID))
        skid_rd = Signal(range(SKID))
        # ``r.valid`` comes in two copies: one for the reader, one (``valid``) for the read
        # side's own logic, so the reader's fan-out puts no distance before ``fetch``.
        valid_next = Signal()
        r_valid, valid = replicas(m, platform, valid_next, 2, name="r_valid")
        pop = valid & self.r.ready
        held_next = Signal(range(SKID + 1))
        m.d.comb += held_next.eq(held + fetch - pop)
        # The head word's ``last`` is a register (``head_last``), picked a cycle ahead from the
        # skid words' ``last`` flags (registers too) or the word entering: a reader that acts
        # on a frame's last beat (the egress consumes its decision then) starts from a
        # flip-flop, not from the skid buffer's read.
        skid_last = Signal(SKID)
        head_last = Signal()
        with m.If(s2v):
            m.d.sync += skid_last.bit_select(skid_wr, 1).eq(ram.r_data.last)
        after_head = skid_last.bit_select((skid_rd + 1)[: len(skid_rd)], 1)
        entering = ram.r_data.last
        m.d.sync += head_last.eq(
            Mux(pop, Mux(skid_level >= 2, after_head, entering), Mux(valid, head_last, entering))
        )
        m.d.comb += [
            ram.r_en.eq(1),
            ram.r_oe.eq(1),
            skid_w.en.eq(s2v),
            skid_w.addr.eq(skid_wr),
            skid_w.data.eq(ram.r_data),
            skid_r.addr.eq(skid_rd),
            self.r.payload.data.eq(skid_r.data.data),
            self.r.payload.last.eq(head_last),
            self.r.valid.eq(r_valid),
            # == skid_level' != 0, picked by ``pop`` (late) rather than compared after the sum
            valid_next.eq(s2v | Mux(pop, skid_level != 1, valid)),
        ]
        m.d.sync += [
            s1v.eq(fetch),
            s2v.eq(s1v),
            held.eq(held_next),
            skid_level.eq(skid_level + s2v - pop),
            skid_wr.eq(skid_wr + s2v),
            skid_rd.eq(skid_rd + pop),
        ]
        m.d.comb += rd_next.eq(Mux(fetch, rd_p1, rd_ptr))  # no adder after `fetch`
        r_addrs = replicas(m, platform, rd_next[:abits], cols, name="r_addr")
        for k in range(cols):
            m.d.comb += [
                ram.w_en[k].eq(w_oks[k]),
                ram.w_addr[k].eq(w_addrs[k]),
                ram.r_addr[k].eq(r_addrs[k]),
            ]
        m.d.sync += [rd_p1.eq(rd_p1 + fetch), rd_m2.eq(rd_m2 + fetch), rd_lim.eq(rd_lim + fetch)]
        # == (rd_ptr != seen). A commit, seen the cycle it pulses ``committed``, leaves a word
        # to fetch (the frame's last word is past every fetch); else a fetch moves ``rd_ptr``
        # one nearer ``commit_ptr`` (then equal to ``seen``), compared ahead from registers.
        avail_next = self.committed | Mux(fetch, rd_p1 != commit_ptr, avail)
        m.d.sync += avail.eq(avail_next)
        # == (held_next < SKID) & avail_next, with the late ``pop`` (the reader's ``ready``)
        # picking between two compares of registers as the last LUT before ``fetch``.
        held_up = held + fetch
        room = Mux(pop, held_up <= SKID, held_up < SKID)
        m.d.comb += fetch_next.eq(room & avail_next)

        # Counted from the cycle its commit takes effect, as `committed` pulses.
        frame_out = pop & head_last
        with m.If(commit & ~frame_out):
            m.d.sync += self.frames.eq(self.frames + 1)
        with m.Elif(frame_out & ~commit):
            m.d.sync += self.frames.eq(self.frames - 1)

        self.probe = SimpleNamespace(
            wr_ptr=wr_ptr,
            commit_ptr=commit_ptr,
            wr_p1=wr_p1,
            commit_p1=commit_p1,
            full=full,
            rd_ptr=rd_ptr,
            avail=avail,
            fills=fills,
            c_full=c_full,
            rd_p1=rd_p1,
            rd_m2=rd_m2,
            rd_lim=rd_lim,
            fetch=[fetch_w, fetch],
            dropping=dropping,
            copies=list(zip(w_oks, w_addrs, r_addrs, strict=True)),
            pend_ok=w_oks[0],
            pend_ptr=pend_ptr,
            pend_data=pend_data,
            seen=seen,
            ram=ram,
            s1v=s1v,
            s2v=s2v,
            held=held,
            skid_level=skid_level,
            valid=valid,
            head_last=head_last,
            skid_last=skid_last,
            skid_wr=skid_wr,
            skid_rd=skid_rd,
            skid_words=formal_words(m, skid, platform),
        )
        return m
