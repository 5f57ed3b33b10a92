"""Steering and rules: the NIC filter's decision for each parsed frame (``docs/nic.md``)."""

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from vmassist.formats.nic import (
    MIN_LEN,
    Action,
    Decision,
    IpKind,
    Malformed,
    ParsedHdr,
    RuleEntry,
    VerdictCode,
    VfEntry,
)

from ..common import CreditFifo, Credits
from ..common.bits import encode, first_one, mux_onehot
from ..common.params import require
from ..common.replica import replicas

__all__ = ["Classifier", "FrameCtx", "Kind"]

_RULES, _UNKNOWN, _MALFORMED = 0, 1, 2

#: Rule bits per memory column: each column has its own address registers (see ``elaborate``),
#: each driving the read address of eight distributed-RAM cells.
_SLICE = 32
#: Rows per memory bank: the depth of one distributed-RAM cell, so no bank decodes its enable.
_BANK = 16
#: Rule columns served by one copy of the first-row and next-row registers.
_REGION = 8


class Kind:
    """What a frame needs: the rules of its VF, or nothing (unknown, malformed)."""

    RULES = _RULES
    UNKNOWN = _UNKNOWN
    MALFORMED = _MALFORMED


class FrameCtx(data.Struct):
    """A steered frame on its way through the rule engine."""

    hdr: ParsedHdr
    kind: 2
    vf: 8
    default: Action
    bounce: 1


def _chunks(value, size=16):
    """``value`` cut into ``size``-bit pieces."""
    return [value[i : i + size] for i in range(0, len(value), size)]


def _mismatches(r, h):
    """Reasons why rule ``r`` does not match frame ``h``, each shallow enough for one pipeline
    stage: per field (and per byte of a MAC or an IP address) a bit, and
    for each port bound a pair of bits that miss only together (the high bytes equal, the low
    bytes out of range), so no 16-bit comparison is needed. The rule matches when no bit and no
    pair is set.

    Returns
    -------
    tuple of Value
        The single bits, the first and the second bits of the pairs.
    """
    out = [~r.valid]
    for val, mask, fld in (
        (r.src_mac, r.src_mac_mask, h.src),
        (r.dst_mac, r.dst_mac_mask, h.dst),
    ):
        out += [c.any() for c in _chunks((fld ^ val) & mask, 8)]
    out.append(r.ethertype_en & (h.ethertype != r.ethertype))
    out.append(r.vlan_en & ((h.tags == 0) | (h.inner_vid != r.vlan)))
    family = Mux(r.v6, IpKind.V6, IpKind.V4)
    out.append((r.src_ip_en | r.dst_ip_en) & (h.ip != family))
    for en, val, mask, fld in (
        (r.src_ip_en, r.src_ip, r.src_ip_mask, h.src_ip),
        (r.dst_ip_en, r.dst_ip, r.dst_ip_mask, h.dst_ip),
    ):
        out += [en & c.any() for c in _chunks((fld ^ val) & mask, 8)]
    out.append(r.proto_en & ((h.ip == IpKind.NONE) | (h.proto != r.proto)))
    first, second = [], []
    for en, lo, hi, port in (
        (r.sport_en, r.sport_lo, r.sport_hi, h.sport),
        (r.dport_en, r.dport_lo, r.dport_hi, h.dport),
    ):
        # port < lo, or port > hi, a byte at a time
        out += [en & (~h.ports | (port[8:] < lo[8:])), en & (port[8:] > hi[8:])]
        first += [en & (port[8:] == lo[8:]), en & (port[8:] == hi[8:])]
        second += [port[:8] < lo[:8], port[:8] > hi[:8]]
    return Cat(*out), Cat(*first), Cat(*second)


class Classifier(wiring.Component):
    """Steering by (destination MAC, outer VLAN), then the VF's rules, first match wins.

    Steering never stalls: a taken frame is steered in three cycles into a queue of ``queue``
    frames (a :class:`~hdl.common.CreditFifo`), and ``i_ready`` is a credit, a register that
    says the queue has room for one more frame than those already taken. So nothing that
    waits on the rule engine fans out over the steering stages' flip-flops. The rules live in
    one memory row per (VF, group) of ``lanes`` rules (distributed RAM, cut into columns and
    banks that each have their own address registers). A frame that needs rules reads its VF's
    ``groups`` rows on consecutive cycles, ``lanes`` compare units judge each row, and the
    first match in rule order decides; any other frame takes one cycle. The lanes are sized so
    that ``groups`` cycles fit in the shortest well-formed frame
    (:data:`~vmassist.formats.nic.MIN_LEN` bytes) at ``data_width``: the engine keeps up with
    the line whatever the traffic.

    Each rule and each VF row is written in one cycle, two cycles after its ``rule_we`` or
    ``vf_we`` (the same for both tables, so writes land in the order they were made), and read
    in one cycle, so a frame sees the old or the new row, never parts of both. The VF row a
    frame uses (steering, default, bounce) is taken once, at steering.

    Parameters
    ----------
    n_vfs : int
        Virtual functions, 1 to 64.
    rules : int
        Rules per VF, 1 to 256.
    data_width : int
        The frame stream's width in bits, which sets the lanes.
    queue : int
        Frames between ``i`` and the rule engine: the steering stages' and the queue's, 2 to 16.

    Members
    -------
    i_valid, i_ready, i_hdr : In, Out, In
        One parsed frame per transfer; ``i_ready`` is a register.
    freed : Out
        A frame left the queue for the rule engine: a writer that keeps credits of its own
        (and so need not look at ``i_ready``) gets one back.
    dec_valid, dec : Out
        The decision, in frame order, ``latency(groups)`` cycles after the frame was taken
        (never back-pressured: the NIC sizes its verdict FIFO to hold every buffered frame).
    vf_we, vf_idx, vf_row : In
        Write one VF-table row.
    rule_we, rule_vf, rule_idx, rule_row : In
        Write one rule (an index >= ``rules`` is ignored).
    """

    def __init__(self, *, n_vfs: int = 4, rules: int = 16, data_width: int = 64, queue: int = 16):
        require(
            self,
            isinstance(n_vfs, int) and 1 <= n_vfs <= 64,
            ValueError(f"n_vfs must be an integer from 1 to 64, not {n_vfs!r}"),
        )
        require(
            self,
            isinstance(rules, int) and 1 <= rules <= 256,
            ValueError(f"rules must be an integer from 1 to 256, not {rules!r}"),
        )
        require(
            self,
            isinstance(data_width, int) and data_width >= 8 and data_width % 8 == 0,
            ValueError(f"data_width must be a positive multiple of 8, not {data_width!r}"),
        )
        require(
            self,
            isinstance(queue, int) and 2 <= queue <= 16,
            ValueError(f"queue must be an integer from 2 to 16, not {queue!r}"),
        )
        self._n_vfs = n_vfs
        self._rules = rules
        self._queue = queue
        beats = -(-MIN_LEN * 8 // data_width)  # cycles the shortest good frame takes
        lanes = -(-rules // beats)
        self._lanes = 1 << (lanes - 1).bit_length()  # a power of two: rule index = group, lane
        self._groups = -(-rules // self._lanes)
        super().__init__(
            {
                "i_valid": In(1),
                "i_ready": Out(1),
                "i_hdr": In(ParsedHdr),
                "freed": Out(1),
                "dec_valid": Out(1),
                "dec": Out(Decision),
                "vf_we": In(1),
                "vf_idx": In(8),
                "vf_row": In(VfEntry),
                "rule_we": In(1),
                "rule_vf": In(8),
                "rule_idx": In(8),
                "rule_row": In(RuleEntry),
            }
        )

    @property
    def n_vfs(self) -> int:
        return self._n_vfs

    @property
    def rules(self) -> int:
        return self._rules

    @property
    def queue(self) -> int:
        """Frames taken and not yet in the rule engine, at most."""
        return self._queue

    @property
    def lanes(self) -> int:
        """Rules judged per cycle."""
        return self._lanes

    @property
    def groups(self) -> int:
        """Cycles a frame spends in the rule engine when it needs rules."""
        return self._groups

    #: Cycles from taking a frame to its decision, besides its rule groups: steering (3), the
    #: queue (2), issue, rule read, three compare stages, the outcome, the decision.
    BASE_LATENCY = 3 + CreditFifo.LATENCY + 7

    def latency(self, needs_rules: bool) -> int:
        """Cycles from ``i_valid & i_ready`` to ``dec_valid`` for a frame entering an idle
        engine."""
        return self.BASE_LATENCY + (self._groups - 1 if needs_rules else 0)

    def elaborate(self, platform):
        m = Module()
        n, lanes, groups = self._n_vfs, self._lanes, self._groups
        vf_bits = max(1, (n - 1).bit_length())

        # ---- writes: two register stages, W1 decodes, W2 drives the tables ----
        # Both tables' writes take the same two cycles, so they still land in the order they
        # were made, and everything reaching a table (VF select, rule enable, address, row)
        # leaves a flip-flop.
        lane_bits = (lanes - 1).bit_length()
        grp = self.rule_idx >> lane_bits
        lane = self.rule_idx[:lane_bits] if lane_bits else Const(0, 1)
        w1_vf_sel, w2_vf_sel = Signal(n), Signal(n)
        w1_vf_row, w2_vf_row = Signal(VfEntry), Signal(VfEntry)
        w1_we = Signal()  # a rule write to a slot that exists
        w1_en = Signal(lanes)
        w1_addr = Signal(range(n * groups))
        w1_row, w2_row = Signal(RuleEntry), Signal(RuleEntry)
        m.d.sync += [
            w1_vf_sel.eq(Cat(*(self.vf_we & (self.vf_idx == v) for v in range(n)))),
            w1_vf_row.eq(self.vf_row),
            w2_vf_sel.eq(w1_vf_sel),
            w2_vf_row.eq(w1_vf_row),
            w1_we.eq(self.rule_we & (self.rule_idx < self._rules) & (self.rule_vf < n)),
            w1_en.eq((Const(1, lanes) << lane)[:lanes]),
            w1_addr.eq(self.rule_vf[:vf_bits] * groups + grp),
            w1_row.eq(self.rule_row),
            w2_row.eq(w1_row),
        ]

        # ---- VF table (registers: every row is compared at once) ----
        vfs = [Signal(VfEntry, name=f"vf{v}") for v in range(n)]
        for v in range(n):
            with m.If(w2_vf_sel[v]):
                m.d.sync += vfs[v].eq(w2_vf_row)

        # ---- rule memory: row vf * groups + group holds ``lanes`` rules ----
        # The table is cut into columns, one per lane and ``_SLICE``-bit slice of a rule, and
        # each column into banks of ``_BANK`` rows, one distributed-RAM cell deep. Every bank of
        # every column has copies of the address registers of its own (:func:`replicas`: one
        # address fanning out to many cells spends most of a cycle in routing), and every bank a
        # registered write enable, so no enable is decoded after its register.
        depth = n * groups
        n_banks = -(-depth // _BANK)
        rule_bits = data.Layout.cast(RuleEntry).size
        slices = [(lo, min(lo + _SLICE, rule_bits)) for lo in range(0, rule_bits, _SLICE)]
        cols = []  # (lane, first bit, end bit, [(write port, read port) per bank])
        for i in range(lanes):
            for lo, hi in slices:
                ports = []
                for b in range(n_banks):
                    rows = min(_BANK, depth - b * _BANK)
                    mem = memory.Memory(shape=hi - lo, depth=rows, init=[])
                    m.submodules[f"rules{i}_{lo}_{b}"] = mem
                    ports.append((mem.write_port(), mem.read_port(domain="comb")))
                cols.append((i, lo, hi, ports))
        w1_bank = w1_addr[_BANK.bit_length() - 1 :]
        w2_en = [Signal(n_banks, name=f"w2_en{i}") for i in range(lanes)]
        for i in range(lanes):
            m.d.sync += w2_en[i].eq(
                Cat(*(w1_we & w1_en[i] & (w1_bank == b) for b in range(n_banks)))
            )
        abits = max(1, (depth - 1).bit_length())
        w2_addrs = iter(replicas(m, platform, w1_addr, len(cols) * n_banks, name="w2_addr"))
        for i, lo, hi, ports in cols:
            for b, (wr, _) in enumerate(ports):
                w2_addr = next(w2_addrs)
                m.d.comb += [
                    wr.addr.eq(w2_addr),
                    wr.data.eq(w2_row.as_value()[lo:hi]),
                    wr.en.eq(w2_en[i][b]),
                ]

        # ---- steering: S1 compares every VF row in pieces, S2 joins them and picks the VF,
        # S3 sorts the frame; then the queue. No stage waits: ``i_ready`` is a credit. ----
        # S1 also takes the flags of every VF row, so a frame is steered by the rows as they
        # were in one cycle even if one is rewritten while it is in S2 or S3.
        # A credit comes back the cycle after its frame leaves the queue: the count's adder
        # then starts from a flip-flop, not from ``take``.
        took, freed, freed_q = Signal(), Signal(), Signal()
        m.d.sync += freed_q.eq(freed)
        credits = Credits(m, "q", self._queue, took, freed_q)
        m.d.comb += [self.i_ready.eq(credits.some), took.eq(self.i_valid & credits.some)]
        s1_valid, s2_valid = Signal(name="s1_valid"), Signal(name="s2_valid")
        s1_hdr, s2_hdr = Signal(ParsedHdr, name="s1_hdr"), Signal(ParsedHdr, name="s2_hdr")
        s1_mac = [Signal(len(_chunks(e.mac, 8)), name=f"s1_mac{v}") for v, e in enumerate(vfs)]
        s1_vid = [Signal(len(_chunks(e.vlan, 6)), name=f"s1_vid{v}") for v, e in enumerate(vfs)]
        s1_on, s1_vlan_en, s1_default, s1_bounce = (
            Signal(n, name=f"s1_{what}") for what in ("on", "vlan_en", "default", "bounce")
        )
        s1_tagged = Signal()
        s2_eq, s2_default, s2_bounce = (
            Signal(n, name=f"s2_{what}") for what in ("eq", "default", "bounce")
        )
        h = self.i_hdr
        m.d.sync += [s1_valid.eq(took), s1_hdr.eq(h), s1_tagged.eq(h.tags != 0)]
        for v, e in enumerate(vfs):
            pieces = zip(_chunks(e.mac, 8), _chunks(h.dst, 8), strict=True)
            vids = zip(_chunks(e.vlan, 6), _chunks(h.outer_vid, 6), strict=True)
            m.d.sync += [
                s1_mac[v].eq(Cat(*(a == b for a, b in pieces))),
                s1_vid[v].eq(Cat(*(a == b for a, b in vids))),
                s1_on[v].eq(e.valid),
                s1_vlan_en[v].eq(e.vlan_en),
                s1_default[v].eq(e.default),
                s1_bounce[v].eq(e.bounce),
            ]
        # S2 also picks the first matching VF; S3 its first rule row (0 for none) and the row
        # after it, as constants. The queue carries them in a copy per region of ``_REGION``
        # rule columns (see the issue stage), so the issue stage takes them over nothing but
        # wire.
        s2_pick = Signal(n, name="s2_pick")
        eq = Cat(
            s1_on[v] & s1_mac[v].all() & Mux(s1_vlan_en[v], s1_tagged & s1_vid[v].all(), ~s1_tagged)
            for v in range(n)
        )
        m.d.sync += [
            s2_valid.eq(s1_valid),
            s2_hdr.eq(s1_hdr),
            s2_eq.eq(eq),
            s2_pick.eq(first_one(eq)),
            s2_default.eq(s1_default),
            s2_bounce.eq(s1_bounce),
        ]
        row = mux_onehot(s2_pick, [Const(v * groups, range(depth)) for v in range(n)])
        row1 = Mux(
            s2_pick.any(),
            mux_onehot(s2_pick, [Const(v * groups + 1, range(depth + 1)) for v in range(n)]),
            1,
        )
        regions = -(-len(cols) // _REGION)
        queued = data.StructLayout(
            {
                "ctx": FrameCtx,
                "short": 1,  # one group: the frame needs no rules, or there is one
                "rows": data.ArrayLayout(len(row), regions),
                "row1s": data.ArrayLayout(len(row1), regions),
            }
        )
        s3_valid = Signal(name="s3_valid")
        s3 = Signal(queued, name="s3")
        group_addr = s2_hdr.dst[40]  # I/G bit: multicast and broadcast go to the VMM
        kind = Mux(
            s2_hdr.malformed != Malformed.NONE,
            _MALFORMED,
            Mux(group_addr | ~s2_eq.any(), _UNKNOWN, _RULES),
        )
        m.d.sync += [
            s3_valid.eq(s2_valid),
            s3.ctx.hdr.eq(s2_hdr),
            s3.ctx.kind.eq(kind),
            s3.ctx.vf.eq(encode(s2_pick)),
            s3.ctx.default.eq((s2_default & s2_pick).any()),
            s3.ctx.bounce.eq((s2_bounce & s2_pick).any()),
            s3.short.eq((kind != _RULES) | (groups == 1)),
            *(s3.rows[k].eq(row) for k in range(regions)),
            *(s3.row1s[k].eq(row1) for k in range(regions)),
        ]
        m.submodules.queue = queue = CreditFifo(queued, self._queue)
        head = queue.r.payload
        m.d.comb += [queue.w_en.eq(s3_valid), queue.w_data.eq(s3)]

        # ---- issue: a frame needing rules reads its VF's rows, one group per cycle ----
        # ``take`` (the current frame leaves, or there is none: the queue's ``ready``) is
        # worked out a cycle ahead into registers, as are the read addresses: they fan out over
        # hundreds of flip-flop enables and memory cells, and must leave flip-flops, not logic.
        cur_valid = Signal()
        cur = Signal(FrameCtx)
        g = Signal(range(groups))
        last = Signal()  # the current group is the frame's last
        take = Signal(init=1)  # == ~cur_valid | last
        pen = Signal()  # == (g == groups - 2): the next group is the frame's last
        next_last = Mux(take, head.short, pen)
        # Without ``take`` a frame is in hand and not at its last group, so stays in hand.
        next_take = Mux(take, ~queue.r.valid | head.short, pen)
        m.d.sync += [
            cur_valid.eq(Mux(take, queue.r.valid, cur_valid)),
            last.eq(next_last),
            pen.eq(Mux(take, groups == 2, g == groups - 3 if groups > 2 else 0)),
            take.eq(next_take),
        ]
        # Copies of ``take`` for the queue's read (and the credits) and for the frame in hand's
        # enables, so that the register in the loop above drives only that loop.
        take_q, take_cur = replicas(m, platform, next_take, 2, name="take", init=1)
        m.d.comb += [
            queue.r.ready.eq(take_q),
            freed.eq(queue.r.valid & take_q),
            self.freed.eq(freed),
        ]
        # The read address: picked by ``take`` from two registers, the first row of the
        # queue's head's VF and the row after the one being read (``r_inc``), and loaded into
        # copies by the cells, per column one that picks the bank, then one per bank (below).
        # ``r_inc`` is picked likewise, from the queue's copies of ``row + 1``. Both registers,
        # and ``take`` for ``r_inc``, come in a copy per region of columns: one register
        # feeding every column's copies lay 5 ns of wire from some.
        take_regions = replicas(m, platform, next_take, regions, name="take_region", init=1)
        r_incs = [Signal(range(depth), name=f"r_inc{k}") for k in range(regions)]
        for k, (t, r_inc) in enumerate(zip(take_regions, r_incs, strict=True)):
            m.d.sync += r_inc.eq(Mux(t, head.row1s[k], r_inc + 1))
        # Each column picks its address itself: ``take`` comes in a copy per column, so the
        # pick is a LUT by the column's copies rather than one far from most of them.
        take_cols = replicas(m, platform, next_take, len(cols), name="take_col", init=1)
        r_addrs = [
            replicas(
                m,
                platform,
                Mux(t, head.rows[j // _REGION], r_incs[j // _REGION]),
                n_banks + 1,
                name=f"r_addr{j}",
            )
            for j, t in enumerate(take_cols)
        ]
        with m.If(take_cur):
            m.d.sync += [cur.eq(head.ctx), g.eq(0)]
        with m.Else():
            m.d.sync += g.eq(g + 1)

        # The pipeline behind the read: P1 (rules read), C1 (per-field compares), C2 (each rule's
        # compares ORed in a few pieces), C3 (per-rule match), then the decision.
        def stage(name):
            return (
                Signal(name=f"{name}_valid"),
                Signal(FrameCtx, name=f"{name}_ctx"),
                Signal(range(groups), name=f"{name}_g"),
                Signal(name=f"{name}_first"),  # g == 0, kept as a flag for the decision
                Signal(name=f"{name}_last"),
            )

        p1, c1, c2, c3 = stage("p1"), stage("c1"), stage("c2"), stage("c3")
        m.d.sync += [
            p1[0].eq(cur_valid),
            p1[1].eq(cur),
            p1[2].eq(g),
            p1[3].eq(g == 0),
            p1[4].eq(last),
            *(a.eq(b) for a, b in zip(c1, p1, strict=True)),
            *(a.eq(b) for a, b in zip(c2, c1, strict=True)),
            *(a.eq(b) for a, b in zip(c3, c2, strict=True)),
        ]
        p1_cols = []
        for (_, lo, hi, ports), copies in zip(cols, r_addrs, strict=True):
            p1_col = Signal(hi - lo, name=f"p1_rules{len(p1_cols)}")
            row_bits = _BANK.bit_length() - 1
            bank = copies[0][row_bits:abits] if abits > row_bits else Const(0, 1)
            m.d.sync += p1_col.eq(Array(rd.data for _, rd in ports)[bank])
            for (_, rd), copy in zip(ports, copies[1:], strict=True):
                m.d.comb += rd.addr.eq(copy)
            p1_cols.append(p1_col)
        rules_rd = [
            RuleEntry(Cat(*(c for (j, *_), c in zip(cols, p1_cols, strict=True) if j == i)))
            for i in range(lanes)
        ]
        # Each lane compares against a copy of the header of its own, next to its rules.
        p1_hdrs = [
            ParsedHdr(copy)
            for copy in replicas(m, platform, cur.hdr.as_value(), lanes, name="p1_hdr")
        ]
        widths = [len(v) for v in _mismatches(rules_rd[0], p1_hdrs[0])]
        c1_act, c2_act, c3_act = Signal(lanes), Signal(lanes), Signal(lanes)
        c3_hit = Signal(lanes)
        for i in range(lanes):
            c1_miss, c1_first, c1_second = (
                Signal(w, name=f"c1_{what}{i}")
                for w, what in zip(widths, ("miss", "first", "second"), strict=True)
            )
            miss, first, second = _mismatches(rules_rd[i], p1_hdrs[i % len(p1_hdrs)])
            parts = [c.any() for c in _chunks(c1_miss)] + [(c1_first & c1_second).any()]
            c2_part = Signal(len(parts), name=f"c2_part{i}")
            m.d.sync += [
                c1_miss.eq(miss),
                c1_first.eq(first),
                c1_second.eq(second),
                c1_act[i].eq(rules_rd[i].action),
                c2_part.eq(Cat(*parts)),
                c2_act[i].eq(c1_act[i]),
                c3_hit[i].eq(~c2_part.any()),
                c3_act[i].eq(c2_act[i]),
            ]

        # ---- decision: the first matching rule over the frame's groups, in order ----
        c3_valid, ctx, cg, cfirst, clast = c3
        found = Signal()  # an earlier group of this frame matched
        f_rule = Signal(8)
        f_act = Signal(Action)
        hit_here = c3_hit.any()
        first_lane = first_one(c3_hit)
        here_rule = Cat(encode(first_lane)[:lane_bits], cg) if lane_bits else cg
        here_act = (c3_act & first_lane).any()
        new_found = Mux(cfirst, hit_here, found | hit_here)
        keep = ~cfirst & found
        rule_idx = Mux(keep, f_rule, here_rule)
        rule_act = Mux(keep, f_act, here_act)
        with m.If(c3_valid):
            m.d.sync += [found.eq(new_found), f_rule.eq(rule_idx), f_act.eq(rule_act)]

        # The frame's outcome into registers, then the decision from them.
        d_valid, d_found, d_act = Signal(), Signal(), Signal(Action)
        d_rule = Signal(8)
        d_ctx = Signal(FrameCtx)
        m.d.sync += [
            d_valid.eq(c3_valid & clast),
            d_found.eq(new_found),
            d_rule.eq(rule_idx),
            d_act.eq(rule_act),
            d_ctx.kind.eq(ctx.kind),
            d_ctx.vf.eq(ctx.vf),
            d_ctx.default.eq(ctx.default),
            d_ctx.bounce.eq(ctx.bounce),
        ]
        action = Mux(d_found, d_act, d_ctx.default)
        verdict = Mux(
            d_ctx.kind == _MALFORMED,
            VerdictCode.MALFORMED,
            Mux(
                d_ctx.kind == _UNKNOWN,
                VerdictCode.UNKNOWN,
                Mux(
                    action == Action.PASS,
                    VerdictCode.PASS,
                    Mux(d_ctx.bounce, VerdictCode.BOUNCE, VerdictCode.BLOCK),
                ),
            ),
        )
        is_rules = d_ctx.kind == _RULES
        m.d.sync += [
            self.dec_valid.eq(d_valid),
            self.dec.verdict.eq(verdict),
            self.dec.vf_valid.eq(is_rules),
            self.dec.vf.eq(Mux(is_rules, d_ctx.vf, 0)),
            self.dec.rule_valid.eq(is_rules & d_found),
            self.dec.rule.eq(Mux(is_rules & d_found, d_rule, 0)),
        ]
        return m
