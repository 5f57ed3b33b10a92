"""NIC rules files (``DESIGN.md``, "Rules file (NIC)"): load, validate, write, generate.

A rules file is TOML::

    [[vf]]
    id = 0                        # 0 .. n_vfs-1, each at most once
    mac = "02:00:00:00:00:10"     # unicast; (mac, vlan) unique across VFs
    vlan = 100                    # 0..4095; omitted = untagged frames only
    default = "pass"              # pass | block (default pass)
    bounce = true                 # blocked frames go to the VMM queue (default false)

    [[vf.rules]]                  # at most max_rules per VF; first match wins
    action = "block"              # pass | block (required)
    src_mac = "02:00:00:00:00:00/ff:ff:ff:00:00:00"   # also dst_mac; "mac" or "mac/mask"
    ethertype = 0x0800            # 0..0xffff
    vlan = 7                      # matches the frame's inner (last) VID
    src_ip = "10.0.0.0/8"         # also dst_ip; IPv4 or IPv6, optional /len; same family
    proto = "tcp"                 # tcp | udp | icmp | icmpv6 | 0..255
    src_port = 1234               # also dst_port; 0..65535 or "lo-hi" (lo <= hi) or "80"

    [vmm]                         # optional: the VMM's software filter
    conn_timeout_s = 60           # idle timeout of a tracked connection (> 0)
    rate = 1000                   # frames/s per source (> 0); omitted = no rate limit
    burst = 100                   # token bucket depth (>= 1; default max(1, rate))
    signatures = ["hex:deadbeef", "text:/etc/passwd"]   # searched in L4 payloads

Every problem is reported as one :class:`~vmassist.errors.UserError` naming the file and the
field (``vf[1].rules[3].dst_port``).
"""

from __future__ import annotations

import ipaddress
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmassist.errors import UserError, read_toml, type_name

from .parse import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP

__all__ = [
    "MacMatch",
    "IpMatch",
    "PortRange",
    "Rule",
    "Vf",
    "VmmConfig",
    "Rules",
    "ACTIONS",
    "PROTO_NAMES",
    "RULE_FIELDS",
    "DEFAULT_MAX_RULES",
    "DEFAULT_N_VFS",
    "load_rules",
    "parse_rules",
    "rules_to_toml",
    "format_mac",
    "random_rules",
    "vf_mac",
    "V4_POOLS",
    "V6_POOLS",
    "PORTS",
    "ETHERTYPES",
]

ACTIONS = ("pass", "block")
PROTO_NAMES = {"tcp": PROTO_TCP, "udp": PROTO_UDP, "icmp": PROTO_ICMP, "icmpv6": PROTO_ICMPV6}
_PROTO_STR = {v: k for k, v in PROTO_NAMES.items()}
RULE_FIELDS = (
    "action",
    "src_mac",
    "dst_mac",
    "ethertype",
    "vlan",
    "src_ip",
    "dst_ip",
    "proto",
    "src_port",
    "dst_port",
)
DEFAULT_MAX_RULES = 16
DEFAULT_N_VFS = 4
_MAC_ALL = (1 << 48) - 1


@dataclass(frozen=True)
class MacMatch:
    """``(mac & mask) == value``; ``value`` has no bits outside ``mask``."""

    value: int
    mask: int = _MAC_ALL

    def matches(self, mac: int) -> bool:
        return mac & self.mask == self.value


@dataclass(frozen=True)
class IpMatch:
    """An IPv4 or IPv6 prefix; ``addr`` has no bits beyond ``plen``."""

    version: int
    addr: int
    plen: int

    @property
    def mask(self) -> int:
        bits = 32 if self.version == 4 else 128
        return ((1 << self.plen) - 1) << (bits - self.plen)

    def matches(self, version: int | None, addr: int | None) -> bool:
        return version == self.version and addr is not None and addr & self.mask == self.addr


@dataclass(frozen=True)
class PortRange:
    """``lo <= port <= hi``."""

    lo: int
    hi: int

    def matches(self, port: int | None) -> bool:
        return port is not None and self.lo <= port <= self.hi


@dataclass(frozen=True)
class Rule:
    """One VF rule; a None field matches anything."""

    action: str
    src_mac: MacMatch | None = None
    dst_mac: MacMatch | None = None
    ethertype: int | None = None
    vlan: int | None = None
    src_ip: IpMatch | None = None
    dst_ip: IpMatch | None = None
    proto: int | None = None
    src_port: PortRange | None = None
    dst_port: PortRange | None = None


@dataclass(frozen=True)
class Vf:
    """One virtual function: its steering key, default action, bounce enable and rules."""

    id: int
    mac: int
    vlan: int | None = None
    default: str = "pass"
    bounce: bool = False
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class VmmConfig:
    """The VMM software filter's settings (the ``[vmm]`` table)."""

    conn_timeout_s: float = 60.0
    rate: float | None = None
    burst: int = 1
    signatures: tuple[bytes, ...] = ()
    signature_text: tuple[str, ...] = ()  # as written, for rules_to_toml


@dataclass(frozen=True)
class Rules:
    """A validated rules file.

    Members
    -------
    vfs : tuple of Vf
        In file order.
    n_vfs, max_rules : int
        The hardware's shape the file was checked against.
    vmm : VmmConfig
    """

    vfs: tuple[Vf, ...] = ()
    n_vfs: int = DEFAULT_N_VFS
    max_rules: int = DEFAULT_MAX_RULES
    vmm: VmmConfig = VmmConfig()
    source: str = field(default="<rules>", compare=False)

    def vf(self, vf_id: int) -> Vf | None:
        """The VF with this id, or None."""
        for v in self.vfs:
            if v.id == vf_id:
                return v
        return None


# ---- parsing -------------------------------------------------------------------------------------


class _Table:
    """Typed access to one TOML table, raising UserError naming ``where.key``."""

    def __init__(self, source: str, table: Any, where: str, keys: Iterable[str]) -> None:
        self.source, self.where, self.table = source, where, table
        if not isinstance(table, dict):
            raise UserError(source, f"must be a table, not {type_name(table)}", where or None)
        keys = tuple(keys)
        for key in table:
            if key not in keys:
                raise UserError(
                    source, f"unknown key (expected one of {', '.join(keys)})", self.name(key)
                )

    def name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def error(self, key: str, problem: str) -> UserError:
        return UserError(self.source, problem, self.name(key))

    def has(self, key: str) -> bool:
        return key in self.table

    def require(self, key: str) -> Any:
        if key not in self.table:
            raise self.error(key, "missing")
        return self.table[key]

    def int(self, key: str, lo: int, hi: int) -> int:
        v = self.require(key)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(key, f"must be an integer, not {type_name(v)}")
        if not lo <= v <= hi:
            raise self.error(key, f"{v} is out of range {lo}..{hi}")
        return v

    def number(self, key: str, *, positive: bool = True) -> float:
        v = self.require(key)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.error(key, f"must be a number, not {type_name(v)}")
        if not math.isfinite(v) or (positive and v <= 0):
            raise self.error(key, f"{v} must be a finite number above 0")
        return float(v)

    def bool(self, key: str) -> bool:
        v = self.require(key)
        if not isinstance(v, bool):
            raise self.error(key, f"must be true or false, not {type_name(v)}")
        return v

    def choice(self, key: str, choices: Iterable[str]) -> str:
        v = self.require(key)
        choices = tuple(choices)
        if not isinstance(v, str) or v not in choices:
            shown = repr(v) if isinstance(v, str) else type_name(v)
            raise self.error(key, f"{shown} is not one of {' | '.join(choices)}")
        return v

    def str(self, key: str) -> str:
        v = self.require(key)
        if not isinstance(v, str):
            raise self.error(key, f"must be a string, not {type_name(v)}")
        return v


def _parse_mac_text(text: str) -> int | None:
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        return None
    try:
        return int("".join(parts), 16)
    except ValueError:
        return None


def _mac(t: _Table, key: str, *, masked: bool) -> MacMatch:
    text = t.str(key).strip()
    value_text, slash, mask_text = text.partition("/")
    value = _parse_mac_text(value_text)
    mask = _parse_mac_text(mask_text) if slash else _MAC_ALL
    if value is None or mask is None or (slash and not masked):
        form = '"aa:bb:cc:dd:ee:ff" or "aa:bb:cc:dd:ee:ff/ff:ff:ff:00:00:00"'
        if not masked:
            form = '"aa:bb:cc:dd:ee:ff"'
        raise t.error(key, f"{text!r} is not a MAC address ({form})")
    return MacMatch(value & mask, mask)


def _ip(t: _Table, key: str) -> IpMatch:
    text = t.str(key).strip()
    addr_text, slash, plen_text = text.partition("/")
    try:
        addr = ipaddress.ip_address(addr_text)
    except ValueError:
        raise t.error(key, f"{text!r} is not an IPv4 or IPv6 address") from None
    bits = addr.max_prefixlen
    if slash:
        if not plen_text.isdigit() or int(plen_text) > bits:
            raise t.error(key, f"prefix length {plen_text!r} is not 0..{bits}")
        plen = int(plen_text)
    else:
        plen = bits
    mask = ((1 << plen) - 1) << (bits - plen)
    return IpMatch(addr.version, int(addr) & mask, plen)


def _proto(t: _Table, key: str) -> int:
    v = t.require(key)
    if isinstance(v, str):
        if v not in PROTO_NAMES:
            raise t.error(key, f"{v!r} is not one of {' | '.join(PROTO_NAMES)} or 0..255")
        return PROTO_NAMES[v]
    if isinstance(v, bool) or not isinstance(v, int):
        raise t.error(key, f"must be a protocol name or number, not {type_name(v)}")
    if not 0 <= v <= 255:
        raise t.error(key, f"{v} is out of range 0..255")
    return v


def _port(t: _Table, key: str) -> PortRange:
    v = t.require(key)
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise t.error(key, f'must be a port or a range "lo-hi", not {type_name(v)}')
    if isinstance(v, int):
        lo = hi = v
    else:
        lo_text, dash, hi_text = v.strip().partition("-")
        if not lo_text.strip().isdigit() or (dash and not hi_text.strip().isdigit()):
            raise t.error(key, f'{v!r} is not a port or a range "lo-hi"')
        lo = int(lo_text)
        hi = int(hi_text) if dash else lo
    for p in (lo, hi):
        if not 0 <= p <= 65535:
            raise t.error(key, f"port {p} is out of range 0..65535")
    if lo > hi:
        raise t.error(key, f"range {lo}-{hi} is empty (lo > hi)")
    return PortRange(lo, hi)


def _signature(source: str, where: str, v: Any) -> bytes:
    if not isinstance(v, str):
        raise UserError(source, f"must be a string, not {type_name(v)}", where)
    kind, colon, body = v.partition(":")
    if colon and kind == "text" and body:
        return body.encode("utf-8")
    if colon and kind == "hex" and body:
        try:
            return bytes.fromhex(body)
        except ValueError:
            pass
    raise UserError(source, f'{v!r} is not "hex:<even hex digits>" or "text:<text>"', where)


def load_rules(
    path: str | Path, *, n_vfs: int = DEFAULT_N_VFS, max_rules: int = DEFAULT_MAX_RULES
) -> Rules:
    """Read and validate a rules file.

    Parameters
    ----------
    path : path-like
    n_vfs : int
        VF ids must be below this (the hardware's VF count).
    max_rules : int
        Rules per VF the hardware holds.

    Raises
    ------
    UserError
        Unreadable file, malformed TOML, unknown key, wrong type, or an invalid value (see the
        module docstring); the message names the file and the field.
    """
    doc = read_toml(path)
    return parse_rules(doc, str(path), n_vfs=n_vfs, max_rules=max_rules)


def parse_rules(
    doc: dict[str, Any],
    source: str = "<rules>",
    *,
    n_vfs: int = DEFAULT_N_VFS,
    max_rules: int = DEFAULT_MAX_RULES,
) -> Rules:
    """Validate a parsed TOML document (a dict) into :class:`Rules` (see :func:`load_rules`)."""
    _Table(source, doc, "", ("vf", "vmm"))
    vf_list = doc.get("vf", [])
    if not isinstance(vf_list, list):
        raise UserError(
            source, f"must be an array of tables ([[vf]]), not {type_name(vf_list)}", "vf"
        )

    vfs: list[Vf] = []
    ids: dict[int, int] = {}
    keys: dict[tuple[int, int | None], int] = {}
    for i, raw in enumerate(vf_list):
        where = f"vf[{i}]"
        t = _Table(source, raw, where, ("id", "mac", "vlan", "default", "bounce", "rules"))
        vf_id = t.int("id", 0, n_vfs - 1)
        if vf_id in ids:
            raise t.error("id", f"VF {vf_id} is already defined by vf[{ids[vf_id]}]")
        ids[vf_id] = i
        mac = _mac(t, "mac", masked=False).value
        if mac >> 40 & 1:
            raise t.error("mac", "is a group (multicast/broadcast) address; a VF needs unicast")
        vlan = t.int("vlan", 0, 4095) if t.has("vlan") else None
        if (mac, vlan) in keys:
            raise t.error("mac", f"MAC and VLAN are already used by vf[{keys[mac, vlan]}]")
        keys[mac, vlan] = i
        default = t.choice("default", ACTIONS) if t.has("default") else "pass"
        bounce = t.bool("bounce") if t.has("bounce") else False
        raw_rules = raw.get("rules", [])
        if not isinstance(raw_rules, list):
            raise t.error(
                "rules", f"must be an array of tables ([[vf.rules]]), not {type_name(raw_rules)}"
            )
        if len(raw_rules) > max_rules:
            raise UserError(
                source,
                f"VF {vf_id} has {len(raw_rules)} rules; the hardware holds {max_rules}",
                f"{where}.rules[{max_rules}]",
            )
        rules = tuple(_rule(source, f"{where}.rules[{j}]", r) for j, r in enumerate(raw_rules))
        vfs.append(Vf(vf_id, mac, vlan, default, bounce, rules))

    vmm = _vmm(source, doc["vmm"]) if "vmm" in doc else VmmConfig()
    return Rules(tuple(vfs), n_vfs, max_rules, vmm, source)


def _rule(source: str, where: str, raw: Any) -> Rule:
    t = _Table(source, raw, where, RULE_FIELDS)
    r: dict[str, Any] = {"action": t.choice("action", ACTIONS)}
    for key in ("src_mac", "dst_mac"):
        if t.has(key):
            r[key] = _mac(t, key, masked=True)
    if t.has("ethertype"):
        r["ethertype"] = t.int("ethertype", 0, 0xFFFF)
    if t.has("vlan"):
        r["vlan"] = t.int("vlan", 0, 4095)
    for key in ("src_ip", "dst_ip"):
        if t.has(key):
            r[key] = _ip(t, key)
    if "src_ip" in r and "dst_ip" in r and r["src_ip"].version != r["dst_ip"].version:
        raise t.error(
            "dst_ip", f"is IPv{r['dst_ip'].version} but src_ip is IPv{r['src_ip'].version}"
        )
    if t.has("proto"):
        r["proto"] = _proto(t, "proto")
    for key in ("src_port", "dst_port"):
        if t.has(key):
            r[key] = _port(t, key)
    return Rule(**r)


def _vmm(source: str, raw: Any) -> VmmConfig:
    t = _Table(source, raw, "vmm", ("conn_timeout_s", "rate", "burst", "signatures"))
    timeout = t.number("conn_timeout_s") if t.has("conn_timeout_s") else 60.0
    rate = t.number("rate") if t.has("rate") else None
    if t.has("burst"):
        burst = t.int("burst", 1, 1 << 32)
    else:
        burst = max(1, math.ceil(rate)) if rate is not None else 1
    sigs = raw.get("signatures", [])
    if not isinstance(sigs, list):
        raise t.error("signatures", f"must be an array of strings, not {type_name(sigs)}")
    patterns = tuple(_signature(source, f"vmm.signatures[{k}]", s) for k, s in enumerate(sigs))
    return VmmConfig(timeout, rate, burst, patterns, tuple(sigs))


# ---- writing -------------------------------------------------------------------------------------


def format_mac(mac: int) -> str:
    """``aa:bb:cc:dd:ee:ff`` for a 48-bit integer."""
    return ":".join(f"{b:02x}" for b in mac.to_bytes(6, "big"))


def _mac_text(m: MacMatch) -> str:
    return (
        format_mac(m.value) if m.mask == _MAC_ALL else f"{format_mac(m.value)}/{format_mac(m.mask)}"
    )


def _ip_text(m: IpMatch) -> str:
    addr = ipaddress.IPv4Address(m.addr) if m.version == 4 else ipaddress.IPv6Address(m.addr)
    return f"{addr}/{m.plen}"


def _port_text(p: PortRange) -> str:
    return str(p.lo) if p.lo == p.hi else f'"{p.lo}-{p.hi}"'


def _num(v: float) -> str:
    return repr(int(v)) if v == int(v) else repr(v)


def rules_to_toml(rules: Rules, *, comment: str | None = None) -> str:
    """The TOML text of ``rules``; :func:`load_rules` reads it back equal."""
    out: list[str] = [f"# {line}" for line in comment.splitlines()] if comment else []
    for vf in rules.vfs:
        out += ["", "[[vf]]", f"id = {vf.id}", f'mac = "{format_mac(vf.mac)}"']
        if vf.vlan is not None:
            out.append(f"vlan = {vf.vlan}")
        out += [f'default = "{vf.default}"', f"bounce = {'true' if vf.bounce else 'false'}"]
        for r in vf.rules:
            out += ["", "[[vf.rules]]", f'action = "{r.action}"']
            for key in ("src_mac", "dst_mac"):
                if (m := getattr(r, key)) is not None:
                    out.append(f'{key} = "{_mac_text(m)}"')
            if r.ethertype is not None:
                out.append(f"ethertype = 0x{r.ethertype:04x}")
            if r.vlan is not None:
                out.append(f"vlan = {r.vlan}")
            for key in ("src_ip", "dst_ip"):
                if (ip := getattr(r, key)) is not None:
                    out.append(f'{key} = "{_ip_text(ip)}"')
            if r.proto is not None:
                out.append(
                    f'proto = "{_PROTO_STR[r.proto]}"'
                    if r.proto in _PROTO_STR
                    else f"proto = {r.proto}"
                )
            for key in ("src_port", "dst_port"):
                if (p := getattr(r, key)) is not None:
                    out.append(f"{key} = {_port_text(p)}")
    c = rules.vmm
    if c != VmmConfig():
        out += ["", "[vmm]", f"conn_timeout_s = {_num(c.conn_timeout_s)}"]
        if c.rate is not None:
            out.append(f"rate = {_num(c.rate)}")
        out.append(f"burst = {c.burst}")
        if c.signature_text:
            out.append("signatures = [" + ", ".join(_toml_str(s) for s in c.signature_text) + "]")
    return "\n".join(out).lstrip("\n") + "\n"


def _toml_str(s: str) -> str:
    escaped = s.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in escaped) + '"'


# ---- random rules for tests ----------------------------------------------------------------------

#: Address pools the traffic generator also draws from, so random rules and traffic meet.
V4_POOLS = (0x0A000000, 0xC0A80100, 0xAC100000)  # 10.0.0.0, 192.168.1.0, 172.16.0.0
V6_POOLS = (0xFD00 << 112, 0x20010DB8 << 96)  # fd00::, 2001:db8::
PORTS = (22, 53, 80, 443, 1234, 8080)
ETHERTYPES = (0x0800, 0x86DD, 0x0806, 0x88CC)


def vf_mac(vf_id: int) -> int:
    """The MAC :func:`random_rules` gives VF ``vf_id``."""
    return 0x020000000010 + vf_id


def _random_rule(rng: random.Random, vf_vlan: int | None) -> Rule:
    r: dict[str, Any] = {"action": rng.choice(ACTIONS)}
    if rng.random() < 0.15:
        r["src_mac"] = rng.choice(
            [MacMatch(0x020000000000, 0xFFFFFF000000), MacMatch(0x0200000000AA)]
        )
    if rng.random() < 0.2:
        r["ethertype"] = rng.choice(ETHERTYPES)
    if rng.random() < 0.1:
        r["vlan"] = rng.choice([vf_vlan if vf_vlan is not None else 5, 5, 7])
    version = rng.choice((4, 6))
    for key in ("src_ip", "dst_ip"):
        if rng.random() < 0.35:
            if version == 4:
                plen = rng.choice((8, 16, 24, 32))
                base = rng.choice(V4_POOLS) | rng.randrange(1 << 8)
                mask = ((1 << plen) - 1) << (32 - plen)
            else:
                plen = rng.choice((16, 32, 64, 128))
                base = rng.choice(V6_POOLS) | rng.randrange(1 << 8)
                mask = ((1 << plen) - 1) << (128 - plen)
            r[key] = IpMatch(version, base & mask, plen)
    if rng.random() < 0.4:
        r["proto"] = rng.choice((PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_ICMPV6, 47))
    for key in ("src_port", "dst_port"):
        if rng.random() < 0.3:
            if rng.random() < 0.5:
                p = rng.choice(PORTS)
                r[key] = PortRange(p, p)
            else:
                lo = rng.choice((0, 1024, 80, 443))
                r[key] = PortRange(lo, rng.choice((lo, 1023, 8080, 65535)) if lo <= 1023 else 65535)
    return Rule(**r)


def random_rules(
    rng: random.Random,
    n_vfs: int = DEFAULT_N_VFS,
    max_rules: int = DEFAULT_MAX_RULES,
    *,
    vmm: VmmConfig | None = None,
) -> Rules:
    """A random valid rules set: every VF present, with random VLANs, defaults and rules.

    VF ``i`` gets MAC :func:`vf_mac` ``(i)``; rule fields are drawn from small pools shared with
    :mod:`models.nic.traffic` so that rules actually hit.
    """
    vfs = []
    for i in range(n_vfs):
        vlan = rng.choice((None, None, 100 + i, 5))
        rules = tuple(_random_rule(rng, vlan) for _ in range(rng.randrange(max_rules + 1)))
        vfs.append(Vf(i, vf_mac(i), vlan, rng.choice(ACTIONS), rng.random() < 0.5, rules))
    return Rules(tuple(vfs), n_vfs, max_rules, vmm or VmmConfig())
