"""Formal proofs of the NIC filter's delivery guarantees (``docs/nic.md``, "Formal proofs"), run by
:mod:`vmassist.formal`.

The whole :class:`~hdl.nic.filter.NicFilter` (parser, classifier, rule memories) is too big
for a solver, so the classifier is checked on its own (``formal_classify.py``, registered
below) and the delivery proofs are over its store-and-forward path, :class:`~hdl.nic.egress.Egress`
(the ingress buffer, the egress and the output queues), made small: 8-bit beats, 4 VFs, 4-beat
queues (the same generator as the filter's, where only the widths differ). Everything around
it is free: the frames written (any lengths, gaps and aborts), the decisions (any, in commit
order, whenever they come), the consumers' ``ready``.

One frame is *watched*: the harness picks it nondeterministically as any frame starts (``pick``,
an ``AnySeq``), so a proof covers every frame. It has an ``AnyConst`` length and decision, and
every beat's data is tagged (an ``Assume``): the top bit says whether the beat is the watched
frame's, the low bits give its index in the frame. The harness follows the watched frame from
the buffer's write port to its fate, and asserts what ``docs/nic.md`` promises of it.
"""

from types import SimpleNamespace

from amaranth import Cat, Module, Mux, Signal, Value
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Fragment

from vmassist.formal import Proof
from vmassist.formats.nic import Decision, VerdictCode

from ..common.fifo import SKID
from ..common.params import require
from .egress import Egress
from .formal_classify import ClassifierHarness

__all__ = ["PROOFS", "EgressHarness"]


class _Elaborated(Elaboratable):
    """An already elaborated fragment as a submodule: the harness elaborates the block itself so
    that it can read the probes the block's ``elaborate`` sets."""

    def __init__(self, fragment):
        self._fragment = fragment

    def elaborate(self, platform):
        return self._fragment


def _select(m, words, addr, shape):
    """``words[addr]`` as a signal of ``shape`` (a multiplexer)."""
    out = Signal(shape)
    with m.Switch(addr):
        for i, w in enumerate(words):
            with m.Case(i):
                m.d.comb += Value.cast(out).eq(Value.cast(w))
    return out


class _FifoView:
    """A :class:`~hdl.common.PacketFifo` seen as a sequence of pointer positions: the fetched
    words from position ``head`` on (the skid buffer's, its first on ``r``; then the block RAM's
    output register and read latch, each while it holds one), then the memory words from
    ``rd_ptr`` on.

    A position is *live* when it holds a beat not yet delivered, *committed* when that beat's
    frame has been committed (every fetched word is)."""

    def __init__(self, m, fifo, depth):
        pr = fifo.probe
        self.fifo = fifo
        self.depth = depth
        self.pw = len(pr.wr_ptr)
        self.abits = (depth - 1).bit_length()
        self.wr, self.cm, self.rd, self.dropping = pr.wr_ptr, pr.commit_ptr, pr.rd_ptr, pr.dropping
        self.seen = pr.seen  # the commit pointer as the read side sees it
        self.s1v, self.s2v, self.nskid = pr.s1v, pr.s2v, pr.skid_level
        self.held = self.nskid + self.s2v + self.s1v
        # The memory's words as they will be once the pending write has landed.
        self.words = [
            Mux(pr.pend_ok & (pr.pend_ptr[: self.abits] == a), pr.pend_data.as_value(), word)
            for a, word in enumerate(pr.ram.probe.words)
        ]
        self.shape = fifo.r.payload.shape()
        self.head = Signal(self.pw, name=f"{fifo.__class__.__name__.lower()}_head")
        m.d.comb += self.head.eq(self.rd - self.held)
        self.level = (self.wr - self.rd)[: self.pw]  # words in memory
        self.ncommitted = (self.cm - self.rd)[: self.pw]  # committed words in memory
        # Undelivered committed beats, the fetched ones included.
        self.pending = (self.cm - self.head)[: self.pw]
        self.m = m
        # (position, live, committed, beat) of every place a beat can be, in order
        self.fetched = []
        for i in range(SKID):
            word = _select(m, pr.skid_words, (pr.skid_rd + i)[: len(pr.skid_rd)], self.shape)
            live = i < self.nskid
            self.fetched.append(((self.head + i)[: self.pw], live, live, word))
        s2_pos = (self.head + self.nskid)[: self.pw]
        s1_pos = (s2_pos + self.s2v)[: self.pw]
        self.fetched.append((s2_pos, self.s2v, self.s2v, self.shape(pr.ram.r_data)))
        self.fetched.append((s1_pos, self.s1v, self.s1v, self.shape(pr.ram.probe.latch)))
        self._slots = None

    def slots(self):
        """(position, live, committed, beat) for each fetched word's place and each memory
        word."""
        if self._slots is None:
            self._slots = list(self.fetched)
            for i in range(self.depth):
                pos = (self.rd + i)[: self.pw]
                word = _select(self.m, self.words, pos[: self.abits], self.shape)
                self._slots.append((pos, i < self.level, i < self.ncommitted, word))
        return self._slots

    def _fetched_at(self, pos):
        return [(live & (p == pos), beat) for p, live, _c, beat in self.fetched]

    def live_at(self, pos):
        hits = [hit for hit, _beat in self._fetched_at(pos)]
        return Cat(*hits).any() | ((pos - self.rd)[: self.pw] < self.level)

    def beat_at(self, pos):
        out = Value.cast(_select(self.m, self.words, pos[: self.abits], self.shape))
        for hit, beat in self._fetched_at(pos):
            out = Mux(hit, Value.cast(beat), out)
        return out

    def last_at(self, pos):
        return self.shape(self.beat_at(pos)).last

    def rank(self, end):
        """Cycles a reader that takes a beat whenever one is offered needs to have every beat
        before position ``end`` (all committed): the beats, plus the cycles without one on
        ``r``. The last beat wanted is ``d`` places from ``r`` (0: in the skid buffer, 1: in
        the output register, 2: in the read latch, 3: still in memory); the words held in
        front of that place cover all but ``d`` minus their number of the cycles it takes to
        come forward."""
        beats = (end - self.head)[: self.pw]
        nskid, s2v = self.nskid, self.s2v

        def short(d, ahead):
            return Mux(ahead < d, d - ahead, 0)

        gaps = Mux(
            beats > self.held,
            short(3, self.held),
            Mux(
                beats <= nskid,
                0,
                Mux(s2v & (beats == nskid + 1), short(1, nskid), short(2, nskid + s2v)),
            ),
        )
        return beats + gaps


class EgressHarness(Elaboratable):
    """Delivery guarantees of :class:`~hdl.nic.egress.Egress`, for the watched frame ``W`` (any
    frame: see the module's docstring), with decision ``w_dec`` and length ``L``:

    1. **No blocked frame reaches a VF**: if ``w_dec`` is ``block`` or ``bounce``, no beat of W
       is ever offered on any ``vf[k]``.
    2. **No cross-VF delivery**: a beat of W is offered on ``vf[k]`` only if ``w_dec`` passes it
       to VF k, on ``vmm`` only if it is bounced, unknown or malformed (so a malformed frame
       never reaches a VF either), and there with ``user == w_dec``.
    3. **Nothing lost, nothing partial**: a frame the buffer refuses pulses ``overflow[n+1]``;
       once committed, W's last beat leaves the buffer and, the cycle after it passed the egress
       register, W is dropped (``block``), committed to its queue, or counted by that queue's
       ``overflow`` pulse; committed there, W is delivered with all its beats, in order, the
       first starting a frame on that output, none interleaved, ``last`` on its final beat
       only; and a consumer that stays ready gets it within ``depth + SKID`` cycles.
    4. **No head-of-line blocking**: egress never waits on an output: while decisions are
       there, W leaves the buffer within ``depth + SKID`` cycles, whatever the outputs do.

    Assumed of the environment: the beat tags; decisions only for committed frames (the k-th
    decision is the k-th committed frame's, so the one consumed while W is at the head is
    ``w_dec``), held until consumed; ``w_dec`` is a decision the classifier can make (one of
    the five verdicts; ``pass``, ``block`` and ``bounce`` name a VF below ``n_vfs``).

    The inductive strengthening relates the harness's counters of W (beats written, read,
    presented by the egress register, delivered) to the queues' pointers and memory words, which
    the formal platform exposes (``PacketFifo.probe``).

    Parameters
    ----------
    n_vfs, depth, data_width : int
        The :class:`~hdl.nic.egress.Egress` under proof.
    invariants : bool
        Assert the strengthening (needed for k-induction; BMC does not need it).
    bug : str, optional
        A false claim, for testing that the proof can fail: ``"swap_vfs"`` (the harness takes
        ``vf[0]`` for VF 1 and ``vf[1]`` for VF 0, as a design that swapped them would be) or
        ``"bounce_dropped"`` (claims a bounced frame is dropped, not sent to the VMM).
    bound : int, optional
        The bounded-response claim, in cycles (``depth + SKID`` by default, the least that
        holds: a full memory and a full skid buffer ahead of the last beat).
    """

    BUGS = ("swap_vfs", "bounce_dropped")

    def __init__(
        self,
        *,
        n_vfs: int = 2,
        depth: int = 4,
        data_width: int = 8,
        invariants: bool = True,
        bug: str | None = None,
        bound: int | None = None,
    ):
        require(
            self,
            bug is None or bug in self.BUGS,
            ValueError(f"bug must be one of {self.BUGS} or None, not {bug!r}"),
        )
        require(
            self,
            n_vfs >= 2 or bug != "swap_vfs",
            ValueError("bug 'swap_vfs' needs n_vfs >= 2"),
        )
        require(
            self,
            data_width >= depth.bit_length(),
            ValueError(f"data_width {data_width} is too narrow for the tags of depth {depth}"),
        )
        self.dut = Egress(data_width=data_width, n_vfs=n_vfs, depth=depth)
        self.invariants = invariants
        self.bug = bug
        #: Bounded response: the cycles, from W's commit to its queue, within which a consumer
        #: that stays ready has all of W; and from W's commit to the buffer, within which W has
        #: left it if the decisions were there throughout.
        self.bound = depth + SKID if bound is None else bound

    def elaborate(self, platform):
        m = Module()
        eg = self.dut
        m.submodules.egress = _Elaborated(Fragment.get(eg, platform))
        n, depth, width = eg.n_vfs, eg.depth, eg.data_width
        ib = (depth - 1).bit_length()  # index bits of the tag
        flag_bit = width - 1

        def flag(beat_data):
            return beat_data[flag_bit]

        def idx(beat_data):
            return beat_data[:ib]

        # ---- the environment ----
        m.d.comb += [
            eg.w_valid.eq(AnySeq(1)),
            eg.w_data.eq(AnySeq(len(eg.w_data.as_value()))),
            eg.w_last.eq(AnySeq(1)),
            eg.w_abort.eq(AnySeq(1)),
            eg.dec.valid.eq(AnySeq(1)),
            eg.dec.payload.eq(AnySeq(Decision.as_shape().size)),
            *(eg.vf[k].ready.eq(AnySeq(1)) for k in range(n)),
            eg.vmm.ready.eq(AnySeq(1)),
        ]
        outs = [*eg.vf, eg.vmm]  # output k: VF k's queue, then (k == n) the VMM's
        if self.bug == "swap_vfs":
            outs[0], outs[1] = outs[1], outs[0]
        pick = AnySeq(1)

        # The watched frame: length L = w_len1 + 1 and decision, fixed for the whole run.
        w_len1 = Signal(ib)
        w_dec = Signal(Decision)
        m.d.comb += [w_len1.eq(AnyConst(ib)), w_dec.eq(AnyConst(Decision.as_shape().size))]
        names_vf = w_dec.verdict.matches(VerdictCode.PASS, VerdictCode.BLOCK, VerdictCode.BOUNCE)
        m.d.comb += [
            Assume(w_dec.verdict <= VerdictCode.MALFORMED),
            Assume(~names_vf | (w_dec.vf_valid & (w_dec.vf < n))),
        ]
        dest = Signal(n + 1)  # W's queue, one-hot; 0 = dropped
        m.d.comb += dest.eq(eg.route(w_dec))
        if self.bug == "bounce_dropped":
            claimed = Signal(n + 1)
            m.d.comb += claimed.eq(Mux(w_dec.verdict == VerdictCode.BOUNCE, 0, dest))
        else:
            claimed = dest
        blocked = w_dec.verdict.matches(VerdictCode.BLOCK, VerdictCode.BOUNCE)

        # ---- following W ----
        IDLE, WR, CM, BUF, EG, INQ = range(6)
        st = Signal(range(6))
        nw = Signal(range(depth + 1))  # W's beats offered to the buffer
        nr = Signal(range(depth + 1))  # ... read out of the buffer by the egress
        nq = Signal(range(depth + 1))  # ... presented by the egress register
        no = Signal(range(depth + 1))  # ... delivered on W's output
        buf_v = _FifoView(m, eg.probe.buf, depth)
        qv = [_FifoView(m, q, depth) for q in eg.probe.queues]
        pw = buf_v.pw
        b_lo = Signal(pw)  # W's first position in the buffer
        q_lo = Signal(pw)  # ... in its queue
        # committed frames whose decision is not consumed (up to one per stored or fetched word)
        pend = Signal(range(depth + SKID + 2))
        dec_ahead = Signal(range(depth + SKID + 2))  # ... of them, committed before W

        # Write side of the buffer: W is picked as a frame starts.
        in_first = Signal(init=1)  # the next beat written starts a frame
        with m.If(eg.w_abort):
            m.d.sync += in_first.eq(1)
        with m.Elif(eg.w_valid):
            m.d.sync += in_first.eq(eg.w_last)
        wbeat = eg.w_valid & ~eg.w_abort
        start = (st == IDLE) & pick & wbeat & in_first
        w_now = start | (st == WR)
        wd = eg.w_data.data
        w_pos = Mux(st == WR, nw, 0)  # the index of W's beat offered now
        with m.If(eg.w_valid):
            m.d.comb += Assume(flag(wd) == w_now)
            with m.If(w_now):
                m.d.comb += [Assume(idx(wd) == w_pos), Assume(eg.w_last == (w_pos == w_len1))]

        consumed = eg.dec.valid & eg.dec.ready
        pend_next = pend + eg.committed - consumed
        m.d.sync += pend.eq(pend_next)
        # Decisions only for committed frames, held until consumed; W's when it is next.
        dec_q = Signal(Decision)
        dec_held = Signal()
        m.d.sync += [dec_held.eq(eg.dec.valid & ~eg.dec.ready), dec_q.eq(eg.dec.payload)]
        w_used = Signal()  # W's decision has been consumed
        w_turn = st.matches(WR, CM, BUF) & (dec_ahead == 0) & ~w_used  # the next one is W's
        m.d.comb += [
            Assume(~eg.dec.valid | (pend != 0)),
            Assume(~dec_held | (eg.dec.valid & (eg.dec.payload == dec_q))),
            Assume(~(eg.dec.valid & w_turn) | (eg.dec.payload == w_dec)),
        ]
        with m.If(consumed & (dec_ahead != 0)):
            m.d.sync += dec_ahead.eq(dec_ahead - 1)
        with m.If(consumed & w_turn):
            m.d.sync += w_used.eq(1)

        with m.If(start):
            m.d.sync += [
                st.eq(Mux(eg.w_last, CM, WR)),
                nw.eq(1),
                nr.eq(0),
                nq.eq(0),
                no.eq(0),
                b_lo.eq(buf_v.wr),
                dec_ahead.eq(pend_next),
                w_used.eq(0),
            ]
        with m.If(st == WR):
            with m.If(eg.w_abort):
                m.d.sync += st.eq(IDLE)
            with m.Elif(eg.w_valid):
                m.d.sync += nw.eq(nw + 1)
                with m.If(eg.w_last):
                    m.d.sync += st.eq(CM)
        ingress_ovf = eg.overflow[n + 1]
        with m.If(st == CM):
            m.d.comb += Assert(eg.committed | ingress_ovf)  # 3: a refused frame is counted
            m.d.sync += st.eq(Mux(eg.committed, BUF, IDLE))

        # Read side: W's beats leave the buffer for the egress register.
        rd = eg.probe.buf.r
        rd_w = rd.valid & rd.ready & flag(rd.payload.data.data)
        with m.If((st == BUF) & rd_w):
            m.d.sync += nr.eq(nr + 1)
            with m.If(nr == w_len1):
                m.d.sync += st.eq(EG)
        # W's decision goes with W's last beat, no sooner, no later (the k-th decision to the k-th
        # committed frame).
        w_end = (st == BUF) & rd_w & rd.payload.last
        m.d.comb += Assert((consumed & w_turn) == w_end)
        # 3: only a committed frame leaves the buffer (a refused one, not even in part).
        m.d.comb += Assert(~rd_w | (st == BUF))

        # The egress's frame boundaries: `rmid` after a beat read that was not a frame's last;
        # `efirst`: the beat in the egress register starts a frame.
        rmid = Signal()
        efirst = Signal()
        with m.If(rd.valid & rd.ready):
            m.d.sync += [rmid.eq(~rd.payload.last), efirst.eq(~rmid)]

        # The egress register presents W's beats to W's queue.
        e = eg.probe
        e_w = e.e_valid & flag(e.e_beat.data)
        with m.If(e_w):
            m.d.sync += nq.eq(nq + 1)
            with m.If(nq == 0):
                for k in range(n + 1):
                    with m.If(dest[k]):
                        m.d.sync += q_lo.eq(qv[k].wr)
        q_commit = (dest & Cat(q.fifo.committed for q in qv)).any()
        q_ovf = (dest & eg.overflow[: n + 1]).any()
        outcome = (st == EG) & (nq == w_len1 + 1)  # the cycle after W's last beat was presented
        with m.If(outcome):
            # 3: W is dropped by its verdict, committed to its queue, or counted
            m.d.comb += Assert((dest == 0) | q_commit | q_ovf)
            m.d.sync += st.eq(Mux((dest != 0) & q_commit, INQ, IDLE))

        # The outputs.
        o_first = Signal(n + 1, init=(1 << (n + 1)) - 1)  # the next beat on output k starts a frame
        o_w = Signal(n + 1)  # output k offers a beat of W
        for k, o in enumerate(outs):
            od = o.payload.data.data
            m.d.comb += o_w[k].eq(o.valid & flag(od))
            with m.If(o.valid & o.ready):
                m.d.sync += o_first[k].eq(o.payload.last)
            with m.If((st == INQ) & dest[k] & o_w[k] & o.ready):
                m.d.sync += no.eq(no + 1)
                with m.If(no == w_len1):
                    m.d.sync += st.eq(IDLE)

            # 1 and 2: W is offered on no output but its own.
            if k < n:
                m.d.comb += [
                    Assert(~o_w[k] | ~blocked),
                    Assert(~o_w[k] | (w_dec.verdict == VerdictCode.PASS) & (w_dec.vf == k)),
                ]
            m.d.comb += Assert(~o_w[k] | claimed[k])
            if k == n:
                m.d.comb += Assert(~o_w[k] | (o.payload.data.user == w_dec))
            # 3: whole, in order, not interleaved.
            m.d.comb += [
                Assert(~o_w[k] | (st == INQ)),
                Assert(~o_w[k] | (idx(od) == no)),
                Assert(~o_w[k] | (o.payload.last == (no == w_len1))),
                Assert(~o_w[k] | (no != 0) | o_first[k]),
                Assert(~(o.valid & (st == INQ) & dest[k] & (no != 0)) | o_w[k]),
            ]

        # Bounded response (3, 4).
        bound = self.bound
        out_ready = (dest & Cat(o.ready for o in outs)).any()
        q_wait = Signal(range(bound + 1))  # cycles in INQ with W's consumer ready throughout
        with m.If((st == INQ) & out_ready):
            m.d.sync += q_wait.eq(Mux(q_wait == bound, q_wait, q_wait + 1))
        with m.Else():
            m.d.sync += q_wait.eq(0)
        b_wait = Signal(range(bound + 1))  # cycles in BUF with a decision there throughout
        with m.If((st == BUF) & eg.dec.valid):
            m.d.sync += b_wait.eq(Mux(b_wait == bound, b_wait, b_wait + 1))
        with m.Else():
            m.d.sync += b_wait.eq(0)
        m.d.comb += [
            Assert(~(st == INQ) | (q_wait < bound)),
            Assert(~(st == BUF) | (b_wait < bound)),
        ]

        # Every fate is reachable (`cover` mode): the proofs are not vacuous.
        for k, o in enumerate(outs):
            m.d.comb += Cover(o_w[k] & o.ready & o.payload.last & (st == INQ))
        m.d.comb += [
            Cover(outcome & (dest == 0)),  # dropped by its verdict
            Cover(outcome & q_ovf),  # counted as its queue's overflow
            Cover((st == CM) & ~eg.committed),  # refused by the buffer
            # a frame as long as a queue is delivered; the bounds are tight
            Cover(o_w[0] & outs[0].ready & outs[0].payload.last & (w_len1 == depth - 1)),
            Cover((st == INQ) & (q_wait == bound - 1)),
            Cover((st == BUF) & (b_wait == bound - 1)),
        ]

        if self.invariants:
            self._strengthen(m, SimpleNamespace(**locals()))
        return m

    def _strengthen(self, m, h):
        """The inductive invariants, true of every reachable state; ``h`` is the harness's
        namespace. Positions are pointer values (one bit wider than an address), so that
        differences of positions in a queue are exact."""
        eg, e, n, depth = h.eg, h.e, h.n, h.depth
        _IDLE, WR, CM, BUF, EG, INQ = range(6)
        st, flag, idx, w_len1 = h.st, h.flag, h.idx, h.w_len1
        pw = h.pw
        L = w_len1 + 1
        asserts = [Assert(st <= INQ)]

        def diff(a, b):  # a - b between positions
            return (a - b)[:pw]

        def fifo_generic(v):
            """What holds of any PacketFifo: the memory is not overfull, the commit pointer lies
            between the read and write pointers, the fetched words are counted, only a frame's
            final beat has ``last`` (so uncommitted beats never do, and the last committed one
            does)."""
            pr = v.fifo.probe
            asserts.extend(
                [
                    Assert(v.level <= depth),
                    Assert(pr.held == v.held),
                    Assert(pr.full == (v.level == depth)),
                    # the read side sees a commit a cycle late, and never the pending write:
                    # rd_ptr <= seen <= pend_ptr, which lies within depth of rd_ptr if written
                    Assert(pr.avail == (pr.rd_ptr != pr.seen)),
                    *(Assert(f == ((v.held < SKID) & pr.avail)) for f in pr.fetch),
                    Assert(v.fifo.committed == (pr.seen != pr.commit_ptr)),
                    Assert(diff(pr.seen, pr.rd_ptr) <= v.ncommitted),
                    Assert(diff(pr.seen, pr.rd_ptr) <= diff(pr.pend_ptr, pr.rd_ptr)),
                    Assert(diff(pr.pend_ptr, pr.rd_ptr) <= depth),
                    Assert(~pr.pend_ok | (diff(pr.pend_ptr, pr.rd_ptr) < depth)),
                    *(
                        Assert((w_ok == pr.pend_ok) & (wa == pr.pend_ptr[: len(wa)]))
                        for w_ok, wa, _ in pr.copies
                    ),
                    *(Assert(ra == pr.rd_ptr[: len(ra)]) for _, _, ra in pr.copies),
                    Assert(pr.rd_p1 == (pr.rd_ptr + 1)[: v.pw]),
                    Assert(pr.wr_p1 == (pr.wr_ptr + 1)[: v.pw]),
                    Assert(pr.commit_p1 == (pr.commit_ptr + 1)[: v.pw]),
                    Assert(pr.rd_m2 == (pr.rd_ptr + depth - 2)[: v.pw]),
                    Assert(pr.rd_lim == (pr.rd_ptr + depth - 1)[: v.pw]),
                    Assert(pr.fills == (v.level == depth - 1)),
                    Assert(pr.c_full == (v.ncommitted == depth)),
                    Assert(v.nskid <= SKID),
                    Assert(v.held <= SKID),
                    Assert(pr.skid_wr == (pr.skid_rd + v.nskid)[: len(pr.skid_wr)]),
                    Assert(v.fifo.r.valid == (v.nskid != 0)),
                    Assert(pr.valid == v.fifo.r.valid),
                    Assert(~v.fifo.r.valid | (pr.head_last == v.fetched[0][3].last)),
                    *(
                        Assert(~live | (pr.skid_last.bit_select(at, 1) == beat.last))
                        for i, (_pos, live, _c, beat) in enumerate(v.fetched[:SKID])
                        for at in [(pr.skid_rd + i)[: len(pr.skid_rd)]]
                    ),
                    Assert(v.ncommitted <= v.level),
                    Assert((v.pending == 0) | v.last_at((v.cm - 1)[:pw])),
                ]
            )
            for _pos, live, committed, beat in v.slots():
                asserts.append(Assert(~(live & ~committed & beat.last)))

        def w_slots(v, lo, stored, user=None):
            """The live beats of ``v`` flagged as W's are exactly W's ``stored`` beats from
            position ``lo``, with their indices, ``last`` on the final one only."""
            for pos, live, _committed, beat in v.slots():
                off = diff(pos, lo)
                in_w = off < stored
                bd = beat.data.data
                asserts.append(Assert(~live | (flag(bd) == in_w)))
                asserts.append(
                    Assert(~(live & in_w) | ((idx(bd) == off) & (beat.last == (off == w_len1))))
                )
                if user is not None:
                    asserts.append(Assert(~(live & in_w) | (beat.data.user == user)))

        # ---- the ingress buffer ----
        b = h.buf_v
        fifo_generic(b)
        in_buf = st.matches(WR, CM, BUF)
        stored_b = Signal(pw)
        with m.Switch(st):
            with m.Case(WR):
                m.d.comb += stored_b.eq(diff(b.wr, h.b_lo))
            with m.Case(CM):
                m.d.comb += stored_b.eq(Mux(eg.committed, L, 0))
            with m.Case(BUF):
                m.d.comb += stored_b.eq(L)
        w_slots(b, h.b_lo, stored_b)
        ahead_b = diff(h.b_lo, b.head)  # beats before W in the buffer (nr == 0)
        n_last_before = sum(
            (live & committed & beat.last & (diff(pos, b.head) < ahead_b)).as_unsigned()
            for pos, live, committed, beat in b.slots()
        )
        n_last = sum(
            (live & committed & beat.last).as_unsigned() for _p, live, committed, beat in b.slots()
        )
        asserts += [
            Assert(h.in_first == ((b.wr == b.cm) & ~b.dropping)),
            Assert(h.pend + eg.committed == n_last),
            Assert(~h.rmid | (b.pending != 0)),
            Assert(~h.rmid | eg.dec.valid),
            # W being written
            Assert(~(st == WR) | (b.cm == h.b_lo)),
            Assert(~(st == WR) | ((h.nw != 0) & (h.nw <= w_len1))),
            Assert(~(st == WR) | (diff(b.wr, h.b_lo) <= h.nw)),
            Assert(~(st == WR) | b.dropping | (diff(b.wr, h.b_lo) == h.nw)),
            Assert(~(st == CM) | (b.wr == b.cm)),
            Assert(~(st == CM) | (diff(b.cm, h.b_lo) == Mux(eg.committed, L, 0))),
            Assert(~(st == CM) | eg.committed | eg.overflow[n + 1]),
            # W committed: the frames before it owe the decisions before W's
            Assert(~((st == BUF) & (h.nr == 0)) | (ahead_b + L <= b.pending)),
            Assert(~in_buf | (h.nr != 0) | (h.dec_ahead == n_last_before)),
            Assert(~in_buf | (h.nr == 0) | (h.dec_ahead == 0)),
            Assert(~in_buf | ~h.w_used),
            Assert(~(in_buf & (h.nr != 0)) | (b.head == (h.b_lo + h.nr)[:pw])),
            Assert(
                ~(in_buf & (h.nr == 0) & (b.head != h.b_lo))
                | (b.live_at((h.b_lo - 1)[:pw]) & b.last_at((h.b_lo - 1)[:pw]))
            ),
            Assert(~(in_buf & (h.nr == 0) & (b.head == h.b_lo)) | ~h.rmid),
            Assert(~st.matches(WR, CM) | ((h.nr == 0) & (h.nq == 0))),
            Assert(~(st == BUF) | (h.nr <= w_len1)),
            # ranking for the bounded response: a beat leaves every cycle a decision is there
            # (the read side has seen W's commit)
            Assert(~(st == BUF) | (diff((h.b_lo + L)[:pw], b.head) <= diff(b.seen, b.head))),
            Assert(~(st == BUF) | (h.b_wait + b.rank((h.b_lo + L)[:pw]) <= h.bound)),
        ]

        # ---- the egress register ----
        e_w = h.e_w
        emid = Cat((q.wr != q.cm) | q.dropping for q in h.qv)  # queue k is mid-frame
        dec_route = eg.route(eg.dec.payload)
        asserts += [
            Assert(~e_w | st.matches(BUF, EG)),
            Assert(~e_w | (h.nr == h.nq + 1)),
            Assert(~e_w | (idx(e.e_beat.data) == h.nq)),
            Assert(~e_w | (e.e_last == (h.nq == w_len1))),
            Assert(~e_w | (e.e_to == h.dest)),
            Assert(~e_w | (e.e_beat.user == h.w_dec)),
            Assert(~e_w | (h.efirst == (h.nq == 0))),
            Assert(~(st.matches(BUF, EG) & ~e_w) | (h.nr == h.nq)),
            Assert(~((st == BUF) & (h.nr != 0)) | (h.rmid & (e_w | ~e.e_valid))),
            Assert(~(st == EG) | (h.nr == L)),
            Assert(~(st == INQ) | ((h.nr == L) & (h.nq == L))),
            Assert(~e.e_valid | (h.rmid == ~e.e_last)),
            Assert(~(e.e_valid & ~e.e_last) | (eg.dec.valid & (e.e_to == dec_route))),
            Assert(~(e.e_valid & ~e.e_last) | (e.e_beat.user == eg.dec.payload)),
            Assert(emid == Mux(e.e_valid, Mux(h.efirst, 0, e.e_to), Mux(h.rmid, dec_route, 0))),
            Assert(e.e_go == Mux(e.e_valid, e.e_to, 0)),
            *(Assert(c == Cat(e.e_beat.data, e.e_beat.keep, e.e_last)) for c in e.copies[:-1]),
            Assert(e.copies[-1] == Cat(e.e_beat.as_value(), e.e_last)),
        ]

        # ---- the output queues ----
        writing = st.matches(BUF, EG) & (h.nq != 0) & ~h.outcome
        for k, v in enumerate(h.qv):
            fifo_generic(v)
            mine = h.dest[k]
            stored = Signal(pw)
            with m.If(mine):
                with m.If(writing):
                    m.d.comb += stored.eq(diff(v.wr, h.q_lo))
                with m.Elif(h.outcome):
                    m.d.comb += stored.eq(Mux(v.fifo.committed, L, 0))
                with m.Elif(st == INQ):
                    m.d.comb += stored.eq(L)
            w_slots(v, h.q_lo, stored, user=h.w_dec if k == n else None)
            ahead = diff(h.q_lo, v.head)
            placed = mine & ((st == INQ) | (h.outcome & v.fifo.committed))  # W committed in v
            asserts += [
                Assert(~(~h.o_first[k]) | (v.pending != 0)),
                Assert(~(mine & writing) | (v.cm == h.q_lo)),
                Assert(~(mine & writing) | (diff(v.wr, h.q_lo) <= h.nq)),
                Assert(~(mine & writing) | v.dropping | (diff(v.wr, h.q_lo) == h.nq)),
                Assert(~(mine & h.outcome) | (v.wr == v.cm)),
                Assert(~(mine & h.outcome) | (diff(v.cm, h.q_lo) == Mux(v.fifo.committed, L, 0))),
                Assert(~(mine & h.outcome) | v.fifo.committed | eg.overflow[k]),
                Assert(~(mine & (st == INQ)) | (h.no <= w_len1)),
                Assert(
                    ~(mine & (st == INQ))
                    | (diff((h.q_lo + L)[:pw], v.head) <= diff(v.seen, v.head))
                ),
                Assert(~(mine & (st == INQ)) | (h.q_wait + v.rank((h.q_lo + L)[:pw]) <= h.bound)),
                Assert(~(placed & (h.no != 0)) | (v.head == (h.q_lo + h.no)[:pw])),
                Assert(~(placed & (h.no != 0)) | ~h.o_first[k]),
                Assert(~(placed & (h.no == 0)) | (ahead + L <= v.pending)),
                Assert(~(placed & (h.no == 0) & (v.head == h.q_lo)) | h.o_first[k]),
                # the frame before W in the queue ends right before it
                Assert(
                    ~(mine & (writing | h.outcome | (st == INQ)) & (h.no == 0) & (v.head != h.q_lo))
                    | (v.live_at((h.q_lo - 1)[:pw]) & v.last_at((h.q_lo - 1)[:pw]))
                ),
                Assert(~st.matches(WR, CM, BUF, EG) | (h.no == 0)),
            ]
        m.d.comb += asserts


#: The NIC's proofs. The delivery proof is by k-induction (k = 1: the strengthening is
#: inductive by itself), about 4 minutes on two shared cores; the cover run (every fate of the
#: watched frame is reached, a whole queue-long frame delivered at step 20 and the tight bounds
#: at steps 16 and 22, through the read pipelines, so the assumptions leave the claims something
#: to be about) about 8 minutes on two loaded cores at depth 30. BMC from reset, which needs no
#: strengthening, grows too fast to be an alternative.
PROOFS: list[Proof] = [
    Proof("nic.egress_delivery", lambda: EgressHarness(n_vfs=4), depth=1, timeout=900),
    Proof(
        "nic.egress_cover",
        lambda: EgressHarness(n_vfs=4, invariants=False),
        depth=30,
        mode="cover",
        timeout=1800,
    ),
    # The classifier (``formal_classify.py``) at 2 VFs x 2 rules, 64 bits (1 lane, 2 groups),
    # a queue of 3: every row in place from cycle 6, when W may be taken. Depth 20 checks W
    # taken in cycle 6 (13 cycles to its decision) behind any paced frames before it: the step
    # of its decision alone takes the solver minutes, and each later step as long, so W in
    # later cycles would run past CI's time. The unpaced run, where the decision's value is
    # left out, checks W taken in cycles 6..17 against the 15-cycle bound.
    Proof("nic.classify_decision", lambda: ClassifierHarness(), depth=20, mode="bmc", timeout=900),
    Proof(
        "nic.classify_response",
        lambda: ClassifierHarness(paced=False),
        depth=33,
        mode="bmc",
        timeout=600,
    ),
]
