"""A minimal packet builder with scapy's interface, for the layers :mod:`models.nic.traffic` uses.

scapy takes ~2 ms to build one generated frame, which made traffic generation the larger part
of a 1e5-frame simulation. These classes build the same bytes ~50x faster: the same field
defaults, the same automatic fields (EtherType and IP protocol from the next layer, lengths,
IPv4 header and L4 checksums, UDP's 0 sent as 0xFFFF), ``/`` copying both operands, and
:func:`fragment` cutting a datagram as scapy's does. Only what the generator uses is here, and
``tests/test_nic_model.py`` checks the generator's frames against the same generator run on
scapy's classes, byte for byte.
"""

from __future__ import annotations

import array
import socket
import struct
import sys
from functools import lru_cache
from typing import Any, ClassVar

__all__ = [
    "ARP",
    "ICMP",
    "IP",
    "TCP",
    "UDP",
    "Dot1AD",
    "Dot1Q",
    "Ether",
    "ICMPv6EchoReply",
    "ICMPv6EchoRequest",
    "IPv6",
    "Raw",
    "fragment",
]

_TCP_FLAGS = {c: 1 << i for i, c in enumerate("FSRPAUEC")}


def checksum(data: bytes) -> int:
    """The Internet checksum of ``data`` (RFC 1071), as scapy computes it."""
    if len(data) % 2:
        data += b"\0"
    s = sum(array.array("H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    s = ~s
    if sys.byteorder == "little":
        s = ((s >> 8) & 0xFF) | s << 8
    return s & 0xFFFF


@lru_cache(maxsize=4096)
def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


@lru_cache(maxsize=4096)
def _ip4(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, text)


@lru_cache(maxsize=4096)
def _ip6(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, text)


class Packet:
    """A layer and, through ``payload``, the layers after it."""

    #: Field names and defaults (None: computed when built).
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **fields: Any) -> None:
        unknown = set(fields) - set(self.defaults)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)}")
        self.__dict__.update(self.defaults)
        self.__dict__.update(fields)
        self.payload: Packet | None = None
        self.underlayer: Packet | None = None

    def copy(self) -> Packet:
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.underlayer = None
        if self.payload is not None:
            new.payload = self.payload.copy()
            new.payload.underlayer = new
        return new

    def lastlayer(self) -> Packet:
        p = self
        while p.payload is not None:
            p = p.payload
        return p

    def __truediv__(self, other: Packet) -> Packet:
        head, tail = self.copy(), other.copy()
        last = head.lastlayer()
        last.payload, tail.underlayer = tail, last
        return head

    def __bytes__(self) -> bytes:
        pay = bytes(self.payload) if self.payload is not None else b""
        return self.build(pay)

    def __len__(self) -> int:
        return len(bytes(self))

    def build(self, pay: bytes) -> bytes:
        """This layer's bytes followed by ``pay``, the payload's."""
        raise NotImplementedError


class Raw(Packet):
    defaults: ClassVar[dict[str, Any]] = {"load": b""}

    def __init__(self, load: bytes = b"", **fields: Any) -> None:
        super().__init__(load=bytes(load), **fields)

    def build(self, pay: bytes) -> bytes:
        return self.load + pay


def _next_type(layer: Packet, table: dict[type, int], default: int) -> int:
    return table.get(type(layer.payload), default)


class Ether(Packet):
    defaults: ClassVar[dict[str, Any]] = {"dst": "ff:ff:ff:ff:ff:ff", "src": None, "type": None}

    def build(self, pay: bytes) -> bytes:
        if self.src is None:
            raise ValueError("Ether: give src (scapy would take the host's interface address)")
        t = self.type if self.type is not None else _next_type(self, _ETHERTYPES, 0x9000)
        return _mac(self.dst) + _mac(self.src) + struct.pack("!H", t) + pay


class Dot1Q(Packet):
    defaults: ClassVar[dict[str, Any]] = {"prio": 0, "dei": 0, "vlan": 1, "type": None}

    def build(self, pay: bytes) -> bytes:
        t = self.type if self.type is not None else _next_type(self, _ETHERTYPES, 0)
        tci = self.prio << 13 | self.dei << 12 | self.vlan
        return struct.pack("!HH", tci, t) + pay


class Dot1AD(Dot1Q):
    pass


class ARP(Packet):
    defaults: ClassVar[dict[str, Any]] = {
        "op": 1,
        "hwsrc": None,
        "psrc": None,
        "hwdst": "00:00:00:00:00:00",
        "pdst": "0.0.0.0",
    }

    def build(self, pay: bytes) -> bytes:
        if self.hwsrc is None or self.psrc is None:
            raise ValueError("ARP: give hwsrc and psrc (scapy would take the host's)")
        head = struct.pack("!HHBBH", 1, 0x0800, 6, 4, self.op)
        return head + _mac(self.hwsrc) + _ip4(self.psrc) + _mac(self.hwdst) + _ip4(self.pdst) + pay


class IP(Packet):
    defaults: ClassVar[dict[str, Any]] = {
        "tos": 0,
        "id": 1,
        "flags": 0,
        "frag": 0,
        "ttl": 64,
        "proto": None,
        "src": "127.0.0.1",
        "dst": "127.0.0.1",
        "options": (),
    }

    def build(self, pay: bytes) -> bytes:
        opts = b"".join(bytes(o) for o in self.options)
        opts += bytes(-len(opts) % 4)
        proto = self.proto if self.proto is not None else _next_type(self, _IPPROTO, 0)
        head = struct.pack(
            "!BBHHHBBH4s4s",
            0x40 | (5 + len(opts) // 4),
            self.tos,
            20 + len(opts) + len(pay),
            self.id,
            self.flags << 13 | self.frag,
            self.ttl,
            proto,
            0,
            _ip4(self.src),
            _ip4(self.dst),
        )
        head += opts
        ck = checksum(head)
        return head[:10] + struct.pack("!H", ck) + head[12:] + pay

    def pseudo(self, proto: int, length: int) -> bytes:
        return struct.pack("!4s4sHH", _ip4(self.src), _ip4(self.dst), proto, length)


class IPv6(Packet):
    defaults: ClassVar[dict[str, Any]] = {
        "tc": 0,
        "fl": 0,
        "nh": None,
        "hlim": 64,
        "src": "::1",
        "dst": "::1",
    }

    def build(self, pay: bytes) -> bytes:
        nh = self.nh if self.nh is not None else _next_type(self, _IPPROTO, 59)
        head = struct.pack("!IHBB", 6 << 28 | self.tc << 20 | self.fl, len(pay), nh, self.hlim)
        return head + _ip6(self.src) + _ip6(self.dst) + pay

    def pseudo(self, proto: int, length: int) -> bytes:
        return _ip6(self.src) + _ip6(self.dst) + struct.pack("!I3xB", length, proto)


def _l4_checksum(layer: Packet, proto: int, seg: bytes) -> int:
    under = layer.underlayer
    if not isinstance(under, IP | IPv6):
        raise ValueError(f"{type(layer).__name__} needs an IP or IPv6 layer for its checksum")
    return checksum(under.pseudo(proto, len(seg)) + seg)


class TCP(Packet):
    defaults: ClassVar[dict[str, Any]] = {
        "sport": 20,
        "dport": 80,
        "seq": 0,
        "ack": 0,
        "flags": "S",
        "window": 8192,
        "urgptr": 0,
    }

    def build(self, pay: bytes) -> bytes:
        flags = self.flags
        if isinstance(flags, str):
            flags = sum(_TCP_FLAGS[c] for c in flags)
        seg = struct.pack(
            "!HHIIBBHHH",
            self.sport,
            self.dport,
            self.seq,
            self.ack,
            5 << 4,  # data offset: no options
            flags,
            self.window,
            0,
            self.urgptr,
        )
        seg += pay
        ck = _l4_checksum(self, 6, seg)
        return seg[:16] + struct.pack("!H", ck) + seg[18:]


class UDP(Packet):
    defaults: ClassVar[dict[str, Any]] = {"sport": 53, "dport": 53}

    def build(self, pay: bytes) -> bytes:
        seg = struct.pack("!HHHH", self.sport, self.dport, 8 + len(pay), 0) + pay
        ck = _l4_checksum(self, 17, seg) or 0xFFFF  # RFC 768: 0 means "no checksum"
        return seg[:6] + struct.pack("!H", ck) + seg[8:]


class ICMP(Packet):
    defaults: ClassVar[dict[str, Any]] = {"type": 8, "code": 0, "id": 0, "seq": 0}

    def build(self, pay: bytes) -> bytes:
        if self.type in (0, 8):  # echo reply and request: identifier and sequence number
            rest = struct.pack("!HH", self.id, self.seq)
        elif self.type == 3:  # destination unreachable: unused, length, next-hop MTU
            rest = bytes(4)
        else:
            raise ValueError(f"ICMP type {self.type} is not built here")
        msg = struct.pack("!BBH", self.type, self.code, 0) + rest + pay
        ck = checksum(msg)
        return msg[:2] + struct.pack("!H", ck) + msg[4:]


class ICMPv6EchoRequest(Packet):
    defaults: ClassVar[dict[str, Any]] = {"code": 0, "id": 0, "seq": 0}
    icmp_type: ClassVar[int] = 128

    def build(self, pay: bytes) -> bytes:
        msg = struct.pack("!BBHHH", self.icmp_type, self.code, 0, self.id, self.seq) + pay
        ck = _l4_checksum(self, 58, msg)
        return msg[:2] + struct.pack("!H", ck) + msg[4:]


class ICMPv6EchoReply(ICMPv6EchoRequest):
    icmp_type: ClassVar[int] = 129


_ETHERTYPES = {Dot1Q: 0x8100, Dot1AD: 0x88A8, IP: 0x0800, IPv6: 0x86DD, ARP: 0x0806}
_IPPROTO = {TCP: 6, UDP: 17, ICMP: 1, ICMPv6EchoRequest: 58, ICMPv6EchoReply: 58}


def fragment(pkt: IP, fragsize: int = 1480) -> list[IP]:
    """The fragments of an IPv4 datagram, as scapy's ``fragment``: pieces of ``fragsize``
    rounded down to 8 bytes (the last one up to ``fragsize``), More Fragments on all but the
    last, the protocol of the datagram's payload."""
    if not isinstance(pkt, IP) or pkt.payload is None:
        raise ValueError("fragment takes an IP datagram with a payload")
    last_size = max(fragsize, 8)
    size = last_size - last_size % 8
    data = bytes(pkt.payload)
    proto = pkt.proto if pkt.proto is not None else _next_type(pkt, _IPPROTO, 0)
    count = (len(data) - last_size + size - 1) // size + 1
    out = []
    for i in range(count):
        q = pkt.copy()
        q.payload = None
        q.proto = proto
        end = (i + 1) * size if i != count - 1 else i * size + last_size
        if i != count - 1:
            q.flags |= 1
        q.frag += i * size // 8
        out.append(q / Raw(data[i * size : end]))
    return out
