"""The NIC's header parser: one :class:`HeaderRec` per frame in, one :class:`ParsedHdr` out.

It computes exactly what ``models/nic/parse.py`` does (``docs/nic.md``, "Contract", "Parser"),
as a fixed-latency pipeline sized for 156.25 MHz on ECP5. Nothing is shifted by a variable
amount: the L3 header starts at one of three offsets (14, 18, 22: 0, 1 or 2 tags), so it is
first copied to a fixed place by a 3-way multiplexer; the L4 header then starts ``4 * hl`` bytes
into it (``hl`` = IHL for IPv4, 10 for IPv6's 40 bytes), an 11-way choice split over two stages.
Every length check is a comparison of registered operands, never an adder feeding a comparator
in the same cycle.
"""

from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from vmassist.formats.nic import (
    ETH_IPV4,
    ETH_IPV6,
    ETH_QINQ,
    ETH_VLAN,
    MAX_LEN,
    MIN_LEN,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    HeaderRec,
    IpKind,
    Malformed,
    ParsedHdr,
)

from ..common.replica import replicas

__all__ = ["Parser"]

#: Bytes of the L3-aligned copy: the L4 window of the deepest IPv4 header (IHL 15) ends at
#: byte 60 + 12 (TCP data offset); 22 + 73 = 95 is still inside the record.
L3_BYTES = 73
#: Where a tag's TPID, or the ethertype, sits for 0, 1 and 2 tags.
TYPE_AT = (12, 16, 20)
#: Bytes of the L3 copy per copy of the tag flags that select it (the flags would otherwise
#: drive some 600 multiplexers, with routes of several ns to the far ones).
L3_CHUNK = 8


def _byte(v, i: int):
    return v[8 * i : 8 * i + 8]


def _be(v, i: int, n: int):
    """The ``n`` bytes at ``i`` of a little-endian-by-byte vector, read as a big-endian number."""
    return Cat(*(_byte(v, i + k) for k in reversed(range(n))))


def _window(l3, at: int):
    """The L4 fields at byte ``at`` of the L3 copy: ports, UDP length and TCP data offset."""
    return Cat(_be(l3, at, 2), _be(l3, at + 2, 2), _be(l3, at + 4, 2), _byte(l3, at + 12)[4:])


def _pick(regs: SimpleNamespace, names: str) -> dict:
    """The registers ``names`` (space-separated) of a stage, to carry into the next one."""
    return {k: getattr(regs, k) for k in names.split()}


def _only(cond, v):
    """``v`` where ``cond`` holds, else 0, as an AND. Yosys makes a multiplexer to a constant in
    front of a flop its synchronous reset, and on ECP5 (reset over enable) that costs a LUT
    merging it with the stall enable, on the stall's already long fan-out."""
    v = Value.cast(v)
    return v & cond.replicate(len(v))


def _first(flags):
    """The reason of the first set flag of ``(reason, flag)`` pairs in check order, else 0,
    as AND-OR terms (see :func:`_only`)."""
    code, earlier = Const(Malformed.NONE, 4), Const(0, 1)
    for reason, flag in flags:
        code = code | _only(flag & ~earlier, Const(reason, 4))
        earlier = earlier | flag
    return code


class Parser(wiring.Component):
    """The header parser, fully pipelined: one record per cycle, in order, ``LATENCY`` cycles.

    Back-pressure is a global stall: every stage advances when ``~o.valid | o.ready``, which is
    also ``i.ready``. The stages:

    1. Tag detection: TPIDs at bytes 12 and 16; for each place of the type (12, 16, 20)
       whether it is IPv4 or IPv6, and ``hl`` of the L3 header that would follow.
    2. The L3 header copied from byte 14, 18 or 22 to a fixed place; MACs, VIDs, ethertype;
       ``remaining`` (length − L3 offset) and runt/giant.
    3. IP fields and the L3 length comparisons; the L4 region length; the L4 window chosen among
       the four offsets of each IHL group (IHL mod 4).
    4. The L4 window chosen by IHL div 4; the L3 checks that apply; L4 truncation.
    5. TCP data offset and UDP length compared with the region; the first L3 failure encoded.
    6. The TCP and UDP length checks, and the final reason, into the output register.

    For a good frame the output is exactly :func:`models.nic.parse.hdr_fields`. For a malformed
    one only ``malformed`` (the first failing check) and ``length`` are defined: the other fields
    hold whatever the stages computed, including fields the model leaves out after the failure.

    Members
    -------
    i : In(stream.Signature(HeaderRec))
        One record per frame: its first 96 bytes and its (saturated) length.
    o : Out(stream.Signature(ParsedHdr))
        The parsed header of each record, in order.
    """

    LATENCY = 6

    i: In(stream.Signature(HeaderRec))
    o: Out(stream.Signature(ParsedHdr))

    def elaborate(self, platform):
        m = Module()
        adv = Signal()
        m.d.comb += [adv.eq(~self.o.valid | self.o.ready), self.i.ready.eq(adv)]

        def register(stage: int, **values) -> SimpleNamespace:
            regs = {}
            for name, value in values.items():
                value = Value.cast(value)
                reg = Signal(value.shape(), name=f"s{stage}_{name}", reset_less=True)
                with m.If(adv):
                    m.d.sync += reg.eq(value)
                regs[name] = reg
            return SimpleNamespace(**regs)

        valid = self.i.valid
        for stage in range(1, self.LATENCY):
            v = Signal(name=f"s{stage}_valid")
            with m.If(adv):
                m.d.sync += v.eq(valid)
            valid = v
        with m.If(adv):
            m.d.sync += self.o.valid.eq(valid)

        # 1. Constant compares on the input, at most three LUT levels deep. Stage 2's 3:1
        # choices select on t1 and on a TPID at 16 directly (t2 = both), one LUT5 per bit.
        hdr = self.i.payload.hdr
        v6 = [_be(hdr, at, 2) == ETH_IPV6 for at in TYPE_AT]
        t1_next = (_be(hdr, 12, 2) == ETH_QINQ) | (_be(hdr, 12, 2) == ETH_VLAN)
        vlan16_next = _be(hdr, 16, 2) == ETH_VLAN
        chunks = -(-L3_BYTES // L3_CHUNK)
        sel = replicas(m, platform, Cat(t1_next, vlan16_next), chunks, name="s1_tags", en=adv)
        s1 = register(
            1,
            hdr=hdr,
            length=self.i.payload.length,
            t1=t1_next,
            vlan16=vlan16_next,
            v4=Cat(*(_be(hdr, at, 2) == ETH_IPV4 for at in TYPE_AT)),
            v6=Cat(*v6),
            # L4 starts 4*hl bytes into L3; IPv6's fixed 40 bytes are IHL 10 to that choice.
            hl=Cat(
                *(
                    _only(~v, _byte(hdr, at + 2)[:4]) | _only(v, Const(10, 4))
                    for v, at in zip(v6, TYPE_AT, strict=True)
                )
            ),
        )

        # 2. Align the L3 header.
        t1, t2 = s1.t1, s1.t1 & s1.vlan16

        def by_tags(v0, v1, v2):
            return Mux(s1.t1, Mux(s1.vlan16, v2, v1), v0)

        h = s1.hdr
        # The L3 copy, chunk by chunk, each chunk selected by its own copy of the tag flags.
        pieces = []
        for k, copy in enumerate(sel):
            lo, hi = k * L3_CHUNK, min((k + 1) * L3_CHUNK, L3_BYTES)
            v0, v1, v2 = (h[8 * (lo + o) : 8 * (hi + o)] for o in (14, 18, 22))
            pieces.append(Mux(copy[0], Mux(copy[1], v2, v1), v0))
        l3 = Cat(*pieces)
        l3_at = by_tags(14, 18, 22)
        outer_vid = _only(t1, _be(h, 14, 2)[:12])
        # The L3 fields stage 3 tests, compared at each of the three L3 offsets and picked like
        # the header (a compare of the aligned copy would follow the 3:1 choice in series).
        at3 = (14, 18, 22)
        unfrag = [_be(h, o + 6, 2)[:13] == 0 for o in at3]  # fragment offset 0

        def proto_is(at, value):
            return by_tags(*(_byte(h, o + at) == value for o in at3))

        s2 = register(
            2,
            l3=l3,
            unfrag=by_tags(*unfrag),
            tcp4=proto_is(9, PROTO_TCP),
            udp4=proto_is(9, PROTO_UDP),
            icmp4=proto_is(9, PROTO_ICMP),
            tcp6=proto_is(6, PROTO_TCP),
            udp6=proto_is(6, PROTO_UDP),
            icmp6=proto_is(6, PROTO_ICMPV6),
            dst=_be(h, 0, 6),
            src=_be(h, 6, 6),
            tags=Cat(t1 & ~t2, t2),
            outer_vid=outer_vid,
            inner_vid=Mux(t2, _be(h, 18, 2)[:12], outer_vid),
            ethertype=by_tags(*(_be(h, at, 2) for at in TYPE_AT)),
            v4=by_tags(*s1.v4),
            v6=by_tags(*s1.v6),
            hl=by_tags(*(s1.hl[4 * k : 4 * k + 4] for k in range(3))),
            rem=(s1.length - l3_at)[:14],  # wraps only for runts, which fail first
            # IPv6's limit on plen, a second constant rather than a second carry chain after
            # rem's; it wraps only when the header is truncated, which fails first.
            rem6=(s1.length - by_tags(54, 58, 62))[:14],
            runt=s1.length < MIN_LEN,
            giant=s1.length > MAX_LEN,
            length=s1.length,
        )

        # 3. IP fields; the L3 length comparisons, each one carry chain (gated in stage 4).
        l3 = s2.l3
        ver, ihl = _byte(l3, 0)[4:], _byte(l3, 0)[:4]
        hlen = Cat(Const(0, 2), ihl)
        total, frag = _be(l3, 2, 2), _be(l3, 6, 2)
        first_frag = s2.unfrag
        proto4, nh = _byte(l3, 9), _byte(l3, 6)
        v4_l4 = s2.v4 & first_frag  # IPv4 whose L4 header is parsed
        proto = _only(s2.v4, proto4) | _only(s2.v6, nh)
        # Groups of four L4 offsets, 16..60 bytes into L3: (hl mod 4) picks within each.
        group = [
            Mux(
                s2.hl[1],
                Mux(s2.hl[0], _window(l3, 16 * g + 12), _window(l3, 16 * g + 8)),
                Mux(s2.hl[0], _window(l3, 16 * g + 4), _window(l3, 16 * g)),
            )
            for g in (1, 2, 3)
        ]
        s3 = register(
            3,
            short4=s2.rem < 20,
            short6=s2.rem < 40,
            ver4=ver == 4,
            ver6=ver == 6,
            ihl_bad=(ihl < 5) | (hlen > s2.rem),
            len4_bad=(total < hlen) | (total > s2.rem),
            len6_bad=_be(l3, 4, 2) > s2.rem6,
            l4_len=Mux(s2.v4, (total - hlen)[:16], _be(l3, 4, 2)),
            tcp=(v4_l4 & s2.tcp4) | (s2.v6 & s2.tcp6),
            udp=(v4_l4 & s2.udp4) | (s2.v6 & s2.udp6),
            icmp=(v4_l4 & s2.icmp4) | (s2.v6 & s2.icmp6),
            ip=_only(s2.v4, Const(IpKind.V4, 2)) | _only(s2.v6, Const(IpKind.V6, 2)),
            src_ip=_only(s2.v4, _be(l3, 12, 4)) | _only(s2.v6, _be(l3, 8, 16)),
            dst_ip=_only(s2.v4, _be(l3, 16, 4)) | _only(s2.v6, _be(l3, 24, 16)),
            proto=proto,
            fragment=s2.v4 & (frag[13] | ~first_frag),
            first_frag=~s2.v4 | first_frag,
            group=Cat(*group),
            hl_hi=s2.hl[2:],
            **_pick(s2, "v4 v6 dst src tags outer_vid inner_vid ethertype runt giant length"),
        )

        # 4. The L4 window; the L3 checks of the frame's IP version; L4 truncation.
        width = len(group[0])
        g1, g2, g3 = (s3.group[width * k : width * (k + 1)] for k in range(3))
        win = Mux(s3.hl_hi[1], Mux(s3.hl_hi[0], g3, g2), g1)
        l4_len = s3.l4_len
        v4, v6 = s3.v4, s3.v6
        s4 = register(
            4,
            trunc=(v4 & s3.short4) | (v6 & s3.short6),
            version=(v4 & ~s3.ver4) | (v6 & ~s3.ver6),
            ihl=v4 & s3.ihl_bad,
            ip_len=(v4 & s3.len4_bad) | (v6 & s3.len6_bad),
            l4_trunc=(s3.tcp & (l4_len < 20)) | (s3.udp & (l4_len < 8)) | (s3.icmp & (l4_len < 4)),
            sport=win[0:16],
            dport=win[16:32],
            ulen=win[32:48],
            doff=win[48:52],
            **_pick(s3, "l4_len tcp udp ip src_ip dst_ip proto fragment first_frag"),
            **_pick(s3, "dst src tags outer_vid inner_vid ethertype runt giant length"),
        )

        # 5. The L4 length comparisons, each a carry chain on registered operands into a
        # register (combined in stage 6); the first L3 failure (every later check is L4).
        ports = s4.tcp | s4.udp
        s5 = register(
            5,
            doff_short=s4.doff < 5,
            doff_long=Cat(Const(0, 2), s4.doff) > s4.l4_len,
            ulen_short=s4.ulen < 8,
            ulen_long=s4.ulen > s4.l4_len,
            tcp=s4.tcp,
            udp=s4.udp,
            ports=ports,
            sport=_only(ports, s4.sport),
            dport=_only(ports, s4.dport),
            early=_first(
                [
                    (Malformed.RUNT, s4.runt),
                    (Malformed.GIANT, s4.giant),
                    (Malformed.IP_TRUNCATED, s4.trunc),
                    (Malformed.IP_VERSION, s4.version),
                    (Malformed.IP_IHL, s4.ihl),
                    (Malformed.IP_LENGTH, s4.ip_len),
                ]
            ),
            **_pick(s4, "l4_trunc ip src_ip dst_ip proto fragment first_frag"),
            **_pick(s4, "dst src tags outer_vid inner_vid ethertype length"),
        )

        # 6. The L4 checks, and the final reason, into the output register.
        late = _first(
            [
                (Malformed.L4_TRUNCATED, s5.l4_trunc),
                (Malformed.TCP_OFFSET, s5.tcp & (s5.doff_short | s5.doff_long)),
                (Malformed.UDP_LENGTH, s5.udp & (s5.ulen_short | (s5.ulen_long & ~s5.fragment))),
            ]
        )
        # Without a reset, like every data flop here: only the flops' enable is the stall.
        out = Signal(ParsedHdr, name="out", reset_less=True)
        m.d.comb += self.o.payload.eq(out)
        names = "dst src tags outer_vid inner_vid ethertype ip src_ip dst_ip proto fragment"
        names += " first_frag ports sport dport length"
        with m.If(adv):
            m.d.sync += out.malformed.eq(s5.early | _only(s5.early == Malformed.NONE, late))
            m.d.sync += [getattr(out, k).eq(v) for k, v in _pick(s5, names).items()]
        return m
