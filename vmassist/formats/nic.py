"""NIC bit formats: the header record the ingress hands the parser, and the parsed header the
filter matches (``docs/nic.md``, "Contract").

Byte order follows AXI4-Stream: byte ``i`` of a frame is bits ``8*i .. 8*i+7`` of a vector.
Multi-byte header fields (MACs, ethertypes, addresses, ports) are kept as the numbers they
denote on the wire (network byte order decoded), so that ``dst`` of ``02:00:00:00:00:10`` is
``0x020000000010``.
"""

import enum

from amaranth.lib import data  # no "from __future__ import annotations": Struct reads annotations

from .csr import Access, RegisterMap, reg

__all__ = [
    "HDR_BYTES",
    "LEN_BITS",
    "MIN_LEN",
    "MAX_LEN",
    "ETH_IPV4",
    "ETH_IPV6",
    "ETH_VLAN",
    "ETH_QINQ",
    "PROTO_ICMP",
    "PROTO_TCP",
    "PROTO_UDP",
    "PROTO_ICMPV6",
    "Malformed",
    "IpKind",
    "HeaderRec",
    "ParsedHdr",
    "Action",
    "VerdictCode",
    "CounterKind",
    "VfEntry",
    "RuleEntry",
    "Decision",
    "VF_WORDS",
    "RULE_WORDS",
    "NIC_ID",
    "NIC_CSR",
]

HDR_BYTES = 96
"""Frame bytes the parser sees: enough for QinQ (22) + IPv4 with options (60) + the TCP data
offset (byte 12 of TCP) = byte 94."""
LEN_BITS = 14
"""Frame length width; the ingress saturates longer frames at ``2**LEN_BITS - 1`` (a giant)."""
MIN_LEN = 60
"""Shorter frames (without FCS) are runts."""
MAX_LEN = 9216
"""Longer frames are giants."""

# Wire constants: the ethertypes and IP protocol numbers the parser recognises.
ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = 0x8100
ETH_QINQ = 0x88A8
PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58


class Malformed(enum.IntEnum):
    """Why a frame is malformed (``docs/nic.md``), in check order; NONE for a good frame."""

    NONE = 0
    RUNT = 1
    GIANT = 2
    IP_TRUNCATED = 3
    IP_VERSION = 4
    IP_IHL = 5
    IP_LENGTH = 6
    L4_TRUNCATED = 7
    TCP_OFFSET = 8
    UDP_LENGTH = 9


class IpKind(enum.IntEnum):
    NONE = 0
    V4 = 1
    V6 = 2


class HeaderRec(data.Struct):
    """One frame as the parser sees it: its first :data:`HDR_BYTES` bytes (zero beyond the
    frame's end; the NIC's ingress leaves them unspecified in a runt, which is malformed
    whatever they hold) and its length in bytes (saturated)."""

    hdr: 8 * HDR_BYTES
    length: LEN_BITS


class ParsedHdr(data.Struct):
    """The parser's output for one frame. Fields the frame does not carry are zero: no tags
    means ``tags == 0`` and zero VIDs; a non-IP frame has ``ip == NONE`` and zero addresses and
    ``proto``; ``ports`` says whether ``sport``/``dport`` were parsed. An IPv4 address sits in
    the low 32 bits."""

    malformed: Malformed
    dst: 48
    src: 48
    tags: 2
    outer_vid: 12
    inner_vid: 12
    ethertype: 16
    ip: IpKind
    src_ip: 128
    dst_ip: 128
    proto: 8
    fragment: 1
    first_frag: 1
    ports: 1
    sport: 16
    dport: 16
    length: LEN_BITS


class Action(enum.IntEnum):
    PASS = 0
    BLOCK = 1


class VerdictCode(enum.IntEnum):
    """``verdicts.jsonl``'s verdict, as the hardware encodes it."""

    PASS = 0
    BLOCK = 1
    BOUNCE = 2
    UNKNOWN = 3
    MALFORMED = 4


class CounterKind(enum.IntEnum):
    """What CNT_SEL.kind selects; ``vf`` and ``rule`` say which instance."""

    RULE_HITS = 0  #: per (vf, rule): frames the rule decided
    PASS = 1  #: per vf
    BLOCK = 2  #: per vf: blocked by a rule or the default (bounced or dropped)
    BOUNCE = 3  #: per vf
    DROP = 4  #: per vf: blocked and not bounced
    UNKNOWN = 5
    MALFORMED = 6
    OVERFLOW = 7  #: per queue: vf 0..n-1 the VF outputs, n the VMM output, n+1 the ingress
    REINJECT = 8  #: per vf: re-injected frames delivered
    REINJECT_DROP = 9  #: per vf: re-injected frames dropped for lack of room, or a bad VF


class VfEntry(data.Struct):
    """One row of the VF table: frames to (``mac``, ``vlan`` or untagged) belong to the VF."""

    valid: 1
    mac: 48
    vlan_en: 1
    vlan: 12
    default: Action
    bounce: 1


class RuleEntry(data.Struct):
    """One filter rule (``docs/nic.md``, "Rules"). Each ``*_en`` enables its field; MACs and IP
    addresses match under their mask (a prefix length is written out as a mask); ``v6`` is the
    family of the rule's IP fields; port ranges are inclusive."""

    valid: 1
    action: Action
    src_mac: 48
    src_mac_mask: 48
    dst_mac: 48
    dst_mac_mask: 48
    ethertype_en: 1
    ethertype: 16
    vlan_en: 1
    vlan: 12
    src_ip_en: 1
    dst_ip_en: 1
    v6: 1
    src_ip: 128
    src_ip_mask: 128
    dst_ip: 128
    dst_ip_mask: 128
    proto_en: 1
    proto: 8
    sport_en: 1
    sport_lo: 16
    sport_hi: 16
    dport_en: 1
    dport_lo: 16
    dport_hi: 16


class Decision(data.Struct):
    """The filter's decision for one frame (a ``verdicts.jsonl`` line), also the ``tuser`` of
    every beat on the VMM queue: why the frame is there."""

    verdict: VerdictCode
    vf_valid: 1
    vf: 8
    rule_valid: 1
    rule: 8


def _words(layout) -> int:
    return -(-data.Layout.cast(layout).size // 64)


VF_WORDS = _words(VfEntry)
RULE_WORDS = _words(RuleEntry)

NIC_ID = (0x4E494356 << 32) | 1  # 'NICV', version 1


_RULE_BASE = 0x080

NIC_CSR = RegisterMap(
    "nic",
    [
        reg(
            "ID",
            0x000,
            Access.RO,
            "Identification: ASCII 'NICV' and the version.",
            ("version", 0, 16, "register-map version"),
            ("magic", 32, 32, "0x4E494356 ('NICV')"),
        ),
        reg(
            "PARAMS",
            0x008,
            Access.RO,
            "The instance's parameters.",
            ("n_vfs", 0, 8, "virtual functions"),
            ("rules", 8, 8, "rules per VF"),
            ("data_width", 16, 16, "AXI4-Stream data width in bits"),
            ("fifo_log2", 32, 8, "log2 of each output FIFO's depth in beats"),
        ),
        *(
            reg(
                f"VF_W{i}",
                0x010 + 8 * i,
                Access.RW,
                f"Staged VF-table row (:class:`VfEntry`), bits {64 * i}..{64 * i + 63}.",
            )
            for i in range(VF_WORDS)
        ),
        reg(
            "VF_COMMIT",
            0x030,
            Access.WO,
            "Write the staged row to the VF table in one cycle: frames see the old or new row.",
            ("vf", 0, 8, "VF index"),
        ),
        reg(
            "CNT_SEL",
            0x038,
            Access.RW,
            "Selects the counter CNT_VAL shows (:class:`CounterKind`).",
            ("kind", 0, 4, "CounterKind"),
            ("vf", 8, 8, "VF (or queue for OVERFLOW)"),
            ("rule", 16, 8, "rule index (RULE_HITS)"),
        ),
        reg(
            "CNT_VAL",
            0x040,
            Access.RO,
            "The counter CNT_SEL selects (32 bits, wrapping; 0 for a selection that names "
            "none), valid from the fourth cycle after CNT_SEL is written: a read issued after "
            "the CNT_SEL write's response returns it.",
            ("value", 0, 32, "count"),
        ),
        *(
            reg(
                f"RULE_W{i}",
                _RULE_BASE + 8 * i,
                Access.RW,
                f"Staged rule (:class:`RuleEntry`), bits {64 * i}..{64 * i + 63}.",
            )
            for i in range(RULE_WORDS)
        ),
        reg(
            "RULE_COMMIT",
            _RULE_BASE + 8 * RULE_WORDS,
            Access.WO,
            "Write the staged rule in one cycle: every frame is judged by the old rule or the "
            "new one, never by parts of both.",
            ("vf", 0, 8, "VF index"),
            ("rule", 8, 8, "rule index"),
        ),
    ],
)
