"""The NIC filter: receive stream in, one stream per VF and one to the VMM out (``docs/nic.md``).

Data path, one beat per cycle end to end::

    rx ─┬─> ingress buffer (PacketFifo, whole frames) ───────────────────────────────┐
        └─> header capture ─> Parser ─> Classifier (steering, queue, rules) ─> verdict queue
                                                                                     │
        egress: each buffered frame to the queue its verdict names ──────────────────┘
            ├─> VF k queue ─┐
            │               ├─ FrameArbiter ─> vf[k]      (re-injected frames merged fairly)
    reinject ─> VF k queue ─┘
            ├─> VMM queue ─> vmm (tuser = Decision)
            └─> drop (blocked, bounce off)

Nothing ever waits on a consumer: ``rx`` and ``reinject`` are always ready, egress moves one
beat per cycle, and a frame that finds no room in a queue is dropped whole and counted, so one
stalled VF never holds up another.
"""

import operator
from functools import reduce

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from vmassist.formats.nic import (
    HDR_BYTES,
    LEN_BITS,
    MIN_LEN,
    NIC_CSR,
    NIC_ID,
    CounterKind,
    Decision,
    HeaderRec,
    RuleEntry,
    VerdictCode,
    VfEntry,
)

from ..common import (
    AxiLiteSignature,
    AxiStreamSignature,
    Credits,
    CsrBlock,
    FrameArbiter,
    FrameBeat,
    PacketFifo,
    StreamRegister,
)
from ..common.bits import mux_onehot, popcount
from ..common.params import require
from ..common.replica import replicas
from .classify import Classifier
from .egress import Egress, beat_layout
from .parser import Parser

__all__ = ["NicFilter"]

#: Parsed headers that may be between the header capture and the rule engine at once (the
#: classifier's queue). The engine judges every frame in no more cycles than the frame takes
#: on the line, so the queue only absorbs a run of short frames behind one that needs rules.
HDR_QUEUE = 16


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
        self._classifier = Classifier(
            n_vfs=n_vfs, rules=rules, data_width=data_width, queue=HDR_QUEUE
        )
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

    #: Cycles from a frame's last beat on ``rx`` to its parsed header at the classifier's input:
    #: the input register, the commit (the parser takes the complete record then), the parser.
    FRONT_LATENCY = 2 + Parser.LATENCY

    def decision_latency(self, needs_rules: bool) -> int:
        """Cycles from a frame's last beat on ``rx`` to its decision on ``dec``, with the
        pipeline idle."""
        return self.FRONT_LATENCY + self._classifier.latency(needs_rules) + 1

    def elaborate(self, platform):
        m = Module()
        n, width, depth = self._n_vfs, self._width, self._depth
        bpb = width // 8  # bytes per beat

        # Writes land a cycle after they are taken (B with them), so the bus reaches no
        # register's enable through a decoder. Reads sample the registers ``read_stages - 2``
        # cycles after AR is taken. AR is taken at least a cycle after B, which is the cycle
        # after a CNT_SEL write lands, so the sample comes ``read_stages - 1`` cycles or more
        # after the selection changed: CNT_VAL has settled by then.
        read_stages = _Counters.READ_LATENCY + 1
        m.submodules.csrs = csrs = CsrBlock(NIC_CSR, read_stages=read_stages, write_stages=2)
        wiring.connect(m, wiring.flipped(self.csr), csrs.bus)
        m.submodules.parser = parser = Parser()
        m.submodules.classifier = cls = self._classifier
        # The verdict queue: one decision per admitted frame, so as deep as the ingress buffer; a
        # PacketFifo of one-word frames, so that its block RAM is read through its register.
        m.submodules.vq = vq = PacketFifo(Decision, depth)
        m.submodules.egress = egress = Egress(data_width=width, n_vfs=n, depth=depth)

        # ---- ingress: every beat, registered first, into the buffer; the first HDR_BYTES
        # bytes and the length into the header record ----
        rx = self.rx
        m.d.comb += rx.tready.eq(1)
        # The record of the frame being received: slot k of ``hdr`` is its beat k, written in
        # place (no multiplexer of the beat into every slot). The cycle after a frame's last
        # beat (when it commits) the record is complete, and the parser takes it then: a next
        # frame overwrites it only at the end of that cycle. The slots a well-formed frame may
        # leave unwritten (past MIN_LEN) are masked by ``filled``, a thermometer code of the
        # slots written, so the record is the model's, zero past the frame's end; a runt's is
        # not masked, as no field of a runt is used.
        hdr_beats = -(-HDR_BYTES // bpb)
        min_beats = -(-MIN_LEN // bpb)
        # The beat is registered first with its bytes past ``tkeep`` zeroed and counted, and
        # with the write enable of its header slot (from ``slot``, the slot of the next beat
        # on ``rx``; the last bit: none), so that the buffer, the header capture and the
        # length all start from flip-flops, and each slot's enable is one.
        slot = Signal(hdr_beats + 1, init=1)
        with m.If(rx.tvalid):
            m.d.sync += slot.eq(Mux(rx.tlast, 1, Cat(0, slot[:-2], slot[-2] | slot[-1])))
        # ``valid`` and ``last`` come in two copies: one by the buffer's write logic, one by
        # the header capture, the length and the credits.
        buf_valid, in_valid = replicas(m, platform, rx.tvalid, 2, name="in_valid")
        buf_last, in_last = replicas(m, platform, rx.tlast, 2, name="in_last")
        in_first = Signal()
        in_data, in_keep = Signal(width), Signal(bpb)
        in_count = Signal(range(bpb + 1))
        in_slot = Signal(hdr_beats)
        m.d.sync += [
            in_first.eq(slot[0]),
            in_data.eq(rx.tdata & Cat(*(k.replicate(8) for k in rx.tkeep))),
            in_keep.eq(rx.tkeep),
            in_count.eq(popcount(rx.tkeep)),
            in_slot.eq(slot[:hdr_beats] & rx.tvalid.replicate(hdr_beats)),
        ]
        hdr = Signal(8 * HDR_BYTES)
        filled = Signal(hdr_beats)
        length = Signal(LEN_BITS)
        len_sum = Signal(LEN_BITS + 1)
        m.d.comb += len_sum.eq(length + in_count)
        len_max = (1 << LEN_BITS) - 1
        with m.If(in_valid):
            m.d.sync += [
                filled.eq(Mux(in_first, 1, Cat(1, filled[:-1]))),
                length.eq(Mux(in_first, in_count, Mux(len_sum[LEN_BITS], len_max, len_sum))),
            ]
        for k in range(hdr_beats):
            lo, hi = 8 * bpb * k, min(8 * bpb * (k + 1), 8 * HDR_BYTES)
            with m.If(in_slot[k]):
                m.d.sync += hdr[lo:hi].eq(in_data[: hi - lo])
        rec = Signal(HeaderRec)
        mask = Cat(
            Const(-1, 8 * bpb) if k < min_beats else filled[k].replicate(8 * bpb)
            for k in range(hdr_beats)
        )
        m.d.comb += [rec.hdr.eq(hdr & mask[: 8 * HDR_BYTES]), rec.length.eq(length)]

        # A frame is admitted to the header path and the verdict queue at its last beat only if
        # both will have room for it; otherwise it is discarded whole, like a full buffer.
        # Room is checked as ``free >= 2`` (a register), which holds whether or not the frame
        # before is being pushed in the same cycle; takes and pops reach the counts a cycle
        # late, which only delays the room they make.
        take, take_q = Signal(), Signal()  # a header left the classifier's queue
        pop, pop_q = Signal(), Signal()  # verdict consumed by egress
        m.d.sync += [take_q.eq(take), pop_q.eq(pop)]
        hdr_cr = Credits(m, "hdr", HDR_QUEUE, egress.committed, take_q)
        vq_cr = Credits(m, "vq", depth, egress.committed, pop_q)
        refuse = in_valid & in_last & ~(hdr_cr.two & vq_cr.two)
        m.d.comb += [
            egress.w_valid.eq(buf_valid),
            egress.w_data.data.eq(in_data),
            egress.w_data.keep.eq(in_keep),
            egress.w_last.eq(buf_last),
            egress.w_abort.eq(refuse),
        ]
        ovf_ingress = Signal()
        m.d.sync += ovf_ingress.eq(refuse)

        # ---- parse and classify, one header per committed frame ----
        # Neither the parser nor the classifier's steering ever stalls: the credits admit a
        # frame only if the classifier's queue will have room for it (its own credits, behind
        # ``i_ready``, count a subset of the frames these do, so ``i_ready`` is always high
        # when a header comes).
        m.d.comb += [
            parser.i.valid.eq(egress.committed),
            parser.i.payload.eq(rec),
            parser.o.ready.eq(1),
            cls.i_valid.eq(parser.o.valid),
            cls.i_hdr.eq(parser.o.payload),
            take.eq(cls.freed),
            vq.w_valid.eq(cls.dec_valid),
            vq.w_data.eq(cls.dec),
            vq.w_last.eq(1),
        ]

        # ---- egress: each buffered frame, beat by beat, to the queue its decision names ----
        # The decisions reach the egress through a register slice: its route and its decision
        # for the VMM queue's words start from flip-flops, next to the egress.
        m.submodules.dec_reg = dec_reg = StreamRegister(Decision)
        m.d.comb += [
            dec_reg.i.valid.eq(vq.r.valid),
            dec_reg.i.payload.eq(vq.r.payload.data),
            vq.r.ready.eq(dec_reg.i.ready),
            pop.eq(vq.r.valid & dec_reg.i.ready),
        ]
        wiring.connect(m, dec_reg.o, egress.dec)
        # Every output leaves a register slice: nothing combinational between a queue and a port.
        m.submodules.vmm_reg = vmm_reg = StreamRegister(egress.vmm.payload.shape())
        wiring.connect(m, egress.vmm, vmm_reg.i)
        vmm_out = vmm_reg.o
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
        # Each beat is registered first with its tdest compared with every VF, then registered
        # again with its queue picked (by the first beat's tdest, the frame's), so no queue's
        # write side starts from the demultiplexer and no select is more than a LUT.
        rj_valid, rj_tlast = Signal(), Signal()
        rj_data = Signal(beat_layout(width))
        rj_is = Signal(n + 1)  # tdest == k, for each VF k; the last bit: tdest names no VF
        m.d.sync += [
            rj_valid.eq(rj.tvalid),
            rj_tlast.eq(rj.tlast),
            rj_data.eq(Cat(rj.tdata, rj.tkeep)),
            rj_is.eq(Cat(*(rj.tdest == k for k in range(n)), rj.tdest >= n)),
        ]
        rj_first = Signal(init=1)
        rj_frame = Signal(n + 1)  # rj_is of the frame's first beat
        with m.If(rj_valid):
            m.d.sync += rj_first.eq(rj_tlast)
            with m.If(rj_first):
                m.d.sync += rj_frame.eq(rj_is)
        dest = Mux(rj_first, rj_is, rj_frame)
        rj_bad = Signal()  # a frame for no VF ended
        m.d.sync += rj_bad.eq(rj_valid & rj_tlast & dest[n])
        rj_sel = Signal(n)
        rj_beat = Signal(beat_layout(width))
        rj_last = Signal()
        m.d.sync += [
            rj_sel.eq(dest[:n] & rj_valid.replicate(n)),
            rj_beat.eq(rj_data),
            rj_last.eq(rj_tlast),
        ]
        # Then into a copy of that register by each queue (whose block RAMs lie apart), so the
        # queue's write logic starts from flip-flops next to it.
        rj_q = [PacketFifo(beat_layout(width), depth) for _ in range(n)]
        for k in range(n):
            m.submodules[f"rj{k}_q"] = rj_q[k]
            (copy,) = replicas(m, platform, Cat(rj_beat, rj_last, rj_sel[k]), 1, name=f"rj{k}_in")
            m.d.comb += [
                rj_q[k].w_data.eq(copy[:-2]),
                rj_q[k].w_last.eq(copy[-2]),
                rj_q[k].w_valid.eq(copy[-1]),
            ]

        # ---- each VF's output: its filter queue and its re-inject queue, a frame at a time,
        # through a register slice whose words carry which queue they came from ----
        out_layout = data.StructLayout({"beat": FrameBeat(beat_layout(width)), "rj": 1})
        rj_out = Signal(n)  # a re-injected frame's last beat left on vf[k]
        for k in range(n):
            m.submodules[f"vf{k}_arb"] = arb = FrameArbiter(beat_layout(width), 2)
            m.submodules[f"vf{k}_reg"] = reg = StreamRegister(out_layout)
            # The two queues lie apart (by their block RAMs): each reaches the arbiter through
            # a register slice by the queue.
            for j, queue in enumerate((egress.vf[k], rj_q[k].r)):
                m.submodules[f"vf{k}_in{j}"] = slice_ = StreamRegister(queue.payload.shape())
                wiring.connect(m, queue, slice_.i)
                wiring.connect(m, slice_.o, arb.i[j])
            port, o = self.vf[k], reg.o
            m.d.comb += [
                reg.i.valid.eq(arb.o.valid),
                reg.i.payload.beat.eq(arb.o.payload),
                reg.i.payload.rj.eq(arb.src == 1),
                arb.o.ready.eq(reg.i.ready),
                port.tvalid.eq(o.valid),
                port.tdata.eq(o.payload.beat.data.data),
                port.tkeep.eq(o.payload.beat.data.keep),
                port.tlast.eq(o.payload.beat.last),
                o.ready.eq(port.tready),
                rj_out[k].eq(o.valid & port.tready & o.payload.beat.last & o.payload.rj),
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
        # Row (vf, rule) of the hits memory is vf * 2**rule_bits + rule: no multiplier.
        self.rule_bits = max(1, (rules - 1).bit_length())
        # In LUT RAM: its read-modify-write closes in a cycle there, not through a block RAM.
        self.hits = memory.Memory(
            shape=32, depth=n_vfs << self.rule_bits, init=[], attrs={"ram_style": "distributed"}
        )
        m.submodules.rule_hits = self.hits

    def _row(self, vf, rule):
        return Cat(rule[: self.rule_bits], vf[: max(1, (self.n - 1).bit_length())])

    def bump(self, kind: CounterKind, index: int, cond) -> None:
        """Count ``cond`` a cycle later: the enable of the counter's flip-flops is a register
        next to them, not the logic of the condition."""
        reg = self.regs[(kind, index)]
        inc = Signal(name=f"inc_{kind.name.lower()}{index}")
        self.m.d.sync += inc.eq(cond)
        with self.m.If(inc):
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

        # Rule hits, over three cycles, every one starting from registers: A holds the hit
        # and its row, whose count the memory reads; B the count read, to which it adds one;
        # C writes the sum. A's read misses the writes of the two hits ahead of it (in B and
        # in C), so a hit to the same row as one of them takes the newer count instead
        # (forwarding), decided in A from the rows.
        wr = self.hits.write_port()
        rd = self.hits.read_port(domain="comb")
        hit_a, hit_b, hit_c = Signal(), Signal(), Signal()
        row_a, row_b, row_c = (Signal.like(wr.addr, name=f"row_{s}") for s in "abc")
        count_b, sum_c, last_c = Signal(32), Signal(32), Signal(32)
        fwd_c, fwd_w = Signal(), Signal()  # B's row is C's; B's row was written last cycle
        m.d.sync += [
            hit_a.eq(valid & d.vf_valid & d.rule_valid & (d.vf < self.n)),
            row_a.eq(self._row(d.vf, d.rule)),
            hit_b.eq(hit_a),
            row_b.eq(row_a),
            count_b.eq(rd.data),
            fwd_c.eq(hit_b & (row_b == row_a)),
            fwd_w.eq(hit_c & (row_c == row_a)),
            hit_c.eq(hit_b),
            row_c.eq(row_b),
            sum_c.eq(Mux(fwd_c, sum_c, Mux(fwd_w, last_c, count_b)) + 1),
        ]
        with m.If(hit_c):
            m.d.sync += last_c.eq(sum_c)
        m.d.comb += [
            rd.addr.eq(row_a),
            wr.addr.eq(row_c),
            wr.data.eq(sum_c),
            wr.en.eq(hit_c),
        ]
        self._hits_csr = self.hits.read_port(domain="comb")

    #: Cycles from a change of the selection to the selected count on :meth:`read`'s output.
    READ_LATENCY = 4

    def read(self, kind, vf, rule):
        """The selected counter, ``READ_LATENCY`` cycles after the selection: the kind and the
        index are each compared into registers, which are ANDed into a select register per
        counter, each kind's selected count is gathered by an AND-OR into a register, and the
        kinds are ORed into the output register. No multiplexer spans every counter, and no
        select signal fans out further than one kind's count."""
        m = self.m
        by_kind = {}
        for (k, i), reg in self.regs.items():
            by_kind.setdefault(k, []).append((i, reg))
        widest = max(len(regs) for regs in by_kind.values())
        vf_is = Signal(widest)
        m.d.sync += vf_is.eq(Cat(vf == i for i in range(widest)))
        gathered = []
        for k, regs in by_kind.items():
            kind_is = Signal(name=f"cnt_kind_{k.name.lower()}")
            sel = Signal(len(regs), name=f"cnt_sel_{k.name.lower()}")
            val = Signal(32, name=f"cnt_val_{k.name.lower()}")
            m.d.sync += [
                kind_is.eq(kind == k),
                sel.eq(Cat(kind_is & vf_is[i] for i, _ in regs)),
                val.eq(mux_onehot(sel, [reg for _, reg in regs])),
            ]
            gathered.append(val)
        # Rule hits: the row into a register, read from the LUT RAM into another.
        port = self._hits_csr
        row, hits = Signal.like(port.addr, name="hits_row"), Signal(32)
        hits_sel, hits_sel2 = Signal(), Signal()
        m.d.comb += port.addr.eq(row)
        m.d.sync += [
            row.eq(self._row(vf, rule)),
            hits_sel.eq((kind == CounterKind.RULE_HITS) & (vf < self.n) & (rule < self.rules)),
            hits.eq(port.data),
            hits_sel2.eq(hits_sel),
        ]
        hits_val = Signal(32)
        m.d.sync += hits_val.eq(hits & hits_sel2.replicate(32))
        gathered.append(hits_val)
        out = Signal(32)
        m.d.sync += out.eq(reduce(operator.or_, gathered))
        return out
