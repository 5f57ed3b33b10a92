"""Steering and rules: the NIC filter's decision for each parsed frame (``docs/nic.md``)."""

from amaranth import Cat, Const, Module, Mux, Signal
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

from ..common.bits import encode, first_one
from ..common.params import require

__all__ = ["Classifier", "FrameCtx", "Kind"]

_RULES, _UNKNOWN, _MALFORMED = 0, 1, 2


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
    """Per-field (and per 16-bit chunk of wide fields) reasons why rule ``r`` does not match
    frame ``h``; each is shallow enough for one pipeline stage, and the rule matches when none
    is set."""
    out = [~r.valid]
    for val, mask, fld in (
        (r.src_mac, r.src_mac_mask, h.src),
        (r.dst_mac, r.dst_mac_mask, h.dst),
    ):
        out += [c.any() for c in _chunks((fld ^ val) & mask)]
    out.append(r.ethertype_en & (h.ethertype != r.ethertype))
    out.append(r.vlan_en & ((h.tags == 0) | (h.inner_vid != r.vlan)))
    family = Mux(r.v6, IpKind.V6, IpKind.V4)
    out.append((r.src_ip_en | r.dst_ip_en) & (h.ip != family))
    for en, val, mask, fld in (
        (r.src_ip_en, r.src_ip, r.src_ip_mask, h.src_ip),
        (r.dst_ip_en, r.dst_ip, r.dst_ip_mask, h.dst_ip),
    ):
        out += [en & c.any() for c in _chunks((fld ^ val) & mask)]
    out.append(r.proto_en & ((h.ip == IpKind.NONE) | (h.proto != r.proto)))
    for en, lo, hi, port in (
        (r.sport_en, r.sport_lo, r.sport_hi, h.sport),
        (r.dport_en, r.dport_lo, r.dport_hi, h.dport),
    ):
        out.append(en & (~h.ports | (port < lo) | (port > hi)))
    return Cat(*out)


class Classifier(wiring.Component):
    """Steering by (destination MAC, outer VLAN), then the VF's rules, first match wins.

    The rules live in one memory row per (VF, group) of ``lanes`` rules. A frame that needs
    rules reads its VF's ``groups`` rows on consecutive cycles, ``lanes`` compare units judge
    each row, and the first match in rule order decides; any other frame takes one cycle. The
    lanes are sized so that ``groups`` cycles fit in the shortest well-formed frame
    (:data:`~vmassist.formats.nic.MIN_LEN` bytes) at ``data_width``: the engine keeps up with
    the line whatever the traffic.

    Each rule and each VF row is written in one cycle (``rule_we``, ``vf_we``) and read in one
    cycle, so a frame sees the old or the new row, never parts of both. The VF row a frame
    uses (steering, default, bounce) is taken once, at steering.

    Parameters
    ----------
    n_vfs : int
        Virtual functions, 1 to 64.
    rules : int
        Rules per VF, 1 to 256.
    data_width : int
        The frame stream's width in bits, which sets the lanes.

    Members
    -------
    i_valid, i_ready, i_hdr : In, Out, In
        One parsed frame per transfer.
    dec_valid, dec : Out
        The decision, in frame order, ``latency(groups)`` cycles after the frame was taken
        (never back-pressured: the NIC sizes its verdict FIFO to hold every buffered frame).
    vf_we, vf_idx, vf_row : In
        Write one VF-table row.
    rule_we, rule_vf, rule_idx, rule_row : In
        Write one rule (an index >= ``rules`` is ignored).
    """

    def __init__(self, *, n_vfs: int = 4, rules: int = 16, data_width: int = 64):
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
        self._n_vfs = n_vfs
        self._rules = rules
        beats = -(-MIN_LEN * 8 // data_width)  # cycles the shortest good frame takes
        lanes = -(-rules // beats)
        self._lanes = 1 << (lanes - 1).bit_length()  # a power of two: rule index = group, lane
        self._groups = -(-rules // self._lanes)
        super().__init__(
            {
                "i_valid": In(1),
                "i_ready": Out(1),
                "i_hdr": In(ParsedHdr),
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
    def lanes(self) -> int:
        """Rules judged per cycle."""
        return self._lanes

    @property
    def groups(self) -> int:
        """Cycles a frame spends in the rule engine when it needs rules."""
        return self._groups

    #: Cycles from taking a frame to its decision, besides its rule groups: steering (2), issue,
    #: rule read, two compare stages, decision.
    BASE_LATENCY = 7

    def latency(self, needs_rules: bool) -> int:
        """Cycles from ``i_valid & i_ready`` to ``dec_valid`` for a frame entering an idle
        engine."""
        return self.BASE_LATENCY + (self._groups - 1 if needs_rules else 0)

    def elaborate(self, platform):
        m = Module()
        n, lanes, groups = self._n_vfs, self._lanes, self._groups
        vf_bits = max(1, (n - 1).bit_length())

        # ---- VF table (registers: every row is compared at once) ----
        vfs = [Signal(VfEntry, name=f"vf{v}") for v in range(n)]
        with m.If(self.vf_we):
            for v in range(n):
                with m.If(self.vf_idx == v):
                    m.d.sync += vfs[v].eq(self.vf_row)

        # ---- rule memory: row vf * groups + group holds ``lanes`` rules ----
        row = data.ArrayLayout(RuleEntry, lanes)
        rules = memory.Memory(shape=row, depth=n * groups, init=[])
        m.submodules.rules = rules
        wr = rules.write_port(granularity=1)  # one enable per rule of the row
        rd = rules.read_port()
        lane_bits = (lanes - 1).bit_length()
        grp = self.rule_idx >> lane_bits
        lane = self.rule_idx[:lane_bits] if lane_bits else Const(0, 1)
        ok = (self.rule_idx < self._rules) & (self.rule_vf < n)
        m.d.comb += [
            wr.addr.eq(self.rule_vf[:vf_bits] * groups + grp),
            wr.data.eq(Cat(*(self.rule_row for _ in range(lanes)))),
            wr.en.eq(Mux(self.rule_we & ok, (Const(1, lanes) << lane)[:lanes], 0)),
        ]

        # ---- steering: S1 compares every VF row, S2 picks the VF ----
        stall = Signal()
        s1_valid, s2_valid = Signal(), Signal()
        s1_hdr = Signal(ParsedHdr)
        s1_eq = Signal(n)
        s1_default = Signal(n)
        s1_bounce = Signal(n)
        s2 = Signal(FrameCtx)
        m.d.comb += self.i_ready.eq(~stall)
        with m.If(~stall):
            h = self.i_hdr
            m.d.sync += [s1_valid.eq(self.i_valid), s1_hdr.eq(h), s2_valid.eq(s1_valid)]
            for v, e in enumerate(vfs):
                tag_ok = Mux(e.vlan_en, (h.tags != 0) & (h.outer_vid == e.vlan), h.tags == 0)
                m.d.sync += [
                    s1_eq[v].eq(e.valid & (e.mac == h.dst) & tag_ok),
                    s1_default[v].eq(e.default),
                    s1_bounce[v].eq(e.bounce),
                ]
            pick = first_one(s1_eq)
            group_addr = s1_hdr.dst[40]  # I/G bit: multicast and broadcast go to the VMM
            kind = Mux(
                s1_hdr.malformed != Malformed.NONE,
                _MALFORMED,
                Mux(group_addr | ~s1_eq.any(), _UNKNOWN, _RULES),
            )
            m.d.sync += [
                s2.hdr.eq(s1_hdr),
                s2.kind.eq(kind),
                s2.vf.eq(encode(pick)),
                s2.default.eq((s1_default & pick).any()),
                s2.bounce.eq((s1_bounce & pick).any()),
            ]

        # ---- issue: a frame needing rules reads its VF's rows, one group per cycle ----
        cur_valid = Signal()
        cur = Signal(FrameCtx)
        g = Signal(range(groups))
        needs = cur.kind == _RULES
        last = ~needs | (g == groups - 1)
        done = cur_valid & last
        take = ~cur_valid | done
        m.d.comb += stall.eq(s2_valid & ~take)
        with m.If(take):
            m.d.sync += [cur_valid.eq(s2_valid), cur.eq(s2), g.eq(0)]
        with m.Elif(cur_valid):
            m.d.sync += g.eq(g + 1)
        m.d.comb += [rd.addr.eq(cur.vf[:vf_bits] * groups + g), rd.en.eq(1)]

        # The pipeline behind the read: P1 (rules read), C1 (per-field compares), C2 (per-rule
        # match), then the decision.
        def stage(name):
            return (
                Signal(name=f"{name}_valid"),
                Signal(FrameCtx, name=f"{name}_ctx"),
                Signal(range(groups), name=f"{name}_g"),
                Signal(name=f"{name}_last"),
            )

        p1, c1, c2 = stage("p1"), stage("c1"), stage("c2")
        m.d.sync += [
            p1[0].eq(cur_valid),
            p1[1].eq(cur),
            p1[2].eq(g),
            p1[3].eq(last),
            *(a.eq(b) for a, b in zip(c1, p1, strict=True)),
            *(a.eq(b) for a, b in zip(c2, c1, strict=True)),
        ]
        rules_rd = rd.data
        miss_w = len(_mismatches(rules_rd[0], p1[1].hdr))
        c1_miss = [Signal(miss_w, name=f"c1_miss{i}") for i in range(lanes)]
        c1_act = Signal(lanes)
        c2_hit = Signal(lanes)
        c2_act = Signal(lanes)
        for i in range(lanes):
            m.d.sync += [
                c1_miss[i].eq(_mismatches(rules_rd[i], p1[1].hdr)),
                c1_act[i].eq(rules_rd[i].action),
                c2_hit[i].eq(~c1_miss[i].any()),
                c2_act[i].eq(c1_act[i]),
            ]

        # ---- decision: the first matching rule over the frame's groups, in order ----
        c2_valid, ctx, cg, clast = c2
        found = Signal()  # an earlier group of this frame matched
        f_rule = Signal(8)
        f_act = Signal(Action)
        hit_here = c2_hit.any()
        first_lane = first_one(c2_hit)
        here_rule = Cat(encode(first_lane)[:lane_bits], cg) if lane_bits else cg
        here_act = (c2_act & first_lane).any()
        new_found = Mux(cg == 0, hit_here, found | hit_here)
        keep = (cg != 0) & found
        rule_idx = Mux(keep, f_rule, here_rule)
        rule_act = Mux(keep, f_act, here_act)
        with m.If(c2_valid):
            m.d.sync += [found.eq(new_found), f_rule.eq(rule_idx), f_act.eq(rule_act)]

        action = Mux(new_found, rule_act, ctx.default)
        verdict = Mux(
            ctx.kind == _MALFORMED,
            VerdictCode.MALFORMED,
            Mux(
                ctx.kind == _UNKNOWN,
                VerdictCode.UNKNOWN,
                Mux(
                    action == Action.PASS,
                    VerdictCode.PASS,
                    Mux(ctx.bounce, VerdictCode.BOUNCE, VerdictCode.BLOCK),
                ),
            ),
        )
        is_rules = ctx.kind == _RULES
        m.d.sync += [
            self.dec_valid.eq(c2_valid & clast),
            self.dec.verdict.eq(verdict),
            self.dec.vf_valid.eq(is_rules),
            self.dec.vf.eq(Mux(is_rules, ctx.vf, 0)),
            self.dec.rule_valid.eq(is_rules & new_found),
            self.dec.rule.eq(Mux(is_rules & new_found, rule_idx, 0)),
        ]
        return m
