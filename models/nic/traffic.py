"""Seeded random NIC traffic (only here: the model's parser is independent).

The mix: frames for the VFs (with their VLANs, single-tagged, QinQ), for unknown unicast,
broadcast and multicast MACs and for a VF's MAC on the wrong VLAN; IMIX sizes (64/594/1518 bytes
on the wire at 7:4:1) and some jumbo frames up to 9000 bytes; IPv4 (with and without options),
IPv6, TCP, UDP, ICMP, ICMPv6, GRE, ARP and LLDP; IPv4 fragments (all pieces of a datagram, first
and non-first); malformed frames (runts, giants, truncated headers, bad IHL, bad lengths, bad
versions, bad TCP offsets and UDP lengths); and VM egress flows (TCP, UDP, ICMP echo) whose
replies arrive later, so that the VMM's connection tracking approves some bounced frames.

Frames are built with :mod:`models.nic.craft`, which builds what scapy builds ~50x faster;
``layers=scapy_layers()`` builds them with scapy itself (the tests compare the two).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from types import ModuleType, SimpleNamespace
from typing import Any

from . import craft
from .parse import MIN_LEN
from .pcap import Record
from .rules import PORTS, V4_POOLS, V6_POOLS, Rules, Vf, format_mac

__all__ = [
    "Traffic",
    "generate_traffic",
    "scapy_layers",
    "vm_ipv4",
    "vm_ipv6",
    "IMIX",
    "SHORT",
    "MALFORMED_KINDS",
]

IMIX = ((60, 7), (590, 4), (1514, 1))
"""Frame lengths without FCS (64/594/1518 on the wire) and their weights."""
SHORT = ((60, 60), (590, 4), (1514, 1))
"""IMIX's lengths with the shortest weighted 60 instead of 7, for runs that want many frames in
few cycles: with ``jumbo=0.003``, ~3.3 beats a frame at 512 bits in all (IMIX: ~7.8)."""

#: A layer of either builder (a craft.Packet or a scapy Packet).
Packet = Any
MALFORMED_KINDS = (
    "runt",
    "giant",
    "ip_truncated",
    "l4_truncated",
    "ip_ihl",
    "ip_length",
    "ip_version",
    "tcp_offset",
    "udp_length",
)
_GATEWAY = 0x02000000FFFE
_SRC_MACS = (0x0200000000AA, 0x020000123456, 0x0A0B0C0D0E0F, 0x02000000FFFE)
_ARP_HWSRC = format_mac(_SRC_MACS[0])


def vm_ipv4(vf: int) -> str:
    """The IPv4 address of the VM behind VF ``vf`` (10.0.<vf>.2)."""
    return str(IPv4Address(0x0A000002 | vf << 8))


def vm_ipv6(vf: int) -> str:
    """The IPv6 address of the VM behind VF ``vf`` (fd00::<vf>:2)."""
    return str(IPv6Address(0xFD00 << 112 | vf << 16 | 2))


def scapy_layers() -> SimpleNamespace:
    """scapy's classes under the names :mod:`models.nic.craft` uses (``layers=`` of
    :func:`generate_traffic`): the reference the fast builder is checked against."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
    from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
    from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
    from scapy.packet import Raw

    return SimpleNamespace(
        ARP=ARP,
        Dot1AD=Dot1AD,
        Dot1Q=Dot1Q,
        Ether=Ether,
        ICMP=ICMP,
        ICMPv6EchoReply=ICMPv6EchoReply,
        ICMPv6EchoRequest=ICMPv6EchoRequest,
        IP=IP,
        IPv6=IPv6,
        Raw=Raw,
        TCP=TCP,
        UDP=UDP,
        fragment=fragment,
    )


@dataclass
class Traffic:
    """Generated traffic.

    Members
    -------
    records : list of Record
        The received frames, timestamps strictly increasing (whole microseconds).
    egress : list of Record
        Frames the VMs sent (feed them to :meth:`VmmFilter.egress` in timestamp order).
    kinds : list of str
        Per received frame, what the generator meant it to be: ``vf``, ``wrong_vlan``,
        ``unknown``, ``broadcast``, ``multicast``, ``fragment``, ``reply``, or
        ``malformed:<reason>`` (the reason the model is expected to give).
    """

    records: list[Record] = field(default_factory=list)
    egress: list[Record] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)


class _Gen:
    def __init__(
        self,
        rules: Rules,
        rng: random.Random,
        *,
        sizes: Sequence[tuple[int, int]],
        jumbo: float,
        layers: ModuleType | SimpleNamespace,
    ) -> None:
        self.rules, self.rng, self.layers = rules, rng, layers
        self.lengths = [s for s, _ in sizes]
        self.weights = [w for _, w in sizes]
        self.jumbo = jumbo
        self.ts = 1_000_000_000_000  # µs multiples keep a µs pcap exact

    def tick(self) -> int:
        self.ts += self.rng.randrange(1, 40) * 1000
        return self.ts

    # -- addresses ---------------------------------------------------------------------------------

    def remote_v4(self) -> str:
        r = self.rng
        return str(IPv4Address(r.choice(V4_POOLS) | r.randrange(1, 1 << 8)))

    def remote_v6(self) -> str:
        r = self.rng
        return str(IPv6Address(r.choice(V6_POOLS) | r.randrange(1, 1 << 8)))

    def port(self) -> int:
        return self.rng.choice(PORTS) if self.rng.random() < 0.6 else self.rng.randrange(65536)

    def l2(self, dst: int, vlans: list[tuple[int, int]], src: int | None = None) -> Packet:
        """Ether header with tags, given as (TPID, VID) from outer to inner."""
        L = self.layers
        src = self.rng.choice(_SRC_MACS) if src is None else src
        pkt: Packet = L.Ether(dst=format_mac(dst), src=format_mac(src))
        for tpid, vid in vlans:
            tag = L.Dot1AD(vlan=vid) if tpid == 0x88A8 else L.Dot1Q(vlan=vid)
            pkt.lastlayer().type = tpid
            pkt = pkt / tag
        return pkt

    def vf_tags(self, vf: Vf) -> list[tuple[int, int]]:
        r = self.rng
        if vf.vlan is None:
            return []
        inner = r.choice((5, 7, r.randrange(4096)))
        return r.choices(
            [
                [(0x8100, vf.vlan)],
                [(0x88A8, vf.vlan)],
                [(0x88A8, vf.vlan), (0x8100, inner)],
                [(0x8100, vf.vlan), (0x8100, inner)],
            ],
            weights=(5, 1, 3, 1),
        )[0]

    def random_tags(self) -> list[tuple[int, int]]:
        r = self.rng
        return r.choice(
            [[], [], [(0x8100, r.randrange(4096))], [(0x88A8, 100), (0x8100, r.randrange(4096))]]
        )

    # -- L3/L4 -------------------------------------------------------------------------------------

    def l4(self, version: int) -> Packet:
        L = self.layers
        r = self.rng
        kind = r.choices(("tcp", "udp", "icmp", "other"), weights=(8, 6, 3, 2))[0]
        if kind == "tcp":
            return L.TCP(
                sport=self.port(), dport=self.port(), flags=r.choice(("S", "A", "PA", "FA"))
            )
        if kind == "udp":
            return L.UDP(sport=self.port(), dport=self.port())
        if kind == "icmp":
            if version == 4:
                return L.ICMP(type=r.choice((0, 8, 3)), id=r.randrange(65536))
            return L.ICMPv6EchoRequest(id=r.randrange(65536))
        return L.Raw(b"\x00\x00\x08\x00")  # a GRE header; the IP layer gets proto 47 below

    def l3(self, vf: int | None) -> Packet:
        L = self.layers
        r = self.rng
        kind = r.choices(("ip4", "ip4opt", "ip6", "arp", "lldp"), weights=(9, 2, 6, 1, 1))[0]
        if kind == "arp":
            # hwsrc given: scapy's default is the host's interface address.
            return L.ARP(pdst=self.remote_v4(), psrc=self.remote_v4(), hwsrc=_ARP_HWSRC)
        if kind == "lldp":
            return L.Raw(bytes(20))
        local4 = vm_ipv4(vf) if vf is not None and r.random() < 0.6 else self.remote_v4()
        local6 = vm_ipv6(vf) if vf is not None and r.random() < 0.6 else self.remote_v6()
        if kind == "ip6":
            l4 = self.l4(6)
            ip6 = L.IPv6(src=self.remote_v6(), dst=local6)
            if isinstance(l4, L.Raw):
                ip6.nh = 47
            return ip6 / l4
        opts = [b"\x01" * (4 * r.randrange(1, 11))] if kind == "ip4opt" else []
        ip = L.IP(src=self.remote_v4(), dst=local4, id=r.randrange(65536), options=opts)
        l4 = self.l4(4)
        if isinstance(l4, L.Raw):
            ip.proto = 47
        return ip / l4

    def size(self) -> int:
        r = self.rng
        if r.random() < self.jumbo:
            return r.randrange(1515, 9001)
        return r.choices(self.lengths, weights=self.weights)[0]

    def fill(self, pkt: Packet, length: int) -> bytes:
        """The frame, with payload added up to ``length`` and padded to the minimum."""
        L = self.layers
        base = len(bytes(pkt))
        if length > base:
            # Up to 64 random bytes, then zeros: one payload, the frame built once more.
            head = bytes(self.rng.getrandbits(8) for _ in range(min(length - base, 64)))
            pkt = pkt / L.Raw(head + bytes(length - base - len(head)))
        data = bytes(pkt)
        return data + bytes(max(0, MIN_LEN - len(data)))

    # -- frame kinds -------------------------------------------------------------------------------

    def frame(self) -> tuple[str, bytes]:
        r = self.rng
        vfs = self.rules.vfs
        kind = r.choices(
            ("vf", "wrong_vlan", "unknown", "broadcast", "multicast"), weights=(14, 1, 2, 1, 1)
        )[0]
        if not vfs and kind in ("vf", "wrong_vlan"):
            kind = "unknown"
        vf_id = None
        if kind in ("vf", "wrong_vlan"):
            vf = r.choice(vfs)
            vf_id = vf.id
            dst = vf.mac
            if kind == "vf":
                tags = self.vf_tags(vf)
            else:
                wrong = (vf.vlan or 0) + r.randrange(1, 4000)
                tags = [(0x8100, wrong % 4096)] if vf.vlan is None or r.random() < 0.7 else []
                if any((vf.mac, _vid(tags)) == (o.mac, o.vlan) for o in vfs):
                    kind = "vf"  # the "wrong" VLAN happens to be another VF's key with this MAC
        elif kind == "unknown":
            dst, tags = 0x02000000AA00 | r.randrange(256), self.random_tags()
            if any(dst == o.mac for o in vfs):
                dst ^= 0x010000  # never collide with a VF MAC
        elif kind == "broadcast":
            dst, tags = (1 << 48) - 1, self.random_tags()
        else:
            dst = r.choice((0x01005E000001, 0x333300000001, 0x0180C200000E))
            tags = self.random_tags()
        return kind, self.fill(self.l2(dst, tags) / self.l3(vf_id), self.size())

    def fragments(self) -> list[bytes]:
        L = self.layers
        r = self.rng
        vf = r.choice(self.rules.vfs) if self.rules.vfs else None
        dst = vf.mac if vf else 0x02000000AA01
        tags = self.vf_tags(vf) if vf else []
        sport, dport = self.port(), self.port()
        l4 = r.choice(
            (L.TCP(sport=sport, dport=dport), L.UDP(sport=sport, dport=dport), L.ICMP(id=7))
        )
        ip = L.IP(src=self.remote_v4(), dst=vm_ipv4(vf.id if vf else 0), id=r.randrange(65536))
        datagram = ip / l4 / L.Raw(bytes(r.randrange(200, 2000)))
        pieces = L.fragment(datagram, fragsize=r.choice((96, 256, 1400)))
        return [self.fill(self.l2(dst, tags) / p, 0) for p in pieces]

    def malformed(self) -> tuple[str, bytes]:
        L = self.layers
        r = self.rng
        how = r.choice(MALFORMED_KINDS)
        vf = r.choice(self.rules.vfs) if self.rules.vfs else None
        dst = vf.mac if vf else 0x02000000AA01
        tags = self.vf_tags(vf) if vf else []
        eth = self.l2(dst, tags)
        l3 = 14 + 4 * len(tags)
        if how == "runt":
            data = self.fill(eth / L.IP() / L.UDP(), 0)
            return how, data[: r.randrange(1, MIN_LEN)]
        if how == "giant":
            return how, self.fill(eth / L.IP() / L.UDP(), r.randrange(9217, 9400))
        if how == "ip_truncated":
            # Two tags put the IPv6 header at 22: a 60-byte frame holds only 38 of its 40 bytes.
            eth = self.l2(dst, [(0x88A8, 100), (0x8100, 7)])
            return how, bytes(eth / L.IPv6())[:MIN_LEN]
        v6 = r.random() < 0.5 and how in ("ip_length", "ip_version", "tcp_offset", "udp_length")
        use_tcp = how == "tcp_offset" or (how == "l4_truncated" and r.random() < 0.5)
        if use_tcp:
            l4: Packet = L.TCP(sport=self.port(), dport=self.port())
        else:
            l4 = L.UDP(sport=self.port(), dport=self.port())
        ip: Packet = L.IPv6(nh=6 if isinstance(l4, L.TCP) else 17) if v6 else L.IP()
        b = bytearray(self.fill(eth / ip / l4, self.size()))
        ihl = 40 if v6 else 20
        if how == "ip_version":
            b[l3] = (b[l3] & 0x0F) | (r.choice((4, 5, 7, 15)) if v6 else r.choice((5, 6, 0))) << 4
        elif how == "ip_ihl":
            b[l3] = 0x40 | r.choice((0, 3, 4))
        elif how == "ip_length":
            room = len(b) - l3
            if v6:
                _put16(b, l3 + 4, room - 40 + r.randrange(1, 100))
            else:
                _put16(b, l3 + 2, r.choice((room + r.randrange(1, 100), r.randrange(20))))
        elif how == "l4_truncated":
            # Cut the L4 region short of the header: the frame is padding after it.
            _put16(b, l3 + 2, 20 + r.randrange(0, 8 if isinstance(l4, L.UDP) else 20))
        elif how == "tcp_offset":
            b[l3 + ihl + 12] = r.choice((0, 3, 4)) << 4 | (b[l3 + ihl + 12] & 0x0F)
        elif how == "udp_length":
            region = len(b) - l3 - ihl
            _put16(b, l3 + ihl + 4, r.choice((r.randrange(8), region + r.randrange(1, 50))))
        return how, bytes(b)

    def flow(self) -> tuple[bytes, list[bytes]]:
        """A VM egress frame and the replies it expects (sometimes closed by a FIN)."""
        L = self.layers
        r = self.rng
        vf = r.choice(self.rules.vfs)
        v6 = r.random() < 0.3
        local = vm_ipv6(vf.id) if v6 else vm_ipv4(vf.id)
        remote = self.remote_v6() if v6 else self.remote_v4()
        ip_out = L.IPv6(src=local, dst=remote) if v6 else L.IP(src=local, dst=remote)
        ip_in = L.IPv6(src=remote, dst=local) if v6 else L.IP(src=remote, dst=local)
        lport, rport = r.randrange(32768, 61000), r.choice(PORTS)
        kind = r.choice(("tcp", "udp", "echo"))
        if kind == "tcp":
            out = L.TCP(sport=lport, dport=rport, flags="S")
            replies = [L.TCP(sport=rport, dport=lport, flags="SA")]
            if r.random() < 0.4:
                replies += [L.TCP(sport=rport, dport=lport, flags="FA")]
                replies += [L.TCP(sport=rport, dport=lport, flags="A")]  # after the FIN: dropped
        elif kind == "udp":
            out = L.UDP(sport=lport, dport=rport)
            replies = [L.UDP(sport=rport, dport=lport) for _ in range(r.randrange(1, 3))]
        else:
            echo = r.randrange(65536)
            out = L.ICMPv6EchoRequest(id=echo) if v6 else L.ICMP(type=8, id=echo)
            replies = [L.ICMPv6EchoReply(id=echo) if v6 else L.ICMP(type=0, id=echo)]
        egress = self.fill(self.l2(_GATEWAY, self.vf_tags(vf)[:1], vf.mac) / ip_out / out, 0)
        tags = self.vf_tags(vf)
        back = [self.fill(self.l2(vf.mac, tags) / ip_in.copy() / x, self.size()) for x in replies]
        return egress, back


def _vid(tags: list[tuple[int, int]]) -> int | None:
    return tags[0][1] if tags else None


def _put16(b: bytearray, i: int, v: int) -> None:
    b[i : i + 2] = (v & 0xFFFF).to_bytes(2, "big")


def generate_traffic(
    rules: Rules,
    n: int,
    seed: int,
    *,
    malformed: float = 0.05,
    fragments: float = 0.03,
    flows: float = 0.06,
    sizes: Sequence[tuple[int, int]] = IMIX,
    jumbo: float = 0.02,
    layers: ModuleType | SimpleNamespace = craft,
) -> Traffic:
    """``n`` received frames (and the VMs' egress frames) for the VFs of ``rules``.

    Parameters
    ----------
    rules : Rules
        Frames are addressed to these VFs' (MAC, VLAN) keys, among others.
    n : int
        Number of received frames.
    seed : int
        Same seed, same traffic.
    malformed, fragments, flows : float
        Probability per slot of a malformed frame, of a fragmented datagram (all its pieces),
        and of a VM flow (an egress frame now, its replies a few slots later).
    sizes : sequence of (length, weight)
        Lengths (without FCS) of ordinary frames: :data:`IMIX`, or :data:`SHORT`.
    jumbo : float
        Probability that an ordinary frame is instead a jumbo, 1515 to 9000 bytes.
    layers
        The packet builder: :mod:`models.nic.craft`, or :func:`scapy_layers`; the same seed
        gives the same frames with either.
    """
    rng = random.Random(seed)
    g = _Gen(rules, rng, sizes=sizes, jumbo=jumbo, layers=layers)
    t = Traffic()
    pending: list[tuple[int, bytes]] = []  # (slot due, reply frame)

    def emit(kind: str, data: bytes) -> None:
        t.records.append(Record(g.tick(), data))
        t.kinds.append(kind)

    while len(t.records) < n:
        slot = len(t.records)
        due = [p for p in pending if p[0] <= slot]
        if due:
            pending.remove(due[0])
            emit("reply", due[0][1])
            continue
        x = rng.random()
        if x < malformed:
            how, data = g.malformed()
            emit(f"malformed:{how}", data)
        elif x < malformed + fragments:
            for piece in g.fragments()[: n - slot]:
                emit("fragment", piece)
        elif x < malformed + fragments + flows and rules.vfs:
            out, replies = g.flow()
            t.egress.append(Record(g.tick() - 500, out))  # between two received frames
            at = slot + rng.randrange(1, 20)
            for i, reply in enumerate(replies):
                pending.append((at + i, reply))
        else:
            emit(*g.frame())
    return t
