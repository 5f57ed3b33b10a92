"""The NIC header parser RTL against the golden model, in Amaranth's simulator.

Every expectation comes from ``models.nic.parse`` (``ref_parse``); the hardware's answer
(``rtl_parse``) must equal it field for field, for good frames of every header kind, every
malformed reason (and frames failing several checks at once), the length bounds, mutated
headers, and generated traffic streamed with random input gaps and output back-pressure.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

from amaranth.lib.data import Layout
from amaranth.sim import Simulator
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Packet, Raw

from hdl.nic import Parser
from models.nic.parse import (
    MALFORMED_REASONS,
    MAX_LEN,
    MIN_LEN,
    hdr_fields,
    header_record,
    parse,
)
from models.nic.rules import random_rules
from models.nic.traffic import generate_traffic
from vmassist.formats import nic as formats

VF0 = "02:00:00:00:00:10"
REMOTE = "02:00:00:00:00:aa"


# ---- frames --------------------------------------------------------------------------------------


def frame(pkt: Packet) -> bytes:
    """The frame's bytes, padded to the 60-byte minimum as a NIC would see it."""
    data = bytes(pkt)
    return data + bytes(max(0, 60 - len(data)))


def eth(*tags: tuple[int, int], dst: str = VF0, src: str = REMOTE) -> Packet:
    """Ether header with (TPID, VID) tags from outer to inner."""
    pkt: Packet = Ether(dst=dst, src=src)
    for tpid, vid in tags:
        pkt.lastlayer().type = tpid
        pkt = pkt / (Dot1AD(vlan=vid) if tpid == 0x88A8 else Dot1Q(vlan=vid))
    return pkt


def mutate(data: bytes | Packet, at: int, value: bytes) -> bytes:
    b = bytearray(frame(data) if isinstance(data, Packet) else data)
    b[at : at + len(value)] = value
    return bytes(b)


def u16(v: int) -> bytes:
    return struct.pack(">H", v)


TAGS = {0: (), 1: ((0x8100, 100),), 2: ((0x88A8, 100), (0x8100, 4095))}


def _good_frames() -> dict[str, bytes]:
    cases: dict[str, Packet | bytes] = {
        "ipv4_tcp": eth() / IP(src="10.1.2.3", dst="10.0.0.2") / TCP(sport=1234, dport=80),
        "ipv4_udp": eth() / IP(src="192.168.1.1", dst="10.0.0.2") / UDP(sport=53, dport=5353),
        "ipv4_icmp": eth() / IP() / ICMP(type=8, id=9),
        "ipv4_gre": eth() / IP(proto=47) / Raw(b"\x00\x00\x08\x00"),
        "ipv4_icmpv6_proto": eth() / IP(proto=58) / Raw(bytes(2)),  # no ICMP checks over IPv4
        "ipv4_options": eth() / IP(options=[b"\x01" * 40]) / TCP(dport=443),
        "ipv4_padding": eth() / IP() / UDP(sport=1, dport=2),
        "tcp_options": eth() / IP() / TCP(dataofs=15, sport=7, dport=8) / Raw(bytes(40)),
        "ipv6_tcp": eth() / IPv6(src="fd00::1", dst="2001:db8::2") / TCP(sport=5, dport=6),
        "ipv6_udp": eth() / IPv6(src="::1", dst="ff02::1:2") / UDP(sport=7, dport=8),
        "ipv6_icmpv6": eth() / IPv6() / ICMPv6EchoRequest(id=3),
        "ipv6_icmp_proto": eth() / IPv6(nh=1) / Raw(bytes(2)),  # no ICMP checks over IPv6
        "ipv6_other": eth() / IPv6(nh=47) / Raw(bytes(8)),
        "ipv6_ext_header": eth() / IPv6(nh=0) / Raw(bytes(8)),  # not followed
        "arp": eth() / ARP(),
        "lldp": Ether(dst="01:80:c2:00:00:0e", src=REMOTE, type=0x88CC) / Raw(bytes(46)),
        "ethertype_0": bytes(60),
        "broadcast": eth(dst="ff:ff:ff:ff:ff:ff") / ARP(),
        "dot1q": eth((0x8100, 100)) / IP() / UDP(dport=9),
        "dot1ad": eth((0x88A8, 101)) / IPv6() / TCP(dport=22),
        "qinq_88a8": eth((0x88A8, 100), (0x8100, 7)) / IP() / TCP(sport=1, dport=2),
        "qinq_8100": eth((0x8100, 100), (0x8100, 4095)) / IP(options=[b"\x01" * 4]) / UDP(),
        "qinq_same_vid": eth((0x88A8, 5), (0x8100, 5)) / IP() / UDP(),
        "third_tpid": eth((0x88A8, 1), (0x8100, 2), (0x8100, 3)) / IP() / TCP(),
        "88a8_after_tag": eth((0x8100, 5), (0x88A8, 6)) / IP() / UDP(),
        "tagged_arp": eth((0x8100, 9)) / ARP(),
        # 0x8100 where a second TPID would be, in untagged frames: still no tags.
        "ipv6_flow_8100": eth() / IPv6(fl=0x8100) / UDP(sport=3, dport=4),
        "lldp_8100": Ether(dst=VF0, src=REMOTE, type=0x88CC) / Raw(b"\x02\x07\x81\x00" * 12),
        "qinq_ipv6_deepest": eth((0x88A8, 1), (0x8100, 2))
        / IPv6()
        / TCP(dataofs=15)
        / Raw(bytes(40)),
        "jumbo": eth() / IP() / UDP() / Raw(bytes(8900)),
    }
    # Every L4 offset: each IHL behind each tag depth, TCP's data offset at the deepest place.
    for tags, stack in TAGS.items():
        for ihl in range(5, 16):
            opts = [b"\x01" * (4 * ihl - 20)] if ihl > 5 else []
            ip = IP(src="1.2.3.4", dst="5.6.7.8", options=opts)
            cases[f"tags{tags}_ihl{ihl}_tcp"] = eth(*stack) / ip / TCP(sport=ihl, dport=tags)
            cases[f"tags{tags}_ihl{ihl}_udp"] = eth(*stack) / ip / UDP(sport=tags, dport=ihl)
        cases[f"tags{tags}_ipv6_udp"] = eth(*stack) / IPv6() / UDP(sport=99, dport=tags)
    # Fragments: the first keeps its ports, the others have none; a UDP first fragment's
    # length covers the whole datagram.
    tcp_pieces = fragment(IP(src="1.2.3.4") / TCP(sport=1000, dport=80) / Raw(bytes(300)), 96)
    udp_pieces = fragment(IP() / UDP(sport=9, dport=53) / Raw(bytes(400)), 96)
    for i, piece in enumerate(tcp_pieces[:3]):
        cases[f"frag_tcp_{i}"] = eth() / piece
    for i, piece in enumerate(udp_pieces[:2]):
        cases[f"frag_udp_{i}"] = eth((0x8100, 3)) / piece
    cases["frag_df_only"] = eth() / IP(flags="DF") / UDP()
    return {k: frame(v) if isinstance(v, Packet) else v for k, v in cases.items()}


GOOD = _good_frames()

V4 = eth() / IP() / UDP()
V4_TCP = eth() / IP() / TCP()
V6_UDP = eth() / IPv6() / UDP()
QINQ = ((0x88A8, 1), (0x8100, 2))

MALFORMED: dict[str, list[bytes]] = {
    "runt": [b"", bytes(1), bytes(59), frame(V4)[:59], frame(eth(*QINQ) / IPv6())[:40]],
    "giant": [frame(V4 / Raw(bytes(9217 - 42))), bytes(9217), bytes(16383), bytes(16384)],
    "ip_truncated": [frame(eth(*QINQ) / IPv6())[:n] for n in (60, 61)],
    "ip_version": [
        mutate(V4, 14, b"\x55"),
        mutate(V4, 14, b"\x65"),
        mutate(V6_UDP, 14, b"\x40"),
        mutate(eth(*QINQ) / IPv6() / UDP(), 22, b"\x00"),
        mutate(V4, 14, b"\x04"),  # version 0 and IHL 4: the version is checked first
    ],
    "ip_ihl": [
        mutate(V4, 14, b"\x44"),
        mutate(V4, 14, b"\x40"),
        mutate(V4, 14, b"\x4f"),  # 60 header bytes in a 46-byte L3
        mutate(eth((0x8100, 1)) / IP() / UDP() / Raw(bytes(19)), 18, b"\x4f"),  # 61 > 60
        mutate(V4, 14, b"\x43") + bytes(100),  # IHL 3 with a bad total length too
    ],
    "ip_length": [
        mutate(V4, 16, u16(19)),
        mutate(V4, 16, u16(47)),
        mutate(V4, 16, u16(0)),
        mutate(V4, 16, u16(0xFFFF)),
        mutate(eth() / IP(options=[b"\x01" * 8]) / UDP(), 16, u16(27)),  # total < IHL*4 = 28
        mutate(eth(*QINQ) / IP() / UDP(), 24, u16(39)),  # one more than the 38 bytes there
        mutate(V6_UDP, 18, u16(9)),
        mutate(V6_UDP, 18, u16(0xFFFF)),
        mutate(eth(*QINQ) / IPv6() / UDP() / Raw(bytes(8)), 26, u16(17)),
    ],
    "l4_truncated": [
        mutate(V4_TCP, 16, u16(39)),
        mutate(V4, 16, u16(27)),
        mutate(V4, 16, u16(20)),
        mutate(eth() / IP() / ICMP(), 16, u16(23)),
        mutate(eth() / IP() / ICMP(), 16, u16(20)),
        frame(eth() / IPv6(nh=58, plen=3) / Raw(bytes(3))),
        frame(eth() / IPv6(nh=6, plen=19) / Raw(bytes(19))),
        frame(eth() / IPv6(nh=17, plen=7) / Raw(bytes(7))),
        mutate(mutate(V4_TCP, 16, u16(39)), 14 + 20 + 12, b"\x40"),  # before the data offset
        mutate(mutate(eth() / IP(options=[b"\x01" * 40]) / TCP(), 16, u16(79)), 14 + 72, b"\x00"),
    ],
    "tcp_offset": [
        mutate(V4_TCP, 14 + 20 + 12, b"\x40"),
        mutate(V4_TCP, 14 + 20 + 12, b"\x00"),
        mutate(V4_TCP, 14 + 20 + 12, b"\x60"),  # 24 bytes in a 20-byte region
        mutate(V4_TCP, 14 + 20 + 12, b"\xf0"),
        mutate(eth(*QINQ) / IPv6() / TCP() / Raw(bytes(3)), 22 + 40 + 12, b"\x60"),  # 24 > 23
        mutate(eth(*QINQ) / IP(options=[b"\x01" * 40]) / TCP(), 22 + 60 + 12, b"\x10"),
    ],
    "udp_length": [
        mutate(V4, 14 + 20 + 4, u16(7)),
        mutate(V4, 14 + 20 + 4, u16(0)),
        mutate(V4, 14 + 20 + 4, u16(9)),  # not a fragment: held to the 8 bytes present
        mutate(V6_UDP, 14 + 40 + 4, u16(9)),
        mutate(eth(*QINQ) / IP(options=[b"\x01" * 40]) / UDP(), 22 + 60 + 4, u16(0xFFFF)),
        mutate(frame(eth() / fragment(IP() / UDP() / Raw(bytes(400)), 96)[0]), 14 + 24, u16(7)),
    ],
}

# Limits met exactly (good) and missed by one (the model says which): IHL*4 and total length
# equal to the bytes present, L4 regions of exactly the minimum, UDP length equal to the region.
BOUNDARY = [
    mutate(mutate(eth(*QINQ) / IP() / UDP(), 24, u16(38)), 22 + 24, u16(18)),
    mutate(eth((0x8100, 1)) / IP() / UDP() / Raw(bytes(18)), 18, b"\x4f"),
    mutate(V4_TCP, 16, u16(40)),
    mutate(V4, 16, u16(28)),
    mutate(eth() / IP() / ICMP(), 16, u16(24)),
    frame(eth() / IPv6(nh=58, plen=4) / Raw(bytes(4))),
    mutate(eth() / IP() / UDP() / Raw(bytes(4)), 14 + 20 + 4, u16(12)),
    mutate(eth() / IP() / UDP() / Raw(bytes(4)), 14 + 20 + 4, u16(13)),
    mutate(eth() / IP() / TCP() / Raw(bytes(4)), 14 + 20 + 12, b"\x60"),
    mutate(eth() / IP() / TCP() / Raw(bytes(4)), 14 + 20 + 12, b"\x70"),
    frame(eth(*QINQ) / IPv6() / UDP())[:62],
    frame(eth(*QINQ) / IPv6() / UDP())[:61],
]

LENGTHS = [
    frame(V4),
    frame(eth(*QINQ) / IP() / TCP()),
    frame(V4 / Raw(bytes(9216 - 42))),
    frame(eth() / IPv6() / TCP() / Raw(bytes(9216 - 74))),
    bytes(9216),
    frame(V4 / Raw(bytes(9217 - 42))),
    frame(V4 / Raw(bytes(16383 - 42))),
    frame(V4 / Raw(bytes(16384 - 42))),
    frame(V4 / Raw(bytes(20000 - 42))),
    bytes(70000),
]


# ---- model and RTL -------------------------------------------------------------------------------


def ref_parse(data: bytes) -> dict[str, int]:
    return hdr_fields(parse(data))


@dataclass
class RtlRun:
    """What :func:`rtl_parse` saw: the outputs in order and the cycle of every transfer."""

    out: list[dict[str, int]] = field(default_factory=list)
    in_cycles: list[int] = field(default_factory=list)
    out_cycles: list[int] = field(default_factory=list)


async def stream_put(ctx, stream, payload) -> None:
    """Offer ``payload`` until it is taken, then drop ``valid``."""
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream):
    """Take the next payload, then drop ``ready``."""
    ctx.set(stream.ready, 1)
    (payload,) = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


def rtl_parse(frames: list[bytes], *, seed: int = 0, gap: float = 0.0, stall: float = 0.0):
    """Stream the frames' header records through the parser; ``gap`` and ``stall`` are the
    chances of an idle input cycle and of a cycle without ``o.ready`` before each transfer."""
    dut = Parser()
    run = RtlRun()
    records = [header_record(f) for f in frames]
    in_rng, out_rng = random.Random(seed), random.Random(seed + 1)
    names = [name for name, _ in Layout.cast(formats.ParsedHdr)]

    async def producer(ctx):
        for rec in records:
            while in_rng.random() < gap:
                await ctx.tick()
            await stream_put(ctx, dut.i, rec)

    async def consumer(ctx):
        while len(run.out) < len(records):
            while out_rng.random() < stall:
                await ctx.tick()
            p = await stream_get(ctx, dut.o)
            run.out.append({k: int(getattr(p, k)) for k in names})
        for _ in range(2 * Parser.LATENCY):  # and nothing more comes out
            await ctx.tick()
            assert not ctx.get(dut.o.valid)

    async def monitor(ctx):
        cycle = 0
        while True:
            _, _, iv, ir, ov, orr = await ctx.tick().sample(
                dut.i.valid, dut.i.ready, dut.o.valid, dut.o.ready
            )
            assert ir == (not ov or orr), f"cycle {cycle}: i.ready is not ~o.valid | o.ready"
            if iv and ir:
                run.in_cycles.append(cycle)
            if ov and orr:
                run.out_cycles.append(cycle)
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.add_testbench(monitor, background=True)
    sim.run()
    return run


def check(frames: list[bytes], labels: list[str], **kw) -> RtlRun:
    run = rtl_parse(frames, **kw)
    assert len(run.out) == len(frames)
    for label, data, got in zip(labels, frames, run.out, strict=True):
        want = ref_parse(data)
        got = {k: got[k] for k in want}
        assert got == want, f"{label}: {data[:96].hex()} (length {len(data)})"
    return run


# ---- tests ---------------------------------------------------------------------------------------


def test_formats_agree_with_model() -> None:
    # The RTL encodes the model's reasons by position: NONE, then check order.
    assert [m.name.lower() for m in formats.Malformed][1:] == list(MALFORMED_REASONS)
    assert formats.Malformed.NONE == 0
    assert (formats.MIN_LEN, formats.MAX_LEN) == (MIN_LEN, MAX_LEN)


def test_header_record_layout() -> None:
    data = bytes(range(100))
    rec = formats.HeaderRec.const(header_record(data))
    assert rec.length == 100
    assert all((rec.hdr >> 8 * i) & 0xFF == i for i in range(formats.HDR_BYTES))
    assert formats.HeaderRec.const(header_record(bytes([7]) * 3)).hdr == 0x070707
    assert header_record(bytes(20000))["length"] == (1 << formats.LEN_BITS) - 1


def test_every_header_kind() -> None:
    for name, data in GOOD.items():
        assert parse(data).malformed is None, name  # the case is what it claims to be
    check(list(GOOD.values()), list(GOOD))


def test_every_malformed_reason_first_failure_wins() -> None:
    frames, labels = [], []
    for reason, cases in MALFORMED.items():
        for i, data in enumerate(cases):
            assert parse(data).malformed == reason, (reason, i)
            frames.append(data)
            labels.append(f"{reason}[{i}]")
    assert set(MALFORMED) == set(MALFORMED_REASONS)
    reasons = {parse(b).malformed for b in BOUNDARY}
    assert None in reasons and len(reasons) > 2  # both sides of the limits
    frames += BOUNDARY
    labels += [f"boundary[{i}]" for i in range(len(BOUNDARY))]
    check(frames, labels)


def test_length_bounds_and_saturation() -> None:
    lengths = [len(f) for f in LENGTHS]
    assert {60, 9216, 9217, 16383, 16384} <= set(lengths) and max(lengths) > 16384
    check(LENGTHS, [f"length {n}" for n in lengths], gap=0.3, stall=0.3, seed=5)


def test_fixed_latency_back_to_back() -> None:
    frames = list(GOOD.values())[:40]
    run = check(frames, [f"#{i}" for i in range(len(frames))])
    assert run.in_cycles == list(range(run.in_cycles[0], run.in_cycles[0] + len(frames)))
    assert [o - i for i, o in zip(run.in_cycles, run.out_cycles, strict=True)] == [
        Parser.LATENCY
    ] * len(frames)


def test_mutated_headers() -> None:
    """Random bytes over the ethertype, IP and L4 headers: mostly malformed, in every order."""
    rng = random.Random(7)
    base = list(GOOD.values()) + [f for cases in MALFORMED.values() for f in cases]
    base = [b for b in base if 60 <= len(b) <= 2000]
    frames = []
    for _ in range(600):
        b = bytearray(rng.choice(base))
        for _ in range(rng.randrange(1, 4)):
            at = rng.choice((12, 16, 20, 14, 18, 22, 24, 26, 28, 30)) + rng.randrange(0, 64)
            if at < min(len(b), formats.HDR_BYTES):
                b[at] = rng.choice(
                    (0, 0xFF, 0x45, 0x60, 0x81, 0x88, 0x08, 0x86, rng.randrange(256))
                )
        frames.append(bytes(b))
    reasons = {parse(f).malformed for f in frames}
    assert len(reasons) >= 6
    check(frames, [f"mutant {i}" for i in range(len(frames))], seed=8, gap=0.1, stall=0.2)


def test_generated_traffic_with_gaps_and_back_pressure() -> None:
    seed = 2024
    traffic = generate_traffic(random_rules(random.Random(seed)), 3000, seed=seed)
    frames = [r.data for r in traffic.records]
    assert {parse(f).malformed for f in frames} >= set(MALFORMED_REASONS)
    run = check(frames, traffic.kinds, seed=seed, gap=0.3, stall=0.3)
    assert len(run.in_cycles) == len(run.out_cycles) == len(frames)
    assert all(i < o for i, o in zip(run.in_cycles, run.out_cycles, strict=True))
