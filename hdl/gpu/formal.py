"""Formal proofs of the GPU dirty tracker's guarantees (``docs/gpu.md``, "Epochs, read-out and
the log"), run by :mod:`vmassist.formal`.

The :class:`~hdl.gpu.tracker.DirtyTracker` under proof is about the smallest its constructor
allows: pages of 128 bytes (``page_bits`` 7), 64 of them (an 8 KiB aperture: two 32-page bitmap
words per epoch), 14-bit addresses (so half the address space lies past the aperture), an op
queue of 2, and a log of 4 (one more than the least, so that ``log_threshold`` can exceed it).
With pages this small a legal burst touches up to 32 pages, any burst all 64, so the splitter's
page-by-page walk is exercised as much as the bitmap words' sharing. Everything around it is
free (``AnySeq``) in every cycle: ``awvalid``, ``awready`` and every AW field (any address,
length, size and burst type, the reserved one and WRAPs of undefined length included), ``flip``,
``dirty.ready``, ``log.ready`` and ``log_threshold``. The one assumption: no reset after the
initial state (the bitmaps are block RAM, which a reset does not clear; see
:class:`TrackerHarness`).

One page is *watched*: ``W``, an ``AnyConst``, so a proof covers every page. The harness works
out from each AW it sees taken whether the burst touches ``W``, by the contract's arithmetic
(:func:`touches`, checked against ``models/gpu/axi.py`` by ``tests/test_gpu_formal.py``), and
follows ``W`` per epoch parity: written in the live epoch of that parity (the current one, or
the ended one until the next flip), taken on ``dirty`` in the read-out, its log entry offered.
It asserts what ``docs/gpu.md`` promises of ``W`` (:class:`TrackerHarness` lists the claims).

Both proofs are by k-induction. The strengthening speaks of ``W``'s bit wherever it can be: the
tracker's two AW stages, its op queue (whose memory word the harness reads through a read port
it adds to the elaborated memory), the splitter, the read-modify-write stages, the bitmaps and
the read-out's word; the tracker exposes that state as ``probe`` (set by its ``elaborate``).

Not claimed: that a read-out ends (it waits for ``dirty.ready``, which is free); when the op
queue drops an AW (any drop is counted and flags its epoch, which is what the claims need; an op
queue of 2, a ``SyncFIFOBuffered``, refuses an AW for a cycle while it holds one); that the log
queue hands on what it takes, in order (``hdl/common/bramfifo.py``, which
``tests/test_bram_fifo_sim.py`` checks against a queue).
"""

from typing import ClassVar

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Elaboratable, Fragment, ResetSignal
from amaranth.lib import data
from amaranth.utils import ceil_log2

from vmassist.formal import Proof
from vmassist.formats.gpu import Burst

from ..common.bits import encode, first_one
from ..common.params import require
from .tracker import GROUP, WORD, DirtyTracker

__all__ = ["PROOFS", "TrackerHarness", "touches"]


class _Elaborated(Elaboratable):
    """An already elaborated fragment as a submodule: the harness elaborates the tracker itself
    so that it can read the probes the tracker's ``elaborate`` sets."""

    def __init__(self, fragment):
        self._fragment = fragment

    def elaborate(self, platform):
        return self._fragment


def _peek(fragment, *path):
    """The words of the memory at ``path`` (subfragment names) under ``fragment``, through
    asynchronous read ports added to its elaborated instance (Amaranth's ``MemoryInstance``):
    the formal model's view of a library FIFO's storage, which has no probe of its own."""
    for name in path:
        fragment = next(f for f, n, *_ in fragment.subfragments if n == name)
    depth = fragment._data.depth
    width = len(Signal(fragment._data.shape))
    words = []
    for a in range(depth):
        word = Signal(width, name=f"{'_'.join(path)}_word{a}")
        fragment.read_port(
            domain="comb",
            addr=Const(a, ceil_log2(depth)),
            data=word,
            en=Const(1, 1),
            transparent_for=(),
        )
        words.append(word)
    return words


def _onehot(bit):
    """``bit`` (an epoch parity) as a 2-bit one-hot."""
    return Cat(~bit, bit)


def touches(m, awaddr, awlen, awsize, awburst, page, *, page_bits):
    """A signal: the burst addresses a byte of ``page``, by ``docs/gpu.md``'s table (as
    ``models/gpu/axi.byte_spans``): FIXED ``[awaddr, aligned + nb)``; INCR
    ``[awaddr, aligned + n·nb)``; a WRAP of 2, 4, 8 or 16 beats ``[awaddr, b + n·nb)`` and
    ``[b, aligned)``; any other WRAP or the reserved type ``[awaddr - n·nb + 1, awaddr + n·nb)``
    (from 0). Written apart from the tracker's own arithmetic, which the proofs check against
    it."""
    wide = len(awaddr) + 17  # an address plus a burst's 2**15 bytes
    addr = awaddr
    nb, total, aligned, boundary = (Signal(wide, name=f"t_{n}") for n in ("nb", "total", "al", "b"))
    m.d.comb += [
        nb.eq(Const(1, 8) << awsize),
        total.eq((awlen + 1) << awsize),
        aligned.eq(addr & ~(nb - 1)),
        boundary.eq(addr & ~(total - 1)),  # addr // total * total: total is a power of two here
    ]
    lo1, hi1, lo2, hi2 = (Signal(wide, name=f"t_{n}") for n in ("lo1", "hi1", "lo2", "hi2"))
    has2 = Signal(name="t_has2")
    defined_wrap = (awburst == Burst.WRAP) & awlen.matches(1, 3, 7, 15)
    with m.If(awburst == Burst.FIXED):
        m.d.comb += [lo1.eq(addr), hi1.eq(aligned + nb - 1)]
    with m.Elif(awburst == Burst.INCR):
        m.d.comb += [lo1.eq(addr), hi1.eq(aligned + total - 1)]
    with m.Elif(defined_wrap):
        m.d.comb += [
            lo1.eq(addr),
            hi1.eq(boundary + total - 1),
            has2.eq(aligned > boundary),
            lo2.eq(boundary),
            hi2.eq(aligned - 1),
        ]
    with m.Else():
        m.d.comb += [
            lo1.eq(Mux(addr + 1 >= total, addr + 1 - total, 0)),
            hi1.eq(addr + total - 1),
        ]

    def holds(lo, hi):  # bytes lo..hi inclusive
        return ((lo >> page_bits) <= page) & (page <= (hi >> page_bits))

    out = Signal(name="t_touches")
    m.d.comb += out.eq(holds(lo1, hi1) | (has2 & holds(lo2, hi2)))
    return out


class TrackerHarness(Elaboratable):
    """The dirty tracker's guarantees for the watched page ``W`` (see the module's docstring).

    An AW belongs to the epoch current in the cycle it is taken (``epoch``), a flip's cycle
    included. An epoch's read-out runs from its flip until ``flip_ready`` is high again; it is
    *complete* while ``flip_ready`` is high, until the next flip, and ``readout_overflow`` is
    then its flag.

    ``claim="no_loss"`` (after KVM's ``dirty_log_test``):

    1. **No loss**: once the read-out of an epoch in which an AW touching ``W`` was taken is
       complete, ``W`` was taken on ``dirty`` in it, or its ``readout_overflow`` is set (which
       an AW of that epoch dropped for want of room in the op queue sets). This is stronger
       than the contract's "in epoch ``e`` or ``e + 1``": a write taken in the cycle of a flip
       is reported with the epoch that flip ends, never with the next.
    2. **Nothing spurious**: ``dirty`` offers ``W`` only during a read-out of an epoch in which
       ``W`` was written, at most once per read-out, and no page below ``W`` after it
       (ascending order).

    ``claim="overflow"`` (the log and the overflow flag):

    3. **Counted**: ``log_overflows`` goes up by one for each entry offered to the full log,
       and by nothing else; ``op_drops`` by one for each AW dropped; an entry is lost only
       when ``log_level == log_depth``; ``log_level <= log_depth``; ``irq`` is high exactly
       while ``log_level >= log_threshold`` or the log is full.
    4. **Logged once**: the log is offered ``(e, W)`` only if ``W`` was written in epoch ``e``,
       which is live (current, or ended and not yet read out), and at most once per epoch.
    5. **Flagged**: once an epoch's read-out is complete, ``W`` written in it had its entry
       taken by the log, or ``readout_overflow`` is set; and it is set if any entry of that
       epoch was lost, or any AW of it dropped.
    6. **Only when something was lost**: ``readout_overflow`` of a complete read-out is set
       only if ``log_overflows`` or ``op_drops`` went up while that epoch was live.

    Claims 3-5 name where entries are made and AWs dropped, from the tracker's ``probe``: the
    log queue's write port (that the queue, a :class:`~hdl.common.bramfifo.BramFifo`, hands on
    what it takes, in order, is its own test's) and the op queue's refusals. Claims 1, 2 and 6
    are about the tracker's ports alone.

    Assumed: no reset after the initial state. A reset clears the tracker's registers but not
    its bitmaps (block RAM), so pages written before it can be reported in the first read-outs
    after it (with ``allow_reset`` the no-loss claim fails so, in 15 cycles).

    Parameters
    ----------
    claim : str
        ``"no_loss"`` or ``"overflow"``.
    log_depth, op_depth : int
        The tracker's; the strengthening is written for an op queue of 2 (one word of memory),
        and the log's for a depth of 3 or more.
    invariants : bool
        Assert the strengthening (needed for k-induction; BMC does not need it).
    bug : str, optional
        A false claim, for testing that the proof can fail. ``"flip_write_next"`` (no_loss):
        a write taken in a flip's cycle belongs to the next epoch. ``"drops_unflagged"``
        (no_loss): ``W`` written is always reported, flag or no flag. ``"log_never_lost"``
        (overflow): the log always takes ``W``'s entry. ``"irq_threshold_only"`` (overflow):
        ``irq`` is ``log_level >= log_threshold``, without the full log.
    allow_reset : bool
        Leave ``rst`` free (see above).
    mutant : str, optional
        A broken tracker, for testing that the proofs catch a real bug: ``"no_forwarding"``
        takes the read-modify-write's forwarding out (the elaborated tracker's assignment of
        R2's match bits, of words and of pages, replaced by 0), so a page's read misses the three
        writes ahead of it. BMC from reset finds W's entry logged twice in an epoch (overflow,
        step 14) and W lost from its read-out (no_loss, step 22).
    """

    CLAIMS = ("no_loss", "overflow")
    #: Each false claim, and the claim it belongs to.
    BUGS: ClassVar[dict[str, str]] = {
        "flip_write_next": "no_loss",
        "drops_unflagged": "no_loss",
        "log_never_lost": "overflow",
        "irq_threshold_only": "overflow",
    }

    #: Broken trackers, for testing that the proofs catch a real bug.
    MUTANTS = ("no_forwarding",)

    def __init__(
        self,
        claim: str = "no_loss",
        *,
        log_depth: int = 4,
        op_depth: int = 2,
        invariants: bool = True,
        bug: str | None = None,
        allow_reset: bool = False,
        mutant: str | None = None,
    ):
        require(
            self,
            claim in self.CLAIMS,
            ValueError(f"claim must be one of {self.CLAIMS}, not {claim!r}"),
        )
        require(
            self,
            bug is None or self.BUGS.get(bug) == claim,
            ValueError(f"bug must be None or one of the {claim!r} claim's, not {bug!r}"),
        )
        require(
            self,
            op_depth == 2 or not invariants,
            ValueError(f"the strengthening is written for op_depth 2, not {op_depth}"),
        )
        require(
            self,
            mutant is None or mutant in self.MUTANTS,
            ValueError(f"mutant must be None or one of {self.MUTANTS}, not {mutant!r}"),
        )
        self.claim = claim
        self.mutant = mutant
        self.bug = bug
        self.invariants = invariants
        self.allow_reset = allow_reset
        self.dut = DirtyTracker(
            page_bits=7, aperture_bits=13, addr_width=14, log_depth=log_depth, op_depth=op_depth
        )

    def elaborate(self, platform):
        m = Module()
        t = self.dut
        frag = Fragment.get(t, platform)
        if self.mutant == "no_forwarding":
            fwd = t.probe.r[1]["fwd"]
            sync = frag.statements["sync"]
            (i,) = (i for i, s in enumerate(sync) if getattr(s, "lhs", None) is fwd)
            sync[i] = fwd.eq(0)
        m.submodules.tracker = _Elaborated(frag)
        aw = t.aw

        # ---- the environment: everything free ----
        m.d.comb += [
            aw.awvalid.eq(AnySeq(1)),
            aw.awready.eq(AnySeq(1)),
            aw.awaddr.eq(AnySeq(len(aw.awaddr))),
            aw.awlen.eq(AnySeq(8)),
            aw.awsize.eq(AnySeq(3)),
            aw.awburst.eq(AnySeq(2)),
            t.flip.eq(AnySeq(1)),
            t.dirty.ready.eq(AnySeq(1)),
            t.log.ready.eq(AnySeq(1)),
            t.log_threshold.eq(AnySeq(len(t.log_threshold))),
        ]
        if not self.allow_reset:
            m.d.comb += Assume(~ResetSignal())

        # ---- the watched page, and whether the AW taken now touches it ----
        h = _Watch()
        h.w_page = w_page = Signal(range(t.pages))
        m.d.comb += w_page.eq(AnyConst(len(w_page)))
        h.covers = Signal()
        hit = touches(m, aw.awaddr, aw.awlen, aw.awsize, aw.awburst, w_page, page_bits=t.page_bits)
        m.d.comb += h.covers.eq(aw.awvalid & aw.awready & hit)

        # ---- W, epoch by epoch ----
        h.cur = cur = t.epoch
        h.prev = prev = ~cur
        h.flipped = flipped = t.flip & t.flip_ready
        h.starts = starts = Mux(flipped, _onehot(prev), 0)  # the epoch parity that starts
        w_epoch = cur
        if self.bug == "flip_write_next":
            w_epoch = Mux(flipped, prev, cur)
        h.wr = wr = Signal(2)  # W written in the live epoch of each parity
        m.d.sync += wr.eq((wr & ~starts) | Mux(h.covers, _onehot(w_epoch), 0))
        h.em = em = Signal()  # W taken on `dirty` in the read-out running, or the last one
        d = t.dirty
        with m.If(flipped):
            m.d.sync += em.eq(0)
        with m.Elif(d.valid & d.ready & (d.payload == w_page)):
            m.d.sync += em.eq(1)
        h.done = done = t.flip_ready  # the ended epoch's read-out is complete
        wr_prev = wr.bit_select(prev, 1)
        over = t.readout_overflow

        if self.claim == "no_loss":
            escape = Const(0) if self.bug == "drops_unflagged" else over
            m.d.comb += [
                # 1
                Assert(~done | ~wr_prev | em | escape),
                # 2
                Assert(~d.valid | ~done),
                Assert(~(d.valid & (d.payload == w_page)) | (wr_prev & ~em)),
                Assert(~(d.valid & (d.payload < w_page)) | ~em),
            ]
        else:
            self._overflow(m, t, h)
        if self.invariants:
            self._strengthen(m, t, frag, h)
        return m

    def _overflow(self, m, t, h):
        """Claims 3-6."""
        pr = t.probe
        cur, prev, done, wr = h.cur, h.prev, h.done, h.wr
        over = t.readout_overflow
        lq = pr.logq
        entry = data.View(t.log_layout, lq.w_data)
        lost = lq.w_en & ~lq.w_rdy
        ep = entry.epoch
        h.offer_w = offer_w = lq.w_en & (entry.page == h.w_page)
        h.logged = logged = Signal(2)  # W's entry offered, in the live epoch of each parity
        h.kept = kept = Signal(2)  # ... and taken
        h.lost_ep = lost_ep = Signal(2)  # an entry of the live epoch of that parity was lost
        h.drop_ep = drop_ep = Signal(2)  # an AW of it was dropped
        m.d.sync += [
            logged.eq((logged & ~h.starts) | Mux(offer_w, _onehot(ep), 0)),
            kept.eq((kept & ~h.starts) | Mux(offer_w & lq.w_rdy, _onehot(ep), 0)),
            lost_ep.eq((lost_ep & ~h.starts) | Mux(lost, _onehot(ep), 0)),
            drop_ep.eq((drop_ep & ~h.starts) | Mux(pr.dropped, _onehot(pr.b_epoch), 0)),
        ]
        # The counters and what moves them, a cycle late.
        ovf_d, drops_d = Signal(32), Signal(32)
        lost_d, dropped_d = Signal(), Signal()
        level_d = Signal.like(t.log_level)
        live_d = Signal(2)  # the live epoch parities
        m.d.sync += [
            ovf_d.eq(t.log_overflows),
            drops_d.eq(t.op_drops),
            lost_d.eq(lost),
            dropped_d.eq(pr.dropped),
            level_d.eq(t.log_level),
            live_d.eq(Mux(done, _onehot(cur), 0b11)),
        ]
        inc_log = t.log_overflows != ovf_d
        inc = inc_log | (t.op_drops != drops_d)
        lossy = Signal(2)  # a loss counter went up while the epoch of that parity was live
        h.lossy_now = lossy_now = lossy | Mux(inc, live_d, 0)
        m.d.sync += lossy.eq(lossy_now & ~h.starts)
        depth = t.log_depth
        full = t.log_level == depth
        irq = t.log_level >= t.log_threshold
        if self.bug != "irq_threshold_only":
            irq |= full
        at = _at
        m.d.comb += [
            # 3
            Assert(t.log_level <= depth),
            Assert(t.irq == irq),
            Assert(t.log_overflows == (ovf_d + lost_d)[:32]),
            Assert(t.op_drops == (drops_d + dropped_d)[:32]),
            Assert(~inc_log | (level_d == depth)),
            # 4
            Assert(~offer_w | (at(wr, ep) & ~at(logged, ep))),
            Assert(~offer_w | (ep == cur) | ~done),
            # 5
            Assert(~done | ~at(wr, prev) | at(kept, prev) | over),
            Assert(~done | ~at(lost_ep, prev) | over),
            Assert(~done | ~at(drop_ep, prev) | over),
            # 6
            Assert(~done | ~over | at(lossy_now, prev)),
        ]
        if self.bug == "log_never_lost":
            m.d.comb += Assert(~offer_w | lq.w_rdy)

    def _strengthen(self, m, t, frag, h):
        """The inductive invariants: what every reachable state satisfies, about ``W``'s bit
        wherever it can be. An update of epoch parity ``p`` can be in the AW register (``a``),
        the span register (``b``), the op queue's output register or memory word, the splitter,
        the read-modify-write stages R1..R4; its bit then in R4..R6's words, the bitmap, and,
        once its word is read out, the read-out's word register."""
        pr = t.probe
        cur, prev, wr, em = h.cur, h.prev, h.wr, h.em
        w_page = h.w_page
        w_word, w_bit = w_page[5:], w_page[:5]
        fsm, busy, scan_on = pr.fsm, pr.busy, pr.scan_on
        drain, emit = fsm.ongoing("drain"), fsm.ongoing("emit")
        prep = fsm.ongoing("prep")
        scan_states = Cat(*(fsm.ongoing(s) for s in ("wait", "take", "prep", "emit")))
        at = _at
        asserts = []

        # the AW in the `a` register touches W; then in the `k` and `l` registers
        a_cov, k_cov, l_cov = Signal(), Signal(), Signal()
        m.d.sync += [a_cov.eq(h.covers), k_cov.eq(a_cov), l_cov.eq(k_cov)]

        def span_has(first, last):
            return (first <= w_page) & (w_page <= last)

        ops = pr.ops
        inner = _peek(frag, "ops", "storage")
        assert len(inner) == 1  # op_depth 2: one word in memory, one in the output register
        pbits = len(pr.b_first)

        def op_entry(word):  # first, last, epoch
            return word[:pbits], word[pbits : 2 * pbits], word[2 * pbits]

        head_first, head_last, head_epoch = op_entry(ops.r_data)
        in_first, in_last, in_epoch = op_entry(inner[0])
        inner_live = (ops.level - ops.r_rdy)[: len(ops.level)] == 1
        r = pr.r  # R1..R6
        # (valid, epoch, holds W) of every place an update can be before the bitmap
        places = [
            (pr.a_valid, pr.a_epoch, a_cov),
            (pr.k_valid, pr.k_epoch, k_cov),
            (pr.l_valid, pr.l_epoch, l_cov),
            (pr.b_valid, pr.b_epoch, span_has(pr.b_first, pr.b_last)),
            (ops.r_rdy, head_epoch, span_has(head_first, head_last)),
            (inner_live, in_epoch, span_has(in_first, in_last)),
            (pr.s_active, pr.s_epoch, span_has(pr.s_page, pr.s_last)),
            *((s["valid"], s["epoch"], (s["word"] == w_word) & (s["bit"] == w_bit)) for s in r[:4]),
        ]
        inflight = [
            Cat(*(valid & (ep == p) & has for valid, ep, has in places)).any() for p in range(2)
        ]
        ram_w = [at(Mux(w_word, ram.probe.words[1], ram.probe.words[0]), w_bit) for ram in pr.rams]
        live = [(cur == p) | busy for p in range(2)]
        # W's word has been read out (and cleared) in the running read-out
        nwords = t.pages // WORD
        taken_w = scan_on & (pr.idx > w_word)
        groups = [pr.bits[k : k + GROUP] for k in range(0, WORD, GROUP)]
        bits_w = (prep | emit) & (pr.word == w_word) & at(pr.bits, w_bit)
        ov = pr.ov

        asserts += [
            Assert(~a_cov | pr.a_valid),
            Assert(~k_cov | pr.k_valid),
            Assert(~l_cov | pr.l_valid),
            # the read-out's state machine
            Assert(busy == ~fsm.ongoing("idle")),
            Assert(scan_on == scan_states.any()),
            Assert(~scan_on | prep | emit | (pr.idx < nwords)),
            Assert(~(prep | emit) | (pr.idx == pr.word + 1)),
            Assert(~(prep | emit) | (pr.last == (pr.word == nwords - 1))),
            Assert(~(fsm.ongoing("idle") | drain) | (pr.idx == 0)),
            # the read-out's word is on the bitmap's output register once `settle` is 0
            Assert(pr.settle <= 2),
            Assert(~prep | (pr.settle == 2)),
            Assert(~(fsm.ongoing("wait") | fsm.ongoing("take")) | (pr.settle == 0)),
            # the copies of the bitmaps' port registers, each by its block RAMs
            *(
                Assert(v)
                for e, ports in enumerate(pr.ports)
                for k in range(len(ports.clear))
                for v in (
                    ports.rmw_rd[k] == (r[0]["valid"] & (r[0]["epoch"] == e)),
                    ports.rmw_ra[k] == r[0]["word"],
                    ports.rmw_wr[k] == (r[3]["valid"] & (r[3]["epoch"] == e)),
                    ports.rmw_wa[k] == r[3]["word"],
                    ports.clear[k] == (fsm.ongoing("take") & (prev == e)),
                    ~(drain | fsm.ongoing("wait") | fsm.ongoing("take") | emit)
                    | (ports.scan_a[k] == pr.idx[: len(ports.scan_a[k])]),
                )
            ),
            # R2's and R3's one-hot masks are their bits', and R4's word has its page's bit
            *(Assert(~s["valid"] | (s["mask"] == (1 << s["bit"])[:WORD])) for s in r[1:3]),
            Assert(~r[3]["valid"] | at(r[3]["data"], r[3]["bit"])),
            # updates of the ended epoch only while draining (R6: until the first word's read)
            *(Assert(~(valid & (ep == prev)) | drain) for valid, ep, _ in places),
            Assert(~(r[4]["valid"] & (r[4]["epoch"] == prev)) | drain),
            Assert(~(r[5]["valid"] & (r[5]["epoch"] == prev)) | drain | fsm.ongoing("wait")),
            Assert(~(pr.lw_valid & (pr.lw_epoch == prev)) | drain),
            # the AWs queued or being split, per epoch parity; spans not empty
            *(
                Assert(
                    pr.pending[p]
                    == (ops.r_rdy & (head_epoch == p))
                    + (inner_live & (in_epoch == p))
                    + (pr.s_active & (pr.s_epoch == p))
                )
                for p in range(2)
            ),
            Assert(ops.level <= 2),
            Assert(~pr.s_active | (pr.s_page <= pr.s_last)),
            Assert(~pr.s_active | (pr.s_rem == (pr.s_last - pr.s_page)[: len(pr.s_rem)])),
            Assert(~pr.s_active | (pr.s_one == (pr.s_rem == 0))),
            Assert(~ops.r_rdy | (head_first <= head_last)),
            Assert(~inner_live | (in_first <= in_last)),
            # the read-out: W's bit leaves the bitmap for the word register, then `dirty`
            Assert(~(ram_w[0] & (prev == 0) & taken_w)),
            Assert(~(ram_w[1] & (prev == 1) & taken_w)),
            Assert(~bits_w | (at(wr, prev) & ~em)),
            Assert(~em | at(wr, prev)),
            Assert(~em | ~busy | taken_w),
            # in `emit`, each group's flag and lowest bit are its bits'; no flag set elsewhere
            Assert(emit | (pr.nz == 0)),
            *(
                Assert(
                    ~emit
                    | (
                        (nz == g.any())
                        & (~nz | ((low == encode(first_one(g))) & (lm == first_one(g))))
                    )
                )
                for nz, low, lm, g in zip(pr.nz, pr.lows, pr.lowm, groups, strict=True)
            ),
        ]
        # W's log entry, on its way to the log (offered the cycle after R4)
        pend_w = [pr.lw_valid & (pr.lw_epoch == p) & (pr.lw_page == w_page) for p in range(2)]
        if self.claim == "overflow":
            offered = [at(h.logged, p) | pend_w[p] for p in range(2)]
        for p in range(2):
            w = at(wr, p)

            def mine(s, p=p):
                return s["valid"] & (s["epoch"] == p) & (s["word"] == w_word)

            asserts += [
                # W is nowhere it was not written
                *(Assert(~(valid & (ep == p) & has) | w) for valid, ep, has in places),
                Assert(~ram_w[p] | (w & live[p])),
                # and, written, somewhere (or its epoch flagged)
                Assert(~w | at(ov, p) | ram_w[p] | inflight[p] | ((p == prev) & (em | bits_w))),
            ]
            # R4..R6's words have W's bit as the bitmap does (R6's unless R5 wrote its word
            # since), so the forwarding neither loses it nor makes it up.
            for s in r[3:6]:
                newest = ~mine(r[4]) if s is r[5] else 1
                asserts += [
                    Assert(~(mine(s) & newest & ram_w[p]) | at(s["data"], w_bit)),
                    Assert(~(mine(s) & at(s["data"], w_bit)) | w),
                ]
            if self.claim == "overflow":
                asserts += [
                    Assert(~at(h.logged, p) | w),
                    Assert(~at(h.kept, p) | at(h.logged, p)),
                    Assert(~(at(h.logged, p) & ~at(h.kept, p)) | at(ov, p)),
                    Assert(~at(h.lost_ep, p) | at(ov, p)),
                    Assert(~at(h.drop_ep, p) | at(ov, p)),
                    Assert(~at(ov, p) | at(h.lossy_now, p)),
                    # W's bit is in the bitmap exactly once its entry was offered, until its
                    # word is read out
                    Assert(~(live[p] & ~((p == prev) & taken_w)) | (ram_w[p] == offered[p])),
                    Assert(~w | at(ov, p) | at(h.kept, p) | inflight[p] | pend_w[p]),
                ]
                for s in r[3:6]:
                    is_w = (s["bit"] == w_bit) if s is r[3] else 0
                    asserts.append(Assert(~(mine(s) & at(s["data"], w_bit)) | offered[p] | is_w))
        if self.claim == "overflow":
            # the log queue's count: it refuses an entry exactly while it holds log_depth
            asserts += [Assert(inv) for inv in pr.logq.invariants()]
        m.d.comb += asserts


class _Watch:
    """The harness's signals about ``W``, shared by its parts."""


def _at(value, index):
    return value.bit_select(index, 1)


#: The tracker's proofs, by k-induction: k is the least that proves each (the strengthening
#: leaves the read-modify-write stages to the induction's unrolling). About 12 s (no_loss) and
#: 16 s (overflow) side by side on a 2-core machine, 25 s and 32 s with other work on it. BMC
#: from reset, which needs no strengthening, takes minutes to reach the 20 steps of a write
#: followed by its read-out, and each step longer than the last.
PROOFS: list[Proof] = [
    Proof("gpu.no_loss", lambda: TrackerHarness("no_loss"), depth=4, timeout=600),
    Proof("gpu.log_overflow", lambda: TrackerHarness("overflow"), depth=4, timeout=600),
]
