"""Bounded (BMC) formal checks that the NIC :class:`~hdl.nic.classify.Classifier` decides each
frame as the rules say, in bounded time (``docs/nic.md``, "Formal proofs"), run by
:mod:`vmassist.formal` through ``hdl/nic/formal.py``'s ``PROOFS``.

The claim is checked against :func:`spec_decision`, a combinational reading of the contract
("Steering", "Rules", "Actions and queues") written from the golden model
(``models/nic/filter.py``) and the table layouts, not from the classifier's own compare
helpers: whole-field masked equalities and 16-bit port comparisons where the classifier cuts
fields into chunks and ports into bytes.
"""

from amaranth import Cat, Const, Module, Mux, ResetSignal, Signal
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Elaboratable
from amaranth.lib import data

from vmassist.formats.nic import (
    Action,
    Decision,
    IpKind,
    Malformed,
    ParsedHdr,
    RuleEntry,
    VerdictCode,
    VfEntry,
)

from ..common.params import require
from .classify import Classifier

__all__ = ["ClassifierHarness", "spec_decision", "spec_rule_matches", "spec_steer"]


def _masked_eq(value, mask, field):
    return (field & mask) == (value & mask)


def spec_rule_matches(r, h):
    """Whether rule ``r`` (a :class:`RuleEntry`) matches frame ``h`` (a :class:`ParsedHdr`):
    a valid rule whose every enabled field matches. MACs and IP addresses compare under their
    masks (a MAC is always compared; mask 0 means any); an IP field also needs the frame to be
    IP of the rule's family, ``proto`` an IP frame, a port range parsed ports."""
    family = Mux(r.v6, IpKind.V6, IpKind.V4)
    return Cat(
        r.valid,
        _masked_eq(r.src_mac, r.src_mac_mask, h.src),
        _masked_eq(r.dst_mac, r.dst_mac_mask, h.dst),
        ~r.ethertype_en | (h.ethertype == r.ethertype),
        ~r.vlan_en | ((h.tags != 0) & (h.inner_vid == r.vlan)),
        ~r.src_ip_en | ((h.ip == family) & _masked_eq(r.src_ip, r.src_ip_mask, h.src_ip)),
        ~r.dst_ip_en | ((h.ip == family) & _masked_eq(r.dst_ip, r.dst_ip_mask, h.dst_ip)),
        ~r.proto_en | ((h.ip != IpKind.NONE) & (h.proto == r.proto)),
        ~r.sport_en | (h.ports & (r.sport_lo <= h.sport) & (h.sport <= r.sport_hi)),
        ~r.dport_en | (h.ports & (r.dport_lo <= h.dport) & (h.dport <= r.dport_hi)),
    ).all()


def spec_steer(vfs, h):
    """``(found, vf)``: the first valid row of ``vfs`` whose MAC is the frame's destination and
    whose VLAN is its outer VID (a row without VLAN takes untagged frames only); ``found`` is 0
    for a group destination (I/G bit, ``dst[40]``) or when no row matches."""
    found, vf = Const(0), Const(0, 8)
    for v in reversed(range(len(vfs))):
        e = vfs[v]
        tag_ok = Mux(e.vlan_en, (h.tags != 0) & (h.outer_vid == e.vlan), h.tags == 0)
        hit = e.valid & (e.mac == h.dst) & tag_ok
        found, vf = Mux(hit, 1, found), Mux(hit, v, vf)
    return found & ~h.dst[40], vf


def spec_decision(m, vfs, rules, h, *, bug=None):
    """The :class:`Decision` the contract gives frame ``h``, driven (``comb``) onto a new signal.

    Parameters
    ----------
    m : Module
    vfs : list of VfEntry views
        The VF table, row ``v`` for VF ``v``.
    rules : list of lists of RuleEntry views
        ``rules[v][i]``: rule ``i`` of VF ``v``.
    h : ParsedHdr view
    bug : str, optional
        A false claim (see :class:`ClassifierHarness`).

    Returns
    -------
    (Signal of Decision, Value)
        The decision, and whether the frame needs its VF's rules (well formed and steered).
    """
    found, vf = spec_steer(vfs, h)
    row = vfs[0].as_value()
    for v in range(1, len(vfs)):
        row = Mux(vf == v, vfs[v].as_value(), row)
    row = VfEntry(row)

    # The steered VF's first matching rule, in index order, else its default.
    hit, idx, act = Const(0), Const(0, 8), row.default
    for v in range(len(vfs)):
        v_hit, v_idx, v_act = Const(0), Const(0, 8), row.default
        # Built from the last rule back, so that the earliest match ends outermost.
        order = range(len(rules[v])) if bug == "last_match" else reversed(range(len(rules[v])))
        for i in order:
            r = rules[v][i]
            ok = spec_rule_matches(r, h)
            v_hit, v_idx, v_act = Mux(ok, 1, v_hit), Mux(ok, i, v_idx), Mux(ok, r.action, v_act)
        sel = vf == v
        hit, idx, act = Mux(sel, v_hit, hit), Mux(sel, v_idx, idx), Mux(sel, v_act, act)

    bounce = ~row.bounce if bug == "flip_bounce" else row.bounce
    malformed = h.malformed != Malformed.NONE
    steered = Signal(name="spec_steered")
    dec = Signal(Decision, name="spec_dec")
    blocked = Mux(bounce, VerdictCode.BOUNCE, VerdictCode.BLOCK)
    m.d.comb += [
        steered.eq(~malformed & found),
        dec.verdict.eq(
            Mux(
                malformed,
                VerdictCode.MALFORMED,
                Mux(
                    ~found, VerdictCode.UNKNOWN, Mux(act == Action.PASS, VerdictCode.PASS, blocked)
                ),
            )
        ),
        dec.vf_valid.eq(steered),
        dec.vf.eq(Mux(steered, vf, 0)),
        dec.rule_valid.eq(steered & hit),
        dec.rule.eq(Mux(steered & hit, idx, 0)),
    ]
    return dec, steered


class ClassifierHarness(Elaboratable):
    """The :class:`~hdl.nic.classify.Classifier` decides the watched frame ``W`` as
    :func:`spec_decision` does on the tables and W's header, in frame order and in bounded
    time.

    The environment: no reset; in the first cycles every rule and every VF row is written
    through the write ports with ``AnyConst`` contents (one rule and one VF row per cycle, as
    software commits them; VF ``v``'s row in cycle ``v``, rule ``i`` of VF ``v`` in cycle
    ``v * rules + i``), and from then on only writes the classifier must ignore (a VF or rule
    index out of range, any contents). Frames are offered whenever the environment likes, from
    the first cycle. W is any frame taken once every written row is in place (picked by an
    ``AnySeq``); its header is ``AnyConst``, and every other frame's header is W's or a second
    ``AnyConst`` header O (chosen per frame by an ``AnySeq``). A frame ahead of W matters to W
    through its timing, set by its kind (needs rules or not), and through what it leaves in
    the engine (a match); W and O can each be of either kind and match or not. One free header
    per cycle instead makes the solver's work grow many times with every cycle. Decisions are
    counted against the frames taken, so W's is found by its order.

    Claims, with ``paced`` (frames taken at least ``groups`` cycles apart, the pace the line
    keeps: ``docs/nic.md``, "Latency"):

    1. No decision comes without a frame taken and not yet decided.
    2. W's decision (verdict, VF, rule) equals :func:`spec_decision`.
    3. It comes exactly ``latency(needs_rules)`` cycles after W is taken.

    Without ``paced`` (any traffic, back to back, the frames ahead of W queueing for the rule
    engine):

    1. As above.
    4. W's decision comes within ``bound`` cycles of W being taken. (Its value is not checked
       here: with unpaced traffic the solver's work grows too fast.)

    Parameters
    ----------
    n_vfs, rules, data_width, queue : int
        The :class:`~hdl.nic.classify.Classifier` under proof (a queue of 3 frames by default:
        the bound depends on it, and a deeper one only makes the unpaced proof longer).
    paced : bool
        Which claims, under which traffic (above).
    bug : str, optional
        A false claim, for testing that the proof can fail: ``"last_match"`` (the spec takes the
        last matching rule) or ``"flip_bounce"`` (the spec bounces a blocked frame exactly when
        the VF says drop).
    bound : int, optional
        The bounded-response claim, in cycles from W taken to its decision; by default
        ``latency(True) + (queue - 1) * (groups - 1)``: up to ``queue - 1`` frames ahead of W
        hold credits (in steering or the queue), taken back to back, and each that needs rules
        holds W back ``groups - 1`` cycles more than a frame that needs none; the frames before
        them left the queue before they were taken, so the engine is free when they reach it.
    """

    BUGS = ("last_match", "flip_bounce")

    def __init__(
        self,
        *,
        n_vfs: int = 2,
        rules: int = 2,
        data_width: int = 64,
        queue: int = 3,
        paced: bool = True,
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
            bug is None or paced,
            ValueError(f"bug {bug!r} is a false decision, which only paced=True checks"),
        )
        self.dut = Classifier(n_vfs=n_vfs, rules=rules, data_width=data_width, queue=queue)
        self.paced = paced
        self.bug = bug
        #: Cycles of the write schedule: one rule and one VF row per cycle.
        self.writes = max(n_vfs * rules, n_vfs)
        #: The first cycle every written row is in the tables (a write lands 2 cycles after its
        #: enable and is read from the cycle after): W is taken from then on.
        self.start = self.writes + 2
        g = self.dut.groups
        self.bound = self.dut.latency(True) + (queue - 1) * (g - 1) if bound is None else bound

    def elaborate(self, platform):
        m = Module()
        cl = self.dut
        m.submodules.classifier = cl
        n, nr, groups = cl.n_vfs, cl.rules, cl.groups
        # The tables are not reset (memories), and a reset drops the frames in flight.
        m.d.comb += Assume(~ResetSignal())

        def anyconst(shape, name):
            s = Signal(shape, name=name)
            m.d.comb += s.eq(AnyConst(data.Layout.cast(shape).size))
            return s

        vf_rows = [anyconst(VfEntry, f"vf_row{v}") for v in range(n)]
        rule_rows = [[anyconst(RuleEntry, f"rule{v}_{i}") for i in range(nr)] for v in range(n)]
        w_hdr = anyconst(ParsedHdr, "w_hdr")
        o_hdr = anyconst(ParsedHdr, "o_hdr")

        # ---- the tables: all written once, then only writes to be ignored ----
        cyc = Signal(range(self.start + 1))
        with m.If(cyc != self.start):
            m.d.sync += cyc.eq(cyc + 1)
        m.d.comb += [
            cl.rule_we.eq(AnySeq(1)),
            cl.rule_vf.eq(AnySeq(8)),
            cl.rule_idx.eq(AnySeq(8)),
            cl.rule_row.eq(AnySeq(data.Layout.cast(RuleEntry).size)),
            cl.vf_we.eq(AnySeq(1)),
            cl.vf_idx.eq(AnySeq(8)),
            cl.vf_row.eq(AnySeq(data.Layout.cast(VfEntry).size)),
        ]
        with m.Switch(cyc):
            for c in range(self.writes):
                with m.Case(c):
                    if c < n * nr:
                        v, i = divmod(c, nr)
                        m.d.comb += [
                            cl.rule_we.eq(1),
                            cl.rule_vf.eq(v),
                            cl.rule_idx.eq(i),
                            cl.rule_row.eq(rule_rows[v][i]),
                        ]
                    if c < n:
                        m.d.comb += [cl.vf_we.eq(1), cl.vf_idx.eq(c), cl.vf_row.eq(vf_rows[c])]
        m.d.comb += [
            Assume(~cl.rule_we | (cyc < n * nr) | (cl.rule_vf >= n) | (cl.rule_idx >= nr)),
            Assume(~cl.vf_we | (cyc < n) | (cl.vf_idx >= n)),
        ]

        # ---- frames: W among any others ----
        BEFORE, IN, DONE = range(3)
        st = Signal(range(3))
        offer = (st == BEFORE) & (cyc == self.start) & AnySeq(1)
        m.d.comb += [
            cl.i_valid.eq(AnySeq(1)),
            cl.i_hdr.eq(Mux(offer | AnySeq(1), w_hdr.as_value(), o_hdr.as_value())),
        ]
        took = cl.i_valid & cl.i_ready
        inflight = Signal(8)  # frames taken and not yet decided
        m.d.sync += inflight.eq(inflight + took - cl.dec_valid)
        m.d.comb += Assert(~cl.dec_valid | (inflight != 0))  # 1
        if self.paced:
            gap = Signal(range(groups + 1), init=groups)  # cycles since a frame was taken
            with m.If(took):
                m.d.sync += gap.eq(1)
            with m.Elif(gap != groups):
                m.d.sync += gap.eq(gap + 1)
            m.d.comb += Assume(~cl.i_valid | (gap == groups))

        ahead = Signal(8)  # decisions still due to frames taken before W
        age = Signal(8)  # cycles since W was taken (saturating)
        with m.If(offer & took):
            m.d.sync += [st.eq(IN), ahead.eq(inflight - cl.dec_valid), age.eq(1)]
        with m.If(st == IN):
            m.d.sync += age.eq(Mux(age == 255, age, age + 1))
            with m.If(cl.dec_valid):
                with m.If(ahead != 0):
                    m.d.sync += ahead.eq(ahead - 1)
                with m.Else():
                    m.d.sync += st.eq(DONE)
        mine = (st == IN) & cl.dec_valid & (ahead == 0)
        if self.paced:
            spec, needs_rules = spec_decision(m, vf_rows, rule_rows, w_hdr, bug=self.bug)
            latency = Mux(needs_rules, cl.latency(True), cl.latency(False))
            m.d.comb += [
                Assert(~mine | (cl.dec == spec)),  # 2
                Assert(~mine | (age == latency)),  # 3
            ]
        else:
            m.d.comb += Assert(~(st == IN) | (age < self.bound) | mine)  # 4
        return m
