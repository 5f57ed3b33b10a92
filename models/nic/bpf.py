"""Render one VF's rules as libpcap filters selecting the frames the NIC would pass to it.

Used as an oracle independent of our parser: tcpdump evaluates the filter with libpcap's own
header decoding (IHL-based port offsets, fragment checks, IPv6 next header), and the tests
compare the frames it selects with the model's ``pass`` verdicts for the VF.

libpcap's ``vlan`` keyword shifts the offsets of *everything after it* in the expression, in
every branch, so a frame's tag depth cannot be chosen inside one expression. :func:`vf_pass_filters`
therefore gives one filter per tag depth (0, 1, 2): each starts with raw checks of the tag
headers at fixed offsets (``ether[...]`` is never shifted) and then as many ``vlan`` keywords as
the depth, after which ``ip``, ``tcp port`` and the like read the right offsets. The union of
the three selections is the set of frames passed to the VF (malformed frames excepted: libpcap
does not check header lengths, so compare only frames the model does not class malformed).

Every rule field is covered (masked MACs by raw byte masks), except an ``ethertype`` below
0x0600, which libpcap reads as an 802.3 length: :func:`expressible` says whether a VF is covered.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address

from .pcap import Record, parse_pcap
from .rules import IpMatch, MacMatch, PortRange, Rule, Rules, Vf, format_mac

__all__ = ["expressible", "vf_pass_filters", "rule_filter", "tcpdump_passes"]

_TPID_OUTER = "(ether[12:2] = 0x8100 or ether[12:2] = 0x88a8)"

Expr = str | bool  # a filter text, or a constant folded away


def _and(*parts: Expr) -> Expr:
    if any(p is False for p in parts):
        return False
    texts = [p for p in parts if p is not True]
    if not texts:
        return True
    return texts[0] if len(texts) == 1 else "(" + " and ".join(str(t) for t in texts) + ")"


def _or(a: Expr, b: Expr) -> Expr:
    if a is True or b is True:
        return True
    if a is False:
        return b
    if b is False:
        return a
    return f"({a} or {b})"


def _not(a: Expr) -> Expr:
    return (not a) if isinstance(a, bool) else f"(not {a})"


def expressible(vf: Vf) -> bool:
    """Whether every rule of ``vf`` can be rendered exactly (no ethertype below 0x0600)."""
    return all(r.ethertype is None or r.ethertype >= 0x0600 for r in vf.rules)


def _mac(m: MacMatch, direction: str, base: int) -> Expr:
    if m.mask == (1 << 48) - 1:
        return f"ether {direction} {format_mac(m.value)}"
    hi_mask, lo_mask = m.mask >> 16, m.mask & 0xFFFF
    hi_val, lo_val = m.value >> 16, m.value & 0xFFFF
    return _and(
        f"(ether[{base}:4] & 0x{hi_mask:08x}) = 0x{hi_val:08x}" if hi_mask else True,
        f"(ether[{base + 4}:2] & 0x{lo_mask:04x}) = 0x{lo_val:04x}" if lo_mask else True,
    )


def _ip(m: IpMatch, direction: str) -> Expr:
    addr = IPv4Address(m.addr) if m.version == 4 else IPv6Address(m.addr)
    family = "ip" if m.version == 4 else "ip6"
    if m.plen == 0:
        return family
    return f"{family} {direction} net {addr}/{m.plen}"


def _ports(p: PortRange, direction: str, proto: int | None) -> Expr:
    protos = {6: ["tcp"], 17: ["udp"]}.get(proto, []) if proto is not None else ["tcp", "udp"]
    expr: Expr = False
    for name in protos:
        expr = _or(expr, f"{name} {direction} portrange {p.lo}-{p.hi}")
    return expr


def rule_filter(r: Rule, vf: Vf, depth: int) -> Expr:
    """The filter for "rule ``r`` matches", for frames with ``depth`` tags steered to ``vf``."""
    parts: list[Expr] = []
    if r.src_mac is not None:
        parts.append(_mac(r.src_mac, "src", 6))
    if r.dst_mac is not None:
        parts.append(_mac(r.dst_mac, "dst", 0))
    if r.ethertype is not None:
        parts.append(f"ether proto 0x{r.ethertype:04x}")
    if r.vlan is not None:
        # The rule matches the inner (last) VID: none untagged, the steering VID single-tagged.
        if depth == 0:
            parts.append(False)
        elif depth == 1:
            parts.append(r.vlan == vf.vlan)
        else:
            parts.append(f"(ether[18:2] & 0x0fff) = {r.vlan}")
    family = None
    for key, direction in (("src_ip", "src"), ("dst_ip", "dst")):
        m: IpMatch | None = getattr(r, key)
        if m is not None:
            family = m.version
            parts.append(_ip(m, direction))
    if r.proto is not None:
        by_family = {4: f"ip proto {r.proto}", 6: f"ip6 proto {r.proto}"}
        parts.append(by_family[family] if family else _or(by_family[4], by_family[6]))
    for key, direction in (("src_port", "src"), ("dst_port", "dst")):
        p: PortRange | None = getattr(r, key)
        if p is not None:
            parts.append(_ports(p, direction, r.proto))
    return _and(*parts)


def vf_pass_filters(vf: Vf) -> list[str | None]:
    """Three filters, for frames with 0, 1 and 2 VLAN tags; None where no frame can pass.

    Raises
    ------
    ValueError
        ``vf`` is not :func:`expressible`.
    """
    if not expressible(vf):
        raise ValueError(f"VF {vf.id} has a rule libpcap cannot express")
    dst = f"ether dst {format_mac(vf.mac)}"
    prefixes: list[Expr] = [
        False
        if vf.vlan is not None
        else _and(dst, "ether[12:2] != 0x8100", "ether[12:2] != 0x88a8"),
        False
        if vf.vlan is None
        else _and(dst, _TPID_OUTER, "ether[16:2] != 0x8100", f"vlan {vf.vlan}"),
        False
        if vf.vlan is None
        else _and(dst, _TPID_OUTER, "ether[16:2] = 0x8100", f"vlan {vf.vlan}", "vlan"),
    ]
    out: list[str | None] = []
    for depth, prefix in enumerate(prefixes):
        # First match wins: a pass rule passes what it matches, a block rule removes it.
        chain: Expr = vf.default == "pass"
        for r in reversed(vf.rules):
            m = rule_filter(r, vf, depth)
            chain = _or(m, chain) if r.action == "pass" else _and(_not(m), chain)
        expr = _and(prefix, chain)
        out.append(None if expr is False else str(expr))
    return out


def tcpdump_passes(
    tcpdump: str | os.PathLike[str],
    rules: Rules,
    pcap: str | os.PathLike[str],
    records: Sequence[Record],
) -> dict[int, set[int]]:
    """Per VF id, the indices of the frames of ``pcap`` (whose records are ``records``, with
    distinct timestamps) that tcpdump's evaluation of :func:`vf_pass_filters` selects.

    Raises
    ------
    RuntimeError
        tcpdump failed (its message included).
    """
    index = {ts: i for i, (ts, _) in enumerate(records)}
    if len(index) != len(records):
        raise ValueError("records need distinct timestamps to be told apart")
    out: dict[int, set[int]] = {}
    for vf in rules.vfs:
        got: set[int] = set()
        for expr in vf_pass_filters(vf):
            if expr is None:
                continue
            proc = subprocess.run(
                [os.fspath(tcpdump), "-r", os.fspath(pcap), "-w", "-", expr],
                capture_output=True,
                check=False,
            )
            if proc.returncode and b"expression rejects all packets" in proc.stderr:
                continue  # a rule no frame can match (ARP and UDP, say): it selects nothing
            if proc.returncode:
                raise RuntimeError(f"tcpdump {expr!r}: {proc.stderr.decode(errors='replace')}")
            got |= {index[ts] for ts, _ in parse_pcap(proc.stdout, "tcpdump")}
        out[vf.id] = got
    return out
