"""The NIC's header parser: one Ethernet frame (no FCS) into the fields the filter matches.

This is a hand-written byte parser, independent of scapy (the tests cross-check the two). The
rules (``docs/nic.md``, "Contract") are fixed-offset checks that the hardware evaluates as the
frame streams in: every length is checked against the bytes actually present, and any violation
classes the frame ``malformed`` with a short reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmassist.formats.nic import (
    ETH_IPV4,
    ETH_IPV6,
    ETH_QINQ,
    ETH_VLAN,
    HDR_BYTES,
    LEN_BITS,
    MAX_LEN,
    MIN_LEN,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    IpKind,
    Malformed,
)

__all__ = [
    "Parsed",
    "parse",
    "header_record",
    "hdr_fields",
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
    "MALFORMED_REASONS",
]


MALFORMED_REASONS = (
    "runt",
    "giant",
    "ip_truncated",
    "ip_version",
    "ip_ihl",
    "ip_length",
    "l4_truncated",
    "tcp_offset",
    "udp_length",
)
"""Every value :attr:`Parsed.malformed` can take (besides None)."""


@dataclass(frozen=True, slots=True)
class Parsed:
    """The parsed header fields of one frame.

    Members
    -------
    length : int
        Frame length in bytes (no FCS).
    dst, src : int
        Destination and source MAC as 48-bit integers (byte 0 most significant); 0 for a runt.
    tags : int
        Number of VLAN tags parsed, 0..2.
    outer_vid, inner_vid : int or None
        VID of the first and of the last VLAN tag parsed (equal when single-tagged); None when
        untagged.
    ethertype : int
        The type after the tags.
    ip_version : int or None
        4, 6, or None for a non-IP frame.
    src_ip, dst_ip : int or None
        Addresses as integers.
    proto : int or None
        IPv4 protocol / IPv6 Next Header (extension headers are not followed).
    fragment : bool
        IPv4 MF set or fragment offset non-zero (always False for IPv6 and non-IP frames).
    first_frag : bool
        IPv4 fragment offset zero (True for IPv6 and non-IP frames); L4 is parsed only then.
    sport, dport : int or None
        TCP/UDP ports, None when L4 ports were not parsed.
    l4_offset : int
        Offset of the L4 header (the IP payload) for an IP frame, else 0.
    payload_offset, payload_length : int
        Where the software filter searches for signatures: the bytes after the L4 header when L4
        was parsed, else the whole L3 payload (IP) or everything after the ethertype (non-IP).
    malformed : str or None
        The first rule the frame violates (one of :data:`MALFORMED_REASONS`), or None. Fields
        after the failing check keep their defaults; only ``length`` and ``malformed`` are
        meaningful for a malformed frame.
    """

    length: int
    dst: int = 0
    src: int = 0
    tags: int = 0
    outer_vid: int | None = None
    inner_vid: int | None = None
    ethertype: int = 0
    ip_version: int | None = None
    src_ip: int | None = None
    dst_ip: int | None = None
    proto: int | None = None
    fragment: bool = False
    first_frag: bool = True
    sport: int | None = None
    dport: int | None = None
    l4_offset: int = 0
    payload_offset: int = 0
    payload_length: int = 0
    malformed: str | None = None


def _u16(b: bytes, i: int) -> int:
    return (b[i] << 8) | b[i + 1]


def parse(frame: bytes) -> Parsed:
    """Parse one Ethernet frame (without FCS); never raises on any input bytes."""
    n = len(frame)
    if n < MIN_LEN:
        return Parsed(n, malformed="runt")
    if n > MAX_LEN:
        return Parsed(n, malformed="giant")

    f: dict[str, object] = {
        "dst": int.from_bytes(frame[0:6], "big"),
        "src": int.from_bytes(frame[6:12], "big"),
    }
    etype = _u16(frame, 12)
    off = 14
    # Up to two tags: any TPID may open, only 0x8100 may follow (802.1ad S-tag + C-tag, or a
    # stacked C-tag); a third TPID is left as the ethertype so the header depth stays bounded.
    if etype in (ETH_QINQ, ETH_VLAN):
        vid = _u16(frame, off) & 0xFFF
        f["outer_vid"] = f["inner_vid"] = vid
        f["tags"] = 1
        etype = _u16(frame, off + 2)
        off += 4
        if etype == ETH_VLAN:
            f["tags"] = 2
            f["inner_vid"] = _u16(frame, off) & 0xFFF
            etype = _u16(frame, off + 2)
            off += 4
    f["ethertype"] = etype
    rem = n - off  # bytes from the L3 header to the end of the frame

    def done(malformed: str | None = None) -> Parsed:
        return Parsed(n, malformed=malformed, **f)  # type: ignore[arg-type]

    if etype == ETH_IPV4:
        if rem < 20:
            return done("ip_truncated")
        if frame[off] >> 4 != 4:
            return done("ip_version")
        hlen = (frame[off] & 0xF) * 4
        if hlen < 20 or hlen > rem:
            return done("ip_ihl")
        total = _u16(frame, off + 2)
        if total < hlen or total > rem:  # shorter than the frame is Ethernet padding: allowed
            return done("ip_length")
        flags_frag = _u16(frame, off + 6)
        frag_off = flags_frag & 0x1FFF
        f.update(
            ip_version=4,
            proto=frame[off + 9],
            src_ip=int.from_bytes(frame[off + 12 : off + 16], "big"),
            dst_ip=int.from_bytes(frame[off + 16 : off + 20], "big"),
            fragment=bool(flags_frag & 0x2000) or frag_off != 0,
            first_frag=frag_off == 0,
        )
        l4, l4_len = off + hlen, total - hlen
        parse_l4 = frag_off == 0
        icmp = PROTO_ICMP
    elif etype == ETH_IPV6:
        if rem < 40:
            return done("ip_truncated")
        if frame[off] >> 4 != 6:
            return done("ip_version")
        plen = _u16(frame, off + 4)
        if 40 + plen > rem:
            return done("ip_length")
        f.update(
            ip_version=6,
            proto=frame[off + 6],
            src_ip=int.from_bytes(frame[off + 8 : off + 24], "big"),
            dst_ip=int.from_bytes(frame[off + 24 : off + 40], "big"),
        )
        l4, l4_len = off + 40, plen
        parse_l4 = True
        icmp = PROTO_ICMPV6
    else:
        f.update(payload_offset=off, payload_length=rem)
        return done()

    proto = f["proto"]
    f["l4_offset"] = l4
    hdr = 0  # L4 header bytes before the payload
    if parse_l4:
        if proto == PROTO_TCP:
            if l4_len < 20:
                return done("l4_truncated")
            hdr = (frame[l4 + 12] >> 4) * 4
            if hdr < 20 or hdr > l4_len:
                return done("tcp_offset")
            f.update(sport=_u16(frame, l4), dport=_u16(frame, l4 + 2))
        elif proto == PROTO_UDP:
            if l4_len < 8:
                return done("l4_truncated")
            ulen = _u16(frame, l4 + 4)
            # The UDP length covers the whole datagram: a first fragment (MF set) holds only
            # part of it, so only a datagram in one piece is held to the bytes present.
            if ulen < 8 or (ulen > l4_len and not f.get("fragment")):
                return done("udp_length")
            hdr = 8
            f.update(sport=_u16(frame, l4), dport=_u16(frame, l4 + 2))
        elif proto == icmp:
            if l4_len < 4:
                return done("l4_truncated")
            hdr = 4
    f.update(payload_offset=l4 + hdr, payload_length=l4_len - hdr)
    return done()


def header_record(frame: bytes) -> dict[str, int]:
    """The :class:`~vmassist.formats.nic.HeaderRec` the ingress hands the parser for ``frame``.

    ``hdr`` holds the first :data:`~vmassist.formats.nic.HDR_BYTES` bytes, byte ``i`` at bits
    ``8*i .. 8*i+7`` (zero past the frame's end); ``length`` saturates at ``2**LEN_BITS - 1``,
    which is still a giant.
    """
    return {
        "hdr": int.from_bytes(frame[:HDR_BYTES], "little"),
        "length": min(len(frame), (1 << LEN_BITS) - 1),
    }


def hdr_fields(p: Parsed) -> dict[str, int]:
    """The :class:`~vmassist.formats.nic.ParsedHdr` field values the hardware must produce.

    For a good frame every field: absent ones are zero (no tags, non-IP, no ports), an IPv4
    address sits in the low 32 bits, and ``first_frag`` is 1 unless the frame is a non-first
    IPv4 fragment (as in :class:`Parsed`). For a malformed frame only ``malformed`` and
    ``length``: the hardware's other fields then hold whatever it parsed before the failure.
    """
    length = min(p.length, (1 << LEN_BITS) - 1)
    if p.malformed is not None:
        return {"malformed": Malformed[p.malformed.upper()], "length": length}
    ports = p.sport is not None
    return {
        "malformed": Malformed.NONE,
        "dst": p.dst,
        "src": p.src,
        "tags": p.tags,
        "outer_vid": p.outer_vid or 0,
        "inner_vid": p.inner_vid or 0,
        "ethertype": p.ethertype,
        "ip": {None: IpKind.NONE, 4: IpKind.V4, 6: IpKind.V6}[p.ip_version],
        "src_ip": p.src_ip or 0,
        "dst_ip": p.dst_ip or 0,
        "proto": p.proto or 0,
        "fragment": int(p.fragment),
        "first_frag": int(p.first_frag),
        "ports": int(ports),
        "sport": p.sport if ports else 0,
        "dport": p.dport if ports else 0,
        "length": length,
    }
