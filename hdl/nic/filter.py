"""The NIC filter: receive stream in, one stream per VF and one to the VMM out (``docs/nic.md``).

Data path, one beat per cycle end to end::

    rx ─┬─> ingress buffer (PacketFifo, whole frames) ──────────────┐
        └─> header capture ─> Parser ─> header queue ─> Classifier ─> verdict queue
                                                                     │
        egress: each buffered frame to the queue its verdict names ──┘
            ├─> VF k queue ─┐
            │               ├─ FrameArbiter ─> vf[k]      (re-injected frames merged fairly)
    reinject ─> VF k queue ─┘
            ├─> VMM queue ─> vmm (tuser = Decision)
            └─> drop (blocked, bounce off)

Nothing ever waits on a consumer: ``rx`` and ``reinject`` are always ready, egress moves one
beat per cycle, and a frame that finds no room in a queue is dropped whole and counted, so one
stalled VF never holds up another.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, memory, wiring
from amaranth.lib.wiring import In, Out

from vmassist.formats.nic import (
    HDR_BYTES,
    LEN_BITS,
    NIC_CSR,
    NIC_ID,
    CounterKind,
    Decision,
    HeaderRec,
    ParsedHdr,
    RuleEntry,
    VerdictCode,
    VfEntry,
)

from ..common import AxiLiteSignature, AxiStreamSignature, CsrBlock, FrameArbiter, PacketFifo
from ..common.bits import popcount
from ..common.params import require
from .classify import Classifier
from .egress import Egress, beat_layout
from .parser import Parser

__all__ = ["NicFilter"]

#: Parsed headers that may be between the header capture and the classifier at once.
HDR_QUEUE = 32


class _Credits:
    """Room for ``depth`` frames in a queue filled the cycle after a frame's last beat (the
    ``push``) and emptied by ``pop``: a frame is admitted at its last beat only if it will find
    room, so the queue never overflows."""

    def __init__(self, m: Module, name: str, depth: int, push, pop):
        self.free = Signal(range(depth + 1), init=depth, name=f"{name}_free")
        m.d.sync += self.free.eq(self.free - push + pop)
        # ``free > 0`` and ``free > 1``, registered: the room check feeds the ingress buffer's
        # abort, so it must be a mux of flip-flops, not a compare. Their next values are picked
        # by ``push`` and ``pop`` (``pop`` is late) from flags and a compare of ``free``, never
        # from the sum. A push always had room, so ``free > 0`` before it.
        self.some, self.two = Signal(init=depth > 0), Signal(init=depth > 1)
        three = self.free > 2
        up, down = pop & ~push, push & ~pop
        m.d.sync += [
            self.some.eq(Mux(up, 1, Mux(down, self.two, self.some))),
            self.two.eq(Mux(up, self.some, Mux(down, three, self.two))),
        ]
        #: the frame whose last beat is this cycle can be admitted: ``free > push``
        self.room = Mux(push, self.two, self.some)


class NicFilter(wiring.Component):
    """Cooperated packet filter with side bounce (``docs/nic.md``).

    Parameters
    ----------
    data_width : int
        Stream width in bits: 64 (the default), 128, 256 or 512.
    n_vfs : int
        Virtual functions, 1 to 64 (4 by default).
    rules : int
        Rules per VF, 1 to 256 (16 by default).
    queue_bytes : int
        Bytes of each frame queue (ingress buffer, per-VF, VMM and re-inject queues), a power of
        two of at least 16384 so that the largest frame (a 9216-byte giant too) fits.

    Members
    -------
    rx : ``In(AxiStreamSignature(data_width))``
        Received frames (no FCS). Always ready; ``tkeep`` packed (contiguous from byte 0).
    vf : ``Out(AxiStreamSignature(data_width)).array(n_vfs)``
        Each VF's frames: passed by the filter, and re-injected by the VMM.
    vmm : ``Out(AxiStreamSignature(data_width, user_width=21))``
        Frames for the VMM: bounced, unknown (broadcast, multicast too) and malformed; ``tuser``
        is the :class:`~vmassist.formats.nic.Decision`, constant over the frame.
    reinject : ``In(AxiStreamSignature(data_width, dest_width=8))``
        Frames the VMM approves, ``tdest`` the VF (taken from the first beat). Always ready; a
        frame for no VF, or finding its queue full, is dropped and counted.
    csr : ``In(AxiLiteSignature(8, 64))``
        The registers of :data:`~vmassist.formats.nic.NIC_CSR`.
    dec_valid, dec : Out
        The decision tap: every frame's :class:`~vmassist.formats.nic.Decision`, in the order
        the frames were admitted, ``decision_latency`` cycles after the frame's last beat (a
        trace port for the testbench and for debug; nothing waits on it).
    """

    def __init__(
        self,
        *,
        data_width: int = 64,
        n_vfs: int = 4,
        rules: int = 16,
        queue_bytes: int = 16384,
    ):
        require(
            self,
            data_width in (64, 128, 256, 512),
            ValueError(f"data_width must be 64, 128, 256 or 512, not {data_width!r}"),
        )
        require(
            self,
            isinstance(queue_bytes, int)
            and queue_bytes >= 16384
            and not queue_bytes & (queue_bytes - 1),
            ValueError(f"queue_bytes must be a power of two >= 16384, not {queue_bytes!r}"),
        )
        self._classifier = Classifier(n_vfs=n_vfs, rules=rules, data_width=data_width)
        self._width = data_width
        self._n_vfs = n_vfs
        self._rules = rules
        self._depth = queue_bytes // (data_width // 8)
        dest_bits = 8
        super().__init__(
            {
                "rx": In(AxiStreamSignature(data_width)),
                "vf": Out(AxiStreamSignature(data_width)).array(n_vfs),
                "vmm": Out(AxiStreamSignature(data_width, user_width=Decision.as_shape().size)),
                "reinject": In(AxiStreamSignature(data_width, dest_width=dest_bits)),
                "csr": In(AxiLiteSignature(addr_width=NIC_CSR.addr_width, data_width=64)),
                "dec_valid": Out(1),
                "dec": Out(Decision),
            }
        )

    @property
    def data_width(self) -> int:
        return self._width

    @property
    def n_vfs(self) -> int:
        return self._n_vfs

    @property
    def rules(self) -> int:
        return self._rules

    @property
    def depth(self) -> int:
        """Beats of each frame queue."""
        return self._depth

    @property
    def classifier(self) -> Classifier:
        return self._classifier

    #: Cycles from a frame's last beat on ``rx`` to its parsed header at the classifier's input,
    #: with the queues empty: header register, parser, header queue (two: a buffered FIFO).
    FRONT_LATENCY = 1 + Parser.LATENCY + 2

    def decision_latency(self, needs_rules: bool) -> int:
        """Cycles from a frame's last beat on ``rx`` to its decision on ``dec``, with the
        pipeline idle."""
        return self.FRONT_LATENCY + self._classifier.latency(needs_rules) + 1

    def elaborate(self, platform):
        m = Module()
        n, width, depth = self._n_vfs, self._width, self._depth
        bpb = width // 8  # bytes per beat

        m.submodules.csrs = csrs = CsrBlock(NIC_CSR)
        wiring.connect(m, wiring.flipped(self.csr), csrs.bus)
        m.submodules.parser = parser = Parser()
        m.submodules.classifier = cls = self._classifier
        m.submodules.hdrq = hdrq = fifo.SyncFIFOBuffered(
            width=ParsedHdr.as_shape().size, depth=HDR_QUEUE
        )
        # The verdict queue: one decision per admitted frame, so as deep as the ingress buffer; a
        # PacketFifo of one-word frames, so that its block RAM is read through its register.
        m.submodules.vq = vq = PacketFifo(Decision, depth)
        m.submodules.egress = egress = Egress(data_width=width, n_vfs=n, depth=depth)

        # ---- ingress: every beat into the buffer; the first HDR_BYTES bytes and the length
        # into the header record ----
        rx = self.rx
        m.d.comb += rx.tready.eq(1)
        beat = rx.tvalid
        hdr_beats = -(-HDR_BYTES // bpb)
        idx = Signal(range(hdr_beats + 1))  # beats of the frame so far, saturating
        hdr = Signal(8 * HDR_BYTES)
        length = Signal(LEN_BITS)
        keep_bits = Cat(*(k.replicate(8) for k in rx.tkeep))
        masked = rx.tdata & keep_bits
        hdr_now = Signal(8 * HDR_BYTES)  # the record including this beat
        for k in range(hdr_beats):
            lo, hi = 8 * bpb * k, min(8 * bpb * (k + 1), 8 * HDR_BYTES)
            m.d.comb += hdr_now[lo:hi].eq(
                Mux(idx == k, masked[: hi - lo], Mux(idx == 0, 0, hdr[lo:hi]))
            )
        len_sum = length + popcount(rx.tkeep)
        len_max = (1 << LEN_BITS) - 1
        len_now = Mux(len_sum > len_max, len_max, len_sum)

        rec = Signal(HeaderRec)
        first_q = Signal()  # the next beat starts a frame
        m.d.comb += first_q.eq(idx == 0)
        with m.If(beat):
            with m.If(rx.tlast):
                m.d.sync += [idx.eq(0), length.eq(0), rec.hdr.eq(hdr_now), rec.length.eq(len_now)]
            with m.Else():
                m.d.sync += [
                    idx.eq(Mux(idx == hdr_beats, idx, idx + 1)),
                    length.eq(len_now),
                    hdr.eq(hdr_now),
                ]

        # A frame is admitted to the header path and the verdict queue at its last beat only if
        # both will have room for it; otherwise it is discarded whole, like a full buffer.
        take = Signal()  # parsed header accepted by the classifier
        pop = Signal()  # verdict consumed by egress
        hdr_cr = _Credits(m, "hdr", HDR_QUEUE, egress.committed, take)
        vq_cr = _Credits(m, "vq", depth, egress.committed, pop)
        refuse = beat & rx.tlast & ~(hdr_cr.room & vq_cr.room)
        m.d.comb += [
            egress.w_valid.eq(beat),
            egress.w_data.data.eq(rx.tdata),
            egress.w_data.keep.eq(rx.tkeep),
            egress.w_last.eq(rx.tlast),
            egress.w_abort.eq(refuse),
        ]
        ovf_ingress = Signal()
        m.d.sync += ovf_ingress.eq(refuse)

        # ---- parse and classify, one header per committed frame ----
        m.d.comb += [
            parser.i.valid.eq(egress.committed),
            parser.i.payload.eq(rec),
            parser.o.ready.eq(hdrq.w_rdy),
            hdrq.w_en.eq(parser.o.valid),
            hdrq.w_data.eq(parser.o.payload),
            cls.i_valid.eq(hdrq.r_rdy),
            cls.i_hdr.eq(hdrq.r_data),
            hdrq.r_en.eq(cls.i_ready),
            take.eq(hdrq.r_rdy & cls.i_ready),
            vq.w_valid.eq(cls.dec_valid),
            vq.w_data.eq(cls.dec),
            vq.w_last.eq(1),
        ]

        # ---- egress: each buffered frame, beat by beat, to the queue its decision names ----
        m.d.comb += [
            egress.dec.valid.eq(vq.r.valid),
            egress.dec.payload.eq(vq.r.payload.data),
            pop.eq(vq.r.valid & egress.dec.ready),
            vq.r.ready.eq(egress.dec.ready),
        ]
        vmm_out = egress.vmm
        m.d.comb += [
            self.vmm.tvalid.eq(vmm_out.valid),
            self.vmm.tdata.eq(vmm_out.payload.data.data),
            self.vmm.tkeep.eq(vmm_out.payload.data.keep),
            self.vmm.tuser.eq(vmm_out.payload.data.user),
            self.vmm.tlast.eq(vmm_out.payload.last),
            vmm_out.ready.eq(self.vmm.tready),
        ]

        # ---- re-inject: demultiplexed by tdest into per-VF queues ----
        rj = self.reinject
        m.d.comb += rj.tready.eq(1)
        rj_first = Signal(init=1)
        rj_dest = Signal(8)
        with m.If(rj.tvalid):
            m.d.sync += rj_first.eq(rj.tlast)
            with m.If(rj_first):
                m.d.sync += rj_dest.eq(rj.tdest)
        dest = Mux(rj_first, rj.tdest, rj_dest)
        rj_bad = Signal()  # a frame for no VF ended
        m.d.sync += rj_bad.eq(rj.tvalid & rj.tlast & (dest >= n))
        # Each beat is registered with its queue already picked, so no queue's write side
        # starts from the demultiplexer.
        rj_sel = Signal(n)
        rj_beat = Signal(beat_layout(width))
        rj_last = Signal()
        m.d.sync += [
            rj_sel.eq(Cat(*(rj.tvalid & (dest == k) for k in range(n)))),
            rj_beat.eq(Cat(rj.tdata, rj.tkeep)),
            rj_last.eq(rj.tlast),
        ]
        rj_q = [PacketFifo(beat_layout(width), depth) for _ in range(n)]
        for k in range(n):
            m.submodules[f"rj{k}_q"] = rj_q[k]
            m.d.comb += [
                rj_q[k].w_valid.eq(rj_sel[k]),
                rj_q[k].w_data.eq(rj_beat),
                rj_q[k].w_last.eq(rj_last),
            ]

        # ---- each VF's output: its filter queue and its re-inject queue, a frame at a time ----
        rj_out = Signal(n)  # a re-injected frame's last beat left on vf[k]
        for k in range(n):
            m.submodules[f"vf{k}_arb"] = arb = FrameArbiter(beat_layout(width), 2)
            wiring.connect(m, egress.vf[k], arb.i[0])
            wiring.connect(m, rj_q[k].r, arb.i[1])
            port = self.vf[k]
            m.d.comb += [
                port.tvalid.eq(arb.o.valid),
                port.tdata.eq(arb.o.payload.data.data),
                port.tkeep.eq(arb.o.payload.data.keep),
                port.tlast.eq(arb.o.payload.last),
                arb.o.ready.eq(port.tready),
                rj_out[k].eq(arb.o.valid & port.tready & arb.o.payload.last & (arb.src == 1)),
            ]

        # ---- counters ----
        counters = _Counters(m, n, self._rules)
        d = Signal(Decision)
        d_valid = Signal()
        m.d.sync += [d_valid.eq(cls.dec_valid), d.eq(cls.dec)]
        m.d.comb += [self.dec_valid.eq(d_valid), self.dec.eq(d)]
        counters.decision(d_valid, d)
        ovf = egress.overflow  # VF queues, VMM queue, ingress buffer
        counters.overflow([*ovf[: n + 1], ovf_ingress | ovf[n + 1]])
        for k in range(n):
            counters.bump(CounterKind.REINJECT, k, rj_out[k])
            counters.bump(CounterKind.REINJECT_DROP, k, rj_q[k].overflow)
        counters.bump(CounterKind.REINJECT_DROP, n, rj_bad)

        # ---- registers ----
        sel = csrs.rw["CNT_SEL"]
        m.d.comb += [
            csrs.ro["ID"].eq(NIC_ID),
            csrs.ro["PARAMS"].eq(
                Cat(
                    Const(n, 8),
                    Const(self._rules % 256, 8),
                    Const(width, 16),
                    Const(depth.bit_length() - 1, 8),
                )
            ),
            csrs.ro["CNT_VAL"].eq(counters.read(sel[0:4], sel[8:16], sel[16:24])),
        ]
        vf_stb, vf_data = csrs.wo["VF_COMMIT"]
        rule_stb, rule_data = csrs.wo["RULE_COMMIT"]
        vf_words = Cat(*(csrs.rw[f"VF_W{i}"] for i in range(-(-VfEntry.as_shape().size // 64))))
        rule_words = Cat(
            *(csrs.rw[f"RULE_W{i}"] for i in range(-(-RuleEntry.as_shape().size // 64)))
        )
        m.d.comb += [
            cls.vf_we.eq(vf_stb),
            cls.vf_idx.eq(vf_data[0:8]),
            cls.vf_row.eq(vf_words),
            cls.rule_we.eq(rule_stb),
            cls.rule_vf.eq(rule_data[0:8]),
            cls.rule_idx.eq(rule_data[8:16]),
            cls.rule_row.eq(rule_words),
        ]
        return m


class _Counters:
    """The hardware's counters (``CounterKind``), 32 bits, wrapping. Per-VF and global counts
    are registers; rule hits a read-modify-write memory, one update per cycle."""

    def __init__(self, m: Module, n_vfs: int, rules: int):
        self.m = m
        self.n = n_vfs
        self.rules = rules
        # (kind, index) -> register; OVERFLOW has n + 2 queues, REINJECT_DROP n + 1 slots.
        sizes = {
            CounterKind.PASS: n_vfs,
            CounterKind.BLOCK: n_vfs,
            CounterKind.BOUNCE: n_vfs,
            CounterKind.DROP: n_vfs,
            CounterKind.UNKNOWN: 1,
            CounterKind.MALFORMED: 1,
            CounterKind.OVERFLOW: n_vfs + 2,
            CounterKind.REINJECT: n_vfs,
            CounterKind.REINJECT_DROP: n_vfs + 1,
        }
        self.regs = {
            (kind, i): Signal(32, name=f"cnt_{kind.name.lower()}{i}")
            for kind, size in sizes.items()
            for i in range(size)
        }
        # In LUT RAM: its read-modify-write closes in a cycle there, not through a block RAM.
        self.hits = memory.Memory(
            shape=32, depth=n_vfs * rules, init=[], attrs={"ram_style": "distributed"}
        )
        m.submodules.rule_hits = self.hits

    def bump(self, kind: CounterKind, index: int, cond) -> None:
        reg = self.regs[(kind, index)]
        with self.m.If(cond):
            self.m.d.sync += reg.eq(reg + 1)

    def overflow(self, pulses) -> None:
        for q, p in enumerate(pulses):
            self.bump(CounterKind.OVERFLOW, q, p)

    def decision(self, valid, d) -> None:
        """Count one decision: per-VF outcome, unknown, malformed, and the deciding rule."""
        m = self.m
        for k in range(self.n):
            mine = valid & d.vf_valid & (d.vf == k)
            self.bump(CounterKind.PASS, k, mine & (d.verdict == VerdictCode.PASS))
            blocked = d.verdict.matches(VerdictCode.BLOCK, VerdictCode.BOUNCE)
            self.bump(CounterKind.BLOCK, k, mine & blocked)
            self.bump(CounterKind.BOUNCE, k, mine & (d.verdict == VerdictCode.BOUNCE))
            self.bump(CounterKind.DROP, k, mine & (d.verdict == VerdictCode.BLOCK))
        self.bump(CounterKind.UNKNOWN, 0, valid & (d.verdict == VerdictCode.UNKNOWN))
        self.bump(CounterKind.MALFORMED, 0, valid & (d.verdict == VerdictCode.MALFORMED))

        # Rule hits: read at the decision, write +1 the cycle after. The read port is
        # transparent to the write port, so back-to-back hits of one rule both count.
        wr = self.hits.write_port()
        rd = self.hits.read_port(transparent_for=(wr,))
        addr = d.vf * self.rules + d.rule
        hit = valid & d.vf_valid & d.rule_valid & (d.vf < self.n)
        hit_q = Signal()
        addr_q = Signal.like(wr.addr)
        m.d.sync += [hit_q.eq(hit), addr_q.eq(addr)]
        m.d.comb += [
            rd.addr.eq(addr),
            rd.en.eq(1),
            wr.addr.eq(addr_q),
            wr.data.eq(rd.data + 1),
            wr.en.eq(hit_q),
        ]
        self._hits_csr = self.hits.read_port()

    def read(self, kind, vf, rule):
        """The selected counter, registered (valid the second cycle after the selection). The
        first register holds each kind's count at the selected index, so no multiplexer spans
        every counter: the second picks the kind."""
        m = self.m
        value = Signal(32)
        port = self._hits_csr
        m.d.comb += [port.addr.eq(vf * self.rules + rule), port.en.eq(1)]
        kind_q = Signal.like(kind)
        m.d.sync += kind_q.eq(kind)
        by_kind = {}  # kind -> the selected index's count, registered
        for (k, i), reg in self.regs.items():
            if k not in by_kind:
                by_kind[k] = Signal(32, name=f"cnt_sel_{k.name.lower()}")
                m.d.sync += by_kind[k].eq(0)
            with m.If(vf == i):
                m.d.sync += by_kind[k].eq(reg)
        with m.Switch(kind_q):
            with m.Case(CounterKind.RULE_HITS):
                m.d.comb += value.eq(port.data)
            for k, val in by_kind.items():
                with m.Case(int(k)):
                    m.d.comb += value.eq(val)
        out = Signal(32)
        m.d.sync += out.eq(value)
        return out
