"""The NIC golden model: parser (cross-checked with scapy), steering, rules, bounce, counters,
rules files, pcap files, the VMM software filter, ``vmassist nic replay``, and a tcpdump oracle."""

from __future__ import annotations

import gc
import json
import os
import random
import shutil
import struct
import subprocess
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest
from amaranth._unused import MustUse
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Packet, Raw

from models.nic.bpf import expressible, tcpdump_passes
from models.nic.filter import Counters, Verdict, judge
from models.nic.parse import MALFORMED_REASONS, Parsed, parse
from models.nic.pcap import Record, parse_pcap, pcap_bytes, read_pcap, write_pcap
from models.nic.rules import (
    IpMatch,
    MacMatch,
    PortRange,
    Rule,
    Rules,
    Vf,
    VmmConfig,
    load_rules,
    random_rules,
    rules_to_toml,
)
from models.nic.run import queue_records, run_model, run_vmm
from models.nic.traffic import SHORT, generate_traffic, scapy_layers, vm_ipv4
from models.nic.vmm import VmmFilter, bench_filter, share
from vmassist import cli
from vmassist.errors import UserError

VF0 = "02:00:00:00:00:10"
VF1 = "02:00:00:00:00:11"
REMOTE_MAC = "02:00:00:00:00:aa"
TCPDUMP = "/usr/bin/tcpdump"


@pytest.fixture(autouse=True)
def _unused_elaboratables_stay_local():
    """A failed in-process command silences Amaranth's UnusedElaboratable warnings process-wide
    (right for a CLI about to exit); switch them back on for the other tests in this worker."""
    yield
    MustUse._MustUse__silence = True
    gc.collect()
    MustUse._MustUse__silence = False


def frame(pkt: Packet) -> bytes:
    """The frame's bytes, padded to the 60-byte minimum as a NIC would see it."""
    data = bytes(pkt)
    return data + bytes(max(0, 60 - len(data)))


def scapy_view(data: bytes) -> dict[str, object]:
    """The fields :class:`Parsed` holds, as scapy's own dissector sees them (at most 2 tags)."""
    pkt = Ether(data)
    out: dict[str, object] = {
        "dst": int(pkt.dst.replace(":", ""), 16),
        "src": int(pkt.src.replace(":", ""), 16),
    }
    tags = []
    layer = pkt.payload
    etype = pkt.type
    while isinstance(layer, Dot1Q | Dot1AD) and len(tags) < 2:
        if tags and etype != 0x8100:
            break  # a second tag only follows 0x8100
        tags.append(layer.vlan)
        etype = layer.type
        layer = layer.payload
    out["outer_vid"] = tags[0] if tags else None
    out["inner_vid"] = tags[-1] if tags else None
    out["ethertype"] = etype
    ports = None
    if isinstance(layer, IP):
        out.update(
            ip_version=4,
            src_ip=int(IPv4Address(layer.src)),
            dst_ip=int(IPv4Address(layer.dst)),
            proto=layer.proto,
            fragment=bool(layer.flags.MF) or layer.frag != 0,
            first_frag=layer.frag == 0,
        )
        if layer.frag == 0:
            ports = layer.payload
    elif isinstance(layer, IPv6):
        out.update(
            ip_version=6,
            src_ip=int(IPv6Address(layer.src)),
            dst_ip=int(IPv6Address(layer.dst)),
            proto=layer.nh,
            fragment=False,
            first_frag=True,
        )
        ports = layer.payload
    else:
        out.update(ip_version=None, src_ip=None, dst_ip=None, proto=None)
    if isinstance(ports, TCP | UDP):
        out.update(sport=ports.sport, dport=ports.dport)
    else:
        out.update(sport=None, dport=None)
    return out


def view(p: Parsed) -> dict[str, object]:
    keys = ("dst", "src", "outer_vid", "inner_vid", "ethertype", "ip_version", "src_ip", "dst_ip")
    keys += ("proto", "sport", "dport")
    out = {k: getattr(p, k) for k in keys}
    if p.ip_version is not None:
        out.update(fragment=p.fragment, first_frag=p.first_frag)
    return out


def eth(dst: str = VF0, *tags: tuple[int, int], src: str = REMOTE_MAC) -> Packet:
    """Ether header with (TPID, VID) tags from outer to inner."""
    pkt: Packet = Ether(dst=dst, src=src)
    for tpid, vid in tags:
        pkt.lastlayer().type = tpid
        pkt = pkt / (Dot1AD(vlan=vid) if tpid == 0x88A8 else Dot1Q(vlan=vid))
    return pkt


# ---- parser --------------------------------------------------------------------------------------

PARSE_CASES = {
    "ipv4_tcp": eth() / IP(src="10.1.2.3", dst="10.0.0.2") / TCP(sport=1234, dport=80),
    "ipv4_udp": eth() / IP(src="10.1.2.3", dst="10.0.0.2") / UDP(sport=53, dport=5353),
    "ipv4_icmp": eth() / IP() / ICMP(type=8, id=9),
    "ipv4_options": eth() / IP(options=[b"\x01" * 40]) / TCP(dport=443),
    "ipv4_gre": eth() / IP(proto=47) / Raw(b"\x00\x00\x08\x00"),
    "ipv6_tcp": eth() / IPv6(src="fd00::1", dst="2001:db8::2") / TCP(sport=5, dport=6),
    "ipv6_udp": eth() / IPv6() / UDP(sport=7, dport=8),
    "ipv6_icmpv6": eth() / IPv6() / ICMPv6EchoRequest(id=3),
    "ipv6_other": eth() / IPv6(nh=47) / Raw(bytes(8)),
    "arp": eth() / ARP(),
    "dot1q": eth(VF0, (0x8100, 100)) / IP() / UDP(dport=9),
    "dot1ad": eth(VF0, (0x88A8, 100)) / IPv6() / TCP(dport=22),
    "qinq": eth(VF0, (0x88A8, 100), (0x8100, 7)) / IP() / TCP(sport=1, dport=2),
    "double_c": eth(VF0, (0x8100, 100), (0x8100, 4095)) / IP(options=[b"\x01" * 4]) / UDP(),
    "jumbo": eth() / IP() / UDP() / Raw(bytes(8900)),
    "min_60": eth() / IP() / UDP(),
}


@pytest.mark.parametrize("name", sorted(PARSE_CASES))
def test_parse_matches_scapy(name: str) -> None:
    data = frame(PARSE_CASES[name])
    p = parse(data)
    assert p.malformed is None
    assert p.length == len(data)
    assert view(p) == scapy_view(data)


def test_parse_tags_stop_after_two() -> None:
    # A third TPID is the ethertype: not IP, no L3 fields.
    pkt = eth(VF0, (0x88A8, 1), (0x8100, 2), (0x8100, 3)) / IP() / TCP()
    p = parse(frame(pkt))
    assert (p.outer_vid, p.inner_vid, p.ethertype, p.ip_version) == (1, 2, 0x8100, None)
    # Only 0x8100 may follow the first tag: 0x88A8 after a tag is the ethertype.
    p = parse(frame(eth(VF0, (0x8100, 5), (0x88A8, 6)) / IP()))
    assert (p.outer_vid, p.inner_vid, p.ethertype) == (5, 5, 0x88A8)


def test_parse_fragments() -> None:
    datagram = IP(src="1.2.3.4", dst="10.0.0.2") / TCP(sport=1000, dport=80) / Raw(bytes(300))
    first, *rest = fragment(datagram, fragsize=96)
    p = parse(frame(eth() / first))
    assert (p.fragment, p.first_frag, p.sport, p.dport) == (True, True, 1000, 80)
    for piece in rest:
        data = frame(eth() / piece)
        p = parse(data)
        assert (p.fragment, p.first_frag, p.sport, p.dport, p.malformed) == (
            True,
            False,
            None,
            None,
            None,
        )
        assert view(p) == scapy_view(data)


def test_parse_udp_first_fragment_keeps_its_ports() -> None:
    # The UDP length covers the whole datagram, so a first fragment is held only to UDP
    # length >= 8; a datagram in one piece is held to the bytes present (docs/nic.md).
    first = fragment(IP() / UDP(dport=53) / Raw(bytes(400)), fragsize=96)[0]
    p = parse(frame(eth() / first))
    assert p.malformed is None and p.fragment and p.first_frag and p.dport == 53
    whole = bytearray(frame(eth() / IP() / UDP(dport=53) / Raw(bytes(40))))
    whole[14 + 20 + 4 : 14 + 20 + 6] = (49).to_bytes(2, "big")  # one more than present
    assert parse(bytes(whole)).malformed == "udp_length"


def test_parse_padding_allowed() -> None:
    # IPv4 total length shorter than the frame: the rest is Ethernet padding.
    p = parse(frame(eth() / IP() / UDP(sport=1, dport=2)))
    assert p.malformed is None and p.payload_length == 0 and p.length == 60


def _mutate(pkt: Packet, at: int, value: bytes) -> bytes:
    b = bytearray(frame(pkt))
    b[at : at + len(value)] = value
    return bytes(b)


def _u16(v: int) -> bytes:
    return struct.pack(">H", v)


MALFORMED_CASES = {
    "runt": [bytes(59), bytes(frame(eth() / IP() / UDP()))[:40], b""],
    "giant": [frame(eth() / IP() / UDP() / Raw(bytes(9217 - 42)))],
    "ip_truncated": [frame(eth(VF0, (0x88A8, 1), (0x8100, 2)) / IPv6())[:60]],
    "ip_version": [
        _mutate(eth() / IP() / UDP(), 14, b"\x55"),
        _mutate(eth() / IPv6() / UDP(), 14, b"\x40"),
    ],
    "ip_ihl": [
        _mutate(eth() / IP() / UDP(), 14, b"\x44"),
        _mutate(eth() / IP() / UDP(), 14, b"\x4f"),  # 60 bytes of header in a 46-byte L3
    ],
    "ip_length": [
        _mutate(eth() / IP() / UDP(), 16, _u16(19)),
        _mutate(eth() / IP() / UDP(), 16, _u16(47)),
        _mutate(eth() / IPv6() / UDP(), 18, _u16(9)),
    ],
    "l4_truncated": [
        _mutate(eth() / IP() / TCP(), 16, _u16(39)),
        _mutate(eth() / IP() / UDP(), 16, _u16(27)),
        _mutate(eth() / IP() / ICMP(), 16, _u16(23)),
        frame(eth() / IPv6(nh=58, plen=3) / Raw(bytes(3))),
    ],
    "tcp_offset": [
        _mutate(eth() / IP() / TCP(), 14 + 20 + 12, b"\x40"),
        _mutate(eth() / IP() / TCP(), 14 + 20 + 12, b"\x60"),  # 24 bytes in a 20-byte region
    ],
    "udp_length": [
        _mutate(eth() / IP() / UDP(), 14 + 20 + 4, _u16(7)),
        _mutate(eth() / IPv6() / UDP(), 14 + 40 + 4, _u16(9)),
    ],
}


def test_malformed_cases_cover_every_reason() -> None:
    assert set(MALFORMED_CASES) == set(MALFORMED_REASONS)


@pytest.mark.parametrize("reason", sorted(MALFORMED_CASES))
def test_parse_malformed(reason: str) -> None:
    for data in MALFORMED_CASES[reason]:
        assert parse(data).malformed == reason, data.hex()


def test_parse_length_bounds() -> None:
    assert parse(bytes(60)).malformed is None  # ethertype 0: not IP, nothing to check
    assert parse(bytes(9216)).malformed is None
    assert parse(bytes(9217)).malformed == "giant"


def test_parse_generated_traffic_matches_scapy_and_intent() -> None:
    rules = random_rules(random.Random(11))
    t = generate_traffic(rules, 1500, seed=12)
    assert len(t.records) == 1500
    assert all(a.ts_ns < b.ts_ns for a, b in zip(t.records, t.records[1:], strict=False))
    reasons = set()
    for (_, data), kind in zip(t.records, t.kinds, strict=True):
        p = parse(data)
        if kind.startswith("malformed:"):
            assert p.malformed == kind.split(":")[1]
            reasons.add(p.malformed)
        else:
            assert p.malformed is None, (kind, data.hex())
            assert view(p) == scapy_view(data)
    assert reasons == set(MALFORMED_REASONS)
    sizes = [len(d) for _, d in t.records]
    assert {60, 590, 1514} <= set(sizes) and max(sizes) > 1514
    kinds = set(t.kinds)
    assert {"vf", "unknown", "broadcast", "multicast", "fragment", "reply"} <= kinds


@pytest.mark.parametrize(("seed", "sizes"), [(7, "imix"), (8, "short")])
def test_generated_traffic_is_what_scapy_builds(seed: int, sizes: str) -> None:
    """The generator's own packet builder (models/nic/craft.py) gives, byte for byte, the
    frames scapy builds from the same seed: every kind, lengths, checksums, fragments."""
    rules = random_rules(random.Random(seed))
    kw = {"sizes": SHORT, "jumbo": 0.003} if sizes == "short" else {}
    fast = generate_traffic(rules, 800, seed, **kw)
    ref = generate_traffic(rules, 800, seed, layers=scapy_layers(), **kw)
    assert fast.kinds == ref.kinds
    for i, (a, b) in enumerate(zip(fast.records, ref.records, strict=True)):
        assert a == b, f"frame {i} ({fast.kinds[i]}): {a.data.hex()} != scapy {b.data.hex()}"
    assert fast.egress == ref.egress
    assert {k.split(":")[0] for k in fast.kinds} >= {"vf", "fragment", "reply", "malformed"}


def test_short_sizes_keep_the_mix_in_fewer_beats() -> None:
    rules = random_rules(random.Random(5))
    t = generate_traffic(rules, 4000, 5, sizes=SHORT, jumbo=0.003)
    sizes = [len(d) for _, d in t.records]
    assert {60, 590, 1514} <= set(sizes) and max(sizes) > 1514
    assert sum(-(-s // 64) for s in sizes) < 4 * len(sizes)  # beats at 512 bits
    assert {k.split(":")[0] for k in t.kinds} >= {"vf", "fragment", "reply", "malformed"}


# ---- filter --------------------------------------------------------------------------------------


def make_rules(*vfs: Vf, vmm: VmmConfig | None = None) -> Rules:
    return Rules(tuple(vfs), 4, 16, vmm or VmmConfig())


def mac(text: str) -> int:
    return int(text.replace(":", ""), 16)


def test_steering() -> None:
    rules = make_rules(
        Vf(0, mac(VF0)),
        Vf(1, mac(VF1), vlan=100),
        Vf(2, mac(VF1), vlan=200),
    )
    cases = [
        (eth(VF0), 0),
        (eth(VF0, (0x8100, 100)), None),  # VF 0 has no VLAN: untagged frames only
        (eth(VF1), None),
        (eth(VF1, (0x8100, 100)), 1),
        (eth(VF1, (0x88A8, 100), (0x8100, 200)), 1),  # the outer VID steers
        (eth(VF1, (0x8100, 200)), 2),
        (eth(VF1, (0x8100, 300)), None),
        (eth("ff:ff:ff:ff:ff:ff"), None),
        (eth("01:00:5e:00:00:01"), None),
        (eth("03:00:00:00:00:10"), None),  # VF0's MAC with the group bit
        (eth("02:00:00:00:00:99"), None),
    ]
    for pkt, expect in cases:
        v = judge(rules, parse(frame(pkt / IP() / UDP())))
        if expect is None:
            assert v == Verdict("unknown", None, None, "vmm"), pkt.summary()
        else:
            assert v == Verdict("pass", expect, None, f"vf{expect}"), pkt.summary()


def test_malformed_never_reaches_a_vf() -> None:
    rules = make_rules(Vf(0, mac(VF0)))
    for reason, frames in MALFORMED_CASES.items():
        for data in frames:
            data = bytes.fromhex(VF0.replace(":", "")) + data[6:] if len(data) >= 6 else data
            assert judge(rules, parse(data)) == Verdict("malformed", None, None, "vmm"), reason


def test_first_match_wins_then_default() -> None:
    vf = Vf(
        0,
        mac(VF0),
        default="block",
        rules=(
            Rule("pass", proto=6, dst_port=PortRange(80, 80)),
            Rule("block", proto=6),
            Rule("pass", proto=6),  # shadowed by rule 1
            Rule("pass", src_ip=IpMatch(4, 0x0A000000, 8)),
        ),
    )
    rules = make_rules(vf)
    cases = [
        (IP(src="1.1.1.1") / TCP(dport=80), ("pass", 0)),
        (IP(src="10.1.1.1") / TCP(dport=81), ("block", 1)),
        (IP(src="10.1.1.1") / UDP(dport=80), ("pass", 3)),
        (IP(src="11.1.1.1") / UDP(dport=80), ("block", None)),
        (IPv6() / UDP(), ("block", None)),  # an IPv4 prefix never matches IPv6
    ]
    for l3, (verdict, rule) in cases:
        v = judge(rules, parse(frame(eth() / l3)))
        assert (v.verdict, v.rule) == (verdict, rule), l3.summary()


def test_rule_fields() -> None:
    def decides(rule: Rule, pkt: Packet) -> bool:
        vf = Vf(0, mac(VF0), vlan=100, default="pass", rules=(rule,))
        return judge(make_rules(vf), parse(frame(pkt))).rule == 0

    tagged = eth(VF0, (0x8100, 100))
    qinq = eth(VF0, (0x88A8, 100), (0x8100, 7))
    assert decides(Rule("block", vlan=100), tagged / IP())
    assert decides(Rule("block", vlan=7), qinq / IP())  # the inner VID
    assert not decides(Rule("block", vlan=100), qinq / IP())
    src = MacMatch(0x020000000000, 0xFFFFFF000000)
    assert decides(Rule("block", src_mac=src), tagged / IP())
    other = eth(VF0, (0x8100, 100), src="04:00:00:00:00:aa")
    assert not decides(Rule("block", src_mac=src), other / IP())
    assert decides(Rule("block", ethertype=0x86DD), tagged / IPv6())
    assert not decides(Rule("block", ethertype=0x0800), tagged / IPv6())
    v6 = IpMatch(6, 0xFD00 << 112, 16)
    assert decides(Rule("block", dst_ip=v6), tagged / IPv6(dst="fd00::5"))
    assert not decides(Rule("block", dst_ip=v6), tagged / IPv6(dst="fd01::5"))
    assert not decides(Rule("block", dst_ip=v6), tagged / ARP())
    assert decides(Rule("block", proto=58), tagged / IPv6() / ICMPv6EchoRequest())
    assert not decides(Rule("block", src_port=PortRange(0, 65535)), tagged / IP() / ICMP())
    assert decides(Rule("block", src_port=PortRange(1000, 2000)), tagged / IP() / UDP(sport=1500))
    assert not decides(
        Rule("block", src_port=PortRange(1000, 2000)), tagged / IP() / UDP(sport=999)
    )
    # Untagged frames never match a rule with a VLAN (the VF here takes untagged frames).
    vf = Vf(0, mac(VF0), rules=(Rule("block", vlan=0),))
    assert judge(make_rules(vf), parse(frame(eth() / IP()))).rule is None


def test_port_rules_skip_non_first_fragments() -> None:
    vf = Vf(0, mac(VF0), rules=(Rule("block", dst_port=PortRange(80, 80)),))
    rules = make_rules(vf)
    datagram = IP(dst="10.0.0.2") / TCP(dport=80) / Raw(bytes(400))
    pieces = fragment(datagram, fragsize=128)
    assert len(pieces) > 2
    verdicts = [judge(rules, parse(frame(eth() / p))) for p in pieces]
    assert verdicts[0] == Verdict("block", 0, 0, "drop")
    assert all(v == Verdict("pass", 0, None, "vf0") for v in verdicts[1:])


@pytest.mark.parametrize("bounce", [False, True])
def test_bounce(bounce: bool) -> None:
    rules = make_rules(Vf(3, mac(VF0), default="block", bounce=bounce))
    v = judge(rules, parse(frame(eth() / IP() / UDP())))
    assert v == (Verdict("bounce", 3, None, "vmm") if bounce else Verdict("block", 3, None, "drop"))


def test_counters() -> None:
    vf0 = Vf(0, mac(VF0), default="pass", bounce=True, rules=(Rule("block", proto=17),))
    vf1 = Vf(1, mac(VF1), default="block", rules=(Rule("pass", proto=6),))
    rules = make_rules(vf0, vf1)
    c = Counters.for_rules(rules)
    frames = [
        eth(VF0) / IP() / UDP(),  # vf0 rule 0 bounce
        eth(VF0) / IP() / TCP(),  # vf0 default pass
        eth(VF1) / IP() / TCP(),  # vf1 rule 0 pass
        eth(VF1) / IP() / UDP(),  # vf1 default block, dropped
        eth("ff:ff:ff:ff:ff:ff") / IP(),
    ]
    for pkt in frames:
        judge(rules, parse(frame(pkt)), c)
    judge(rules, parse(bytes(10)), c)
    assert c.rule_hits == {0: [1], 1: [1], 2: [], 3: []}
    assert c.passed == {0: 1, 1: 1, 2: 0, 3: 0}
    assert c.blocked == {0: 1, 1: 1, 2: 0, 3: 0}
    assert c.bounced == {0: 1, 1: 0, 2: 0, 3: 0}
    assert c.dropped == {0: 0, 1: 1, 2: 0, 3: 0}
    assert (c.unknown, c.malformed) == (1, 1)
    assert json.loads(json.dumps(c.as_dict()))["drop"] == {"0": 0, "1": 1, "2": 0, "3": 0}


# ---- rules files ---------------------------------------------------------------------------------

GOOD_RULES = f"""
[[vf]]
id = 0
mac = "{VF0}"
vlan = 100
default = "pass"
bounce = true

[[vf.rules]]
action = "block"
src_mac = "02:00:00:00:00:00/ff:ff:ff:00:00:00"
ethertype = 0x0800
src_ip = "10.0.0.0/8"
dst_ip = "192.168.1.10"
proto = "tcp"
src_port = 1234
dst_port = "80"

[[vf.rules]]
action = "pass"
dst_ip = "fd00::/16"
dst_port = "1024-65535"
vlan = 7
proto = 47

[[vf]]
id = 1
mac = "{VF1}"

[vmm]
conn_timeout_s = 30
rate = 100
burst = 5
signatures = ["hex:deadbeef", "text:/etc/passwd"]
"""


def test_load_rules(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text(GOOD_RULES)
    r = load_rules(path)
    assert [v.id for v in r.vfs] == [0, 1]
    vf0 = r.vfs[0]
    assert (vf0.vlan, vf0.default, vf0.bounce) == (100, "pass", True)
    r0 = vf0.rules[0]
    assert r0.src_ip == IpMatch(4, 0x0A000000, 8)
    assert r0.dst_ip == IpMatch(4, 0xC0A8010A, 32)
    assert (r0.proto, r0.src_port, r0.dst_port) == (6, PortRange(1234, 1234), PortRange(80, 80))
    assert vf0.rules[1].dst_port == PortRange(1024, 65535)
    assert r.vfs[1] == Vf(1, mac(VF1))
    assert r.vmm.signatures == (b"\xde\xad\xbe\xef", b"/etc/passwd")
    assert (r.vmm.conn_timeout_s, r.vmm.rate, r.vmm.burst) == (30.0, 100.0, 5)
    again = tmp_path / "again.toml"
    again.write_text(rules_to_toml(r))
    assert load_rules(again) == r


def test_rules_round_trip_random(tmp_path: Path) -> None:
    for seed in range(30):
        rules = random_rules(random.Random(seed))
        path = tmp_path / f"{seed}.toml"
        path.write_text(rules_to_toml(rules))
        assert load_rules(path) == rules, seed


VF_HEAD = f'[[vf]]\nid = 0\nmac = "{VF0}"\n'
RULE_ERRORS = [
    ("[[vf]\n", None, "malformed TOML"),
    ('colour = "red"\n', "colour", "unknown key"),
    (VF_HEAD + "speed = 1\n", "vf[0].speed", "unknown key"),
    ('[[vf]]\nmac = "02:00:00:00:00:10"\n', "vf[0].id", "missing"),
    (VF_HEAD.replace("id = 0", "id = 4"), "vf[0].id", "out of range 0..3"),
    (VF_HEAD.replace("id = 0", 'id = "0"'), "vf[0].id", "must be an integer"),
    (VF_HEAD + VF_HEAD.replace(VF0, VF1), "vf[1].id", "already defined by vf[0]"),
    (VF_HEAD + VF_HEAD.replace("id = 0", "id = 1"), "vf[1].mac", "already used by vf[0]"),
    (VF_HEAD.replace(VF0, "01:00:5e:00:00:01"), "vf[0].mac", "group"),
    (VF_HEAD.replace(VF0, "ff:ff:ff:ff:ff:ff"), "vf[0].mac", "group"),
    (VF_HEAD.replace(VF0, "02:00:00:00:10"), "vf[0].mac", "not a MAC"),
    (VF_HEAD.replace(VF0, VF0 + "/ff:ff:ff:ff:ff:ff"), "vf[0].mac", "not a MAC"),
    (VF_HEAD + "vlan = 4096\n", "vf[0].vlan", "out of range 0..4095"),
    (VF_HEAD + 'default = "drop"\n', "vf[0].default", "not one of pass | block"),
    (VF_HEAD + 'bounce = "yes"\n', "vf[0].bounce", "true or false"),
    (VF_HEAD + "rules = 3\n", "vf[0].rules", "array of tables"),
    (VF_HEAD + "[[vf.rules]]\nproto = 6\n", "vf[0].rules[0].action", "missing"),
    (VF_HEAD + '[[vf.rules]]\naction = "pass"\nfoo = 1\n', "vf[0].rules[0].foo", "unknown key"),
    (VF_HEAD + '[[vf.rules]]\naction = "pass"\nvlan = -1\n', "vf[0].rules[0].vlan", "out of"),
    (VF_HEAD + '[[vf.rules]]\naction = "pass"\nethertype = 0x10000\n', "ethertype", "out of"),
    (VF_HEAD + '[[vf.rules]]\naction = "pass"\ndst_port = 65536\n', "dst_port", "0..65535"),
    (VF_HEAD + '[[vf.rules]]\naction = "pass"\ndst_port = "90-80"\n', "dst_port", "lo > hi"),
    (VF_HEAD + '[[vf.rules]]\naction = "pass"\nsrc_port = "http"\n', "src_port", "not a port"),
    (VF_HEAD + '[[vf.rules]]\naction = "pass"\nsrc_port = 1.5\n', "src_port", "not a float"),
    (VF_HEAD + '[[vf.rules]]\naction = "pass"\nproto = "sctp"\n', "proto", "not one of tcp"),
    (VF_HEAD + '[[vf.rules]]\naction = "pass"\nproto = 256\n', "proto", "0..255"),
    (VF_HEAD + '[[vf.rules]]\naction = "pass"\nsrc_ip = "10.0.0.0/33"\n', "src_ip", "0..32"),
    (VF_HEAD + '[[vf.rules]]\naction = "pass"\nsrc_ip = "fd00::/129"\n', "src_ip", "0..128"),
    (VF_HEAD + '[[vf.rules]]\naction = "pass"\nsrc_ip = "10.0.0"\n', "src_ip", "not an IPv4"),
    (
        VF_HEAD + '[[vf.rules]]\naction = "pass"\nsrc_ip = "10.0.0.1"\ndst_ip = "fd00::1"\n',
        "vf[0].rules[0].dst_ip",
        "IPv6 but src_ip is IPv4",
    ),
    (VF_HEAD + '[[vf.rules]]\naction = "pass"\nsrc_mac = "zz"\n', "src_mac", "not a MAC"),
    (VF_HEAD + '[[vf.rules]]\naction = "pass"\n' * 17, "vf[0].rules[16]", "holds 16"),
    ("[vmm]\nrate = 0\n", "vmm.rate", "above 0"),
    ("[vmm]\nburst = 0\n", "vmm.burst", "out of range"),
    ("[vmm]\nwhatever = 0\n", "vmm.whatever", "unknown key"),
    ('[vmm]\nsignatures = ["hex:xyz"]\n', "vmm.signatures[0]", "hex:"),
    ('[vmm]\nsignatures = ["deadbeef"]\n', "vmm.signatures[0]", "text:"),
    ("vf = 1\n", "vf", "array of tables"),
]


@pytest.mark.parametrize(("text", "field", "problem"), RULE_ERRORS)
def test_rules_errors(tmp_path: Path, text: str, field: str | None, problem: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_rules(path)
    msg = str(info.value)
    assert len(msg.splitlines()) == 1
    assert msg.startswith(str(path))
    if field is not None:
        assert info.value.field is not None and info.value.field.endswith(field), msg
    assert problem in msg


def test_rules_max_rules_parameter(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text(VF_HEAD + '[[vf.rules]]\naction = "pass"\n' * 5)
    assert len(load_rules(path, max_rules=5).vfs[0].rules) == 5
    with pytest.raises(UserError, match=r"vf\[0\]\.rules\[4\]"):
        load_rules(path, max_rules=4)


# ---- pcap ----------------------------------------------------------------------------------------


def test_pcap_round_trip(tmp_path: Path) -> None:
    recs = [Record(1_700_000_000_123_456_000, b"\x01" * 60), Record(1_700_000_001_000_000_000, b"")]
    write_pcap(tmp_path / "us.pcap", recs)
    blob = (tmp_path / "us.pcap").read_bytes()
    assert blob[:4] == bytes.fromhex("d4c3b2a1")
    assert read_pcap(tmp_path / "us.pcap") == recs
    ns = [Record(5_000_000_007, b"\x02" * 70)]
    write_pcap(tmp_path / "ns.pcap", ns)
    assert (tmp_path / "ns.pcap").read_bytes()[:4] == bytes.fromhex("4d3cb2a1")
    assert read_pcap(tmp_path / "ns.pcap") == ns
    with pytest.raises(ValueError):
        pcap_bytes(ns, nanos=False)


@pytest.mark.parametrize("magic", [0xA1B2C3D4, 0xA1B23C4D])
def test_pcap_big_endian(magic: int) -> None:
    scale = 1 if magic == 0xA1B23C4D else 1000
    blob = struct.pack(">IHHiIII", magic, 2, 4, 0, 0, 65535, 1)
    blob += struct.pack(">IIII", 3, 250, 4, 4) + b"abcd"
    assert parse_pcap(blob) == [Record(3_000_000_000 + 250 * scale, b"abcd")]


def test_pcap_matches_scapy(tmp_path: Path) -> None:
    from scapy.utils import rdpcap

    recs = generate_traffic(random_rules(random.Random(1)), 50, seed=2).records
    write_pcap(tmp_path / "t.pcap", recs)
    theirs = rdpcap(str(tmp_path / "t.pcap"))
    assert [bytes(p) for p in theirs] == [d for _, d in recs]
    assert [int(p.time * 1_000_000) * 1000 for p in theirs] == [t for t, _ in recs]


_HDR = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
PCAP_ERRORS = [
    (b"", "header", "truncated file header"),
    (_HDR[:20], "header", "truncated file header"),
    (b"\x0a\x0d\x0d\x0a" + _HDR[4:], "header", "bad magic"),
    (_HDR[:20] + struct.pack("<I", 101), "header", "link type 101 is not Ethernet"),
    (
        _HDR + struct.pack("<IIII", 0, 0, 4, 4) + b"abcd" + b"\x00" * 10,
        "record 1",
        "truncated record header",
    ),
    (
        _HDR + struct.pack("<IIII", 0, 0, 60, 60) + bytes(59),
        "record 0",
        "truncated record (59 of 60",
    ),
    (
        _HDR + struct.pack("<IIII", 0, 0, 60, 1514) + bytes(60),
        "record 0",
        "captured only 60 of 1514",
    ),
    (_HDR + struct.pack("<IIII", 0, 0, 300000, 300000), "record 0", "exceeds"),
    (_HDR + struct.pack("<IIII", 0, 1_000_000, 0, 0), "record 0", "fraction"),
]


@pytest.mark.parametrize(("blob", "field", "problem"), PCAP_ERRORS)
def test_pcap_errors(tmp_path: Path, blob: bytes, field: str, problem: str) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(blob)
    with pytest.raises(UserError) as info:
        read_pcap(path)
    assert info.value.field == field
    assert problem in info.value.problem
    assert len(str(info.value).splitlines()) == 1 and str(info.value).startswith(str(path))


# ---- vmassist nic replay -------------------------------------------------------------------------


def _replay(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = cli.main(["nic", "replay", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = random_rules(random.Random(5))
    (tmp_path / "r.toml").write_text(rules_to_toml(rules))
    traffic = generate_traffic(rules, 400, seed=6)
    write_pcap(tmp_path / "in.pcap", traffic.records)
    out = tmp_path / "out"
    status, stdout, err = _replay(
        capsys, "--rules", str(tmp_path / "r.toml"), "--pcap", str(tmp_path / "in.pcap"),
        "--sim", "model", "--out", str(out),
    )  # fmt: skip
    assert (status, err) == (0, "")
    assert stdout.strip() == str(out)
    names = {p.name for p in out.iterdir()}
    assert names == {f"vf{n}.pcap" for n in range(4)} | {
        "vmm.pcap", "dropped.pcap", "verdicts.jsonl", "counters.json",
    }  # fmt: skip
    lines = (out / "verdicts.jsonl").read_text().splitlines()
    objs = [json.loads(line) for line in lines]
    assert len(objs) == 400
    assert all(list(o) == ["index", "verdict", "vf", "rule", "queue"] for o in objs)
    verdicts = run_model(rules, traffic.records)
    assert objs == [v.as_dict(i) for i, v in enumerate(verdicts)]
    queues = queue_records(traffic.records, verdicts)
    for n in range(4):
        assert read_pcap(out / f"vf{n}.pcap") == queues.get(f"vf{n}", [])
    assert read_pcap(out / "vmm.pcap") == queues["vmm"]
    assert read_pcap(out / "dropped.pcap") == queues.get("drop", [])
    assert {o["verdict"] for o in objs} >= {"pass", "unknown", "malformed"}


def test_cli_replay_help() -> None:
    proc = subprocess.run(
        [shutil.which("vmassist") or "vmassist", "nic", "replay", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0
    assert "vmassist nic replay --rules rules.toml --pcap in.pcap --sim model" in proc.stdout


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("bad_rules", "r.toml: vf[0].rules[0].dst_port: port 70000 is out of range"),
        ("truncated_pcap", "in.pcap: record 1: truncated record"),
        ("missing_pcap", "in.pcap: cannot read"),
        ("bad_sim", "invalid choice"),
        ("waves_model", "--waves: needs a simulator"),
    ],
)
def test_cli_replay_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, needle: str
) -> None:
    rules = tmp_path / "r.toml"
    rules.write_text(VF_HEAD)
    pcap = tmp_path / "in.pcap"
    write_pcap(pcap, [Record(1000, frame(eth() / IP()))] * 2)
    sim = "xsim" if case == "bad_sim" else "model"
    extra = ["--waves"] if case == "waves_model" else []
    if case == "bad_rules":
        rules.write_text(VF_HEAD + '[[vf.rules]]\naction = "pass"\ndst_port = 70000\n')
    elif case == "truncated_pcap":
        pcap.write_bytes(pcap.read_bytes()[:-5])
    elif case == "missing_pcap":
        pcap.unlink()
    out = tmp_path / "out"
    status, stdout, err = _replay(
        capsys, "--rules", str(rules), "--pcap", str(pcap), "--sim", sim, "--out", str(out), *extra
    )
    assert status == 2
    assert stdout == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("vmassist: "), err
    assert needle in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (rules, pcap) if p.exists()
    )


# ---- VMM software filter -------------------------------------------------------------------------

VM = vm_ipv4(0)
PEER = "198.51.100.7"


def bounced(pkt: Packet) -> bytes:
    return frame(eth(VF0) / pkt)


BOUNCE = Verdict("bounce", 0, None, "vmm")
S = 1_000_000_000


def test_vmm_conntrack() -> None:
    f = VmmFilter(VmmConfig(conn_timeout_s=10))
    f.egress(frame(eth(REMOTE_MAC, src=VF0) / IP(src=VM, dst=PEER) / TCP(sport=40000, dport=80)), 0)
    reply = IP(src=PEER, dst=VM) / TCP(sport=80, dport=40000, flags="SA")
    assert f.decide(bounced(reply), 1 * S, BOUNCE).action == "reinject"
    assert f.decide(bounced(reply), 1 * S, BOUNCE).reason == "reply"
    # Unsolicited: another port, another peer, the request direction.
    for pkt in (
        IP(src=PEER, dst=VM) / TCP(sport=80, dport=40001),
        IP(src="198.51.100.8", dst=VM) / TCP(sport=80, dport=40000),
        IP(src=VM, dst=PEER) / TCP(sport=40000, dport=80),
        IP(src=PEER, dst=VM) / UDP(sport=80, dport=40000),
    ):
        d = f.decide(bounced(pkt), 2 * S, BOUNCE)
        assert (d.action, d.reason, d.vf) == ("drop", "policy", 0), pkt.summary()
    # A FIN from the peer is still a reply, and closes the connection.
    fin = IP(src=PEER, dst=VM) / TCP(sport=80, dport=40000, flags="FA")
    assert f.decide(bounced(fin), 3 * S, BOUNCE).action == "reinject"
    assert f.decide(bounced(reply), 3 * S, BOUNCE).reason == "policy"


def test_vmm_conntrack_rst_from_vm_and_timeout() -> None:
    f = VmmFilter(VmmConfig(conn_timeout_s=10))
    out = IP(src=VM, dst=PEER) / UDP(sport=5000, dport=53)
    f.egress(frame(eth(REMOTE_MAC, src=VF0) / out), 0)
    reply = IP(src=PEER, dst=VM) / UDP(sport=53, dport=5000)
    assert f.decide(bounced(reply), 9 * S, BOUNCE).action == "reinject"  # refreshes to 9 s
    assert f.decide(bounced(reply), 19 * S, BOUNCE).action == "reinject"
    assert f.decide(bounced(reply), 30 * S, BOUNCE).reason == "policy"  # idle 11 s
    assert f.decide(bounced(reply), 30 * S, BOUNCE).reason == "policy"
    tcp = IP(src=VM, dst=PEER) / TCP(sport=6000, dport=443)
    f.egress(frame(eth(REMOTE_MAC, src=VF0) / tcp), 40 * S)
    rst = IP(src=VM, dst=PEER) / TCP(sport=6000, dport=443, flags="R")
    f.egress(frame(eth(REMOTE_MAC, src=VF0) / rst), 41 * S)
    back = IP(src=PEER, dst=VM) / TCP(sport=443, dport=6000, flags="A")
    assert f.decide(bounced(back), 42 * S, BOUNCE).reason == "policy"


@pytest.mark.parametrize("v6", [False, True])
def test_vmm_conntrack_echo(v6: bool) -> None:
    f = VmmFilter()
    if v6:
        out = IPv6(src="fd00::2", dst="2001:db8::9") / ICMPv6EchoRequest(id=77)
        good = IPv6(src="2001:db8::9", dst="fd00::2") / ICMPv6EchoReply(id=77)
        bad = IPv6(src="2001:db8::9", dst="fd00::2") / ICMPv6EchoReply(id=78)
    else:
        out = IP(src=VM, dst=PEER) / ICMP(type=8, id=77)
        good = IP(src=PEER, dst=VM) / ICMP(type=0, id=77)
        bad = IP(src=PEER, dst=VM) / ICMP(type=8, id=77)  # a request, not a reply
    f.egress(frame(eth(REMOTE_MAC, src=VF0) / out), 0)
    assert f.decide(bounced(good), S, BOUNCE).action == "reinject"
    assert f.decide(bounced(bad), S, BOUNCE).action == "drop"


def test_vmm_rate_limit() -> None:
    f = VmmFilter(VmmConfig(rate=10, burst=2))
    pkt = bounced(IP(src=PEER, dst=VM) / UDP(sport=1, dport=2))
    other = bounced(IP(src="198.51.100.99", dst=VM) / UDP(sport=1, dport=2))
    reasons = [f.decide(pkt, 0, BOUNCE).reason for _ in range(3)]
    assert reasons == ["policy", "policy", "rate"]
    assert f.decide(other, 0, BOUNCE).reason == "policy"  # per source
    assert f.decide(pkt, S // 20, BOUNCE).reason == "rate"  # half a token back
    assert f.decide(pkt, S // 10, BOUNCE).reason == "policy"  # one token back
    assert f.decide(pkt, 100 * S, BOUNCE).reason == "policy"  # refilled to the burst only
    assert f.decide(pkt, 100 * S, BOUNCE).reason == "policy"
    assert f.decide(pkt, 100 * S, BOUNCE).reason == "rate"


def test_vmm_signature_first() -> None:
    f = VmmFilter(VmmConfig(signatures=(b"/etc/passwd", bytes.fromhex("deadbeef"))))
    f.egress(frame(eth(REMOTE_MAC, src=VF0) / IP(src=VM, dst=PEER) / TCP(sport=1, dport=80)), 0)
    clean = IP(src=PEER, dst=VM) / TCP(sport=80, dport=1) / Raw(b"GET /index.html")
    evil = IP(src=PEER, dst=VM) / TCP(sport=80, dport=1) / Raw(b"GET /etc/passwd")
    hexed = IP(src=PEER, dst=VM) / UDP(sport=80, dport=1) / Raw(b"\x00\xde\xad\xbe\xef")
    assert f.decide(bounced(clean), 1, BOUNCE).action == "reinject"
    assert f.decide(bounced(evil), 2, BOUNCE).reason == "signature"
    assert f.decide(bounced(hexed), 3, BOUNCE).reason == "signature"
    # Only the L4 payload is searched: the pattern in a MAC or an IP address does not count.
    f2 = VmmFilter(VmmConfig(signatures=(bytes([198, 51, 100, 7]),)))
    assert f2.decide(bounced(IP(src=PEER, dst=VM) / UDP()), 1, BOUNCE).reason == "policy"
    with pytest.raises(ValueError):
        f.decide(bounced(clean), 4, Verdict("pass", 0, None, "vf0"))


def test_vmm_on_generated_traffic() -> None:
    # Every VF blocks and bounces everything: the software filter sees all VF traffic and
    # re-injects exactly the expected replies.
    rules = random_rules(random.Random(3))
    rules = Rules(
        tuple(Vf(v.id, v.mac, v.vlan, "block", True) for v in rules.vfs), 4, 16, VmmConfig()
    )
    t = generate_traffic(rules, 1500, seed=4)
    verdicts = run_model(rules, t.records)
    decisions = run_vmm(rules, t.records, verdicts, t.egress)
    assert set(decisions) == {i for i, v in enumerate(verdicts) if v.verdict == "bounce"}
    reinjected = {i for i, d in decisions.items() if d.action == "reinject"}
    assert len(reinjected) > 20
    assert all(t.kinds[i] == "reply" for i in reinjected)
    replies = [i for i, k in enumerate(t.kinds) if k == "reply" and i in decisions]
    assert len(reinjected) >= 0.7 * len(replies)  # the rest come after a FIN
    assert all(decisions[i].vf == verdicts[i].vf for i in decisions)
    s = share(verdicts)
    assert s["frames"] == 1500
    assert s["software"] == len(decisions) and s["hardware"] == 1500 - len(decisions)
    assert s["hardware_pct"] + s["software_pct"] == pytest.approx(100.0)
    fps = bench_filter(
        VmmConfig(), [(*t.records[i], verdicts[i]) for i in decisions], min_seconds=0.05
    )
    assert fps > 1000


# ---- tcpdump oracle ------------------------------------------------------------------------------


@pytest.mark.skipif(
    not Path(TCPDUMP).exists() and not os.environ.get("CI"),
    reason="tcpdump is installed by make setup (under CI its absence fails)",
)
@pytest.mark.parametrize("seed", [21, 22, 23])
def test_tcpdump_oracle(tmp_path: Path, seed: int) -> None:
    """The frames libpcap's filter for a VF selects are the frames the model passes to it.

    Covered fields: steering (dst MAC, outer VID via ``vlan``, untagged/single/QinQ), src/dst
    MAC with masks, ethertype (>= 0x0600), rule VLAN (inner VID), IPv4/IPv6 prefixes, proto,
    TCP/UDP port ranges (libpcap skips non-first fragments as the model does), first-match
    order and the default. Malformed frames are left out: libpcap does not check lengths.
    """
    rules = random_rules(random.Random(seed))
    traffic = generate_traffic(rules, 1500, seed=seed, malformed=0.0)
    pcap = tmp_path / "in.pcap"
    write_pcap(pcap, traffic.records, nanos=False)
    verdicts = run_model(rules, traffic.records)
    parsed_ok = [parse(d).malformed is None for _, d in traffic.records]
    assert sum(parsed_ok) == len(parsed_ok)  # the generator made none malformed
    assert all(expressible(vf) for vf in rules.vfs)
    oracle = tcpdump_passes(TCPDUMP, rules, pcap, traffic.records)
    checked = 0
    for vf in rules.vfs:
        expect = {i for i, v in enumerate(verdicts) if v.verdict == "pass" and v.vf == vf.id}
        got = oracle[vf.id]
        assert got == expect, (vf.id, sorted(got ^ expect)[:10])
        checked += len(expect)
    assert checked > 100  # the comparison saw real traffic
