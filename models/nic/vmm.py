"""The VMM's complex software filter, run on frames the NIC bounced (verdict ``bounce``).

It is stateful. In order, for each bounced frame:

1. **signatures**: a configured byte string found in the frame's L4 payload drops it
   (reason ``signature``);
2. **rate**: a token bucket per source (the source IP, or the source MAC for a non-IP frame) of
   ``rate`` frames/s and depth ``burst``, over the capture's timestamps; an empty bucket drops
   (reason ``rate``);
3. **connection tracking**: a frame that is the reply direction of a connection a VM opened
   (seen by :meth:`VmmFilter.egress`: TCP/UDP 5-tuple, or ICMP/ICMPv6 echo id) is re-injected to
   its VF (reason ``reply``); anything else is dropped (reason ``policy``). A TCP FIN or RST from
   either side closes the connection (the closing reply itself is still re-injected); a
   connection idle for longer than ``conn_timeout_s`` is forgotten.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .filter import Verdict
from .parse import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, Parsed, parse
from .rules import VmmConfig

__all__ = ["Decision", "VmmFilter", "ConnKey", "share", "bench_filter"]

ConnKey = tuple[int, int, int, int, int, int]
"""(ip_version, proto, local ip, local port or echo id, remote ip, remote port or 0)."""

_ECHO_REQUEST = {PROTO_ICMP: 8, PROTO_ICMPV6: 128}
_ECHO_REPLY = {PROTO_ICMP: 0, PROTO_ICMPV6: 129}
_TCP_FIN_RST = 0x05


@dataclass(frozen=True, slots=True)
class Decision:
    """The software filter's decision for one bounced frame.

    Members
    -------
    action : str
        ``reinject`` (back to ``vf``) or ``drop``.
    reason : str
        ``reply`` for a re-injected frame; ``signature``, ``rate`` or ``policy`` for a drop.
    vf : int or None
        The VF the NIC steered the frame to.
    """

    action: str
    reason: str
    vf: int | None


class VmmFilter:
    """The stateful software filter.

    Parameters
    ----------
    config : VmmConfig
        Timeout, rate, burst and signatures (the rules file's ``[vmm]`` table).

    Members
    -------
    conns : dict of ConnKey to int
        Tracked connections (keyed from the VM's side) and their last activity in ns.
    stats : dict of str to int
        Decisions by reason.
    """

    def __init__(self, config: VmmConfig | None = None) -> None:
        self.config = config or VmmConfig()
        self.conns: dict[ConnKey, int] = {}
        self._buckets: dict[tuple[int | None, int], tuple[float, int]] = {}
        self.stats: dict[str, int] = {"reply": 0, "signature": 0, "rate": 0, "policy": 0}

    # -- connection keys ---------------------------------------------------------------------------

    @staticmethod
    def _key(frame: bytes, p: Parsed, *, outbound: bool) -> tuple[ConnKey, bool] | None:
        """The connection key of a frame seen from the VM's side, and whether it closes it."""
        if p.malformed or p.ip_version is None or not p.first_frag or p.fragment:
            return None
        assert p.src_ip is not None and p.dst_ip is not None and p.proto is not None
        local, remote = (p.src_ip, p.dst_ip) if outbound else (p.dst_ip, p.src_ip)
        if p.proto in (PROTO_TCP, PROTO_UDP) and p.sport is not None and p.dport is not None:
            lport, rport = (p.sport, p.dport) if outbound else (p.dport, p.sport)
            closes = False
            if p.proto == PROTO_TCP:
                closes = bool(frame[p.l4_offset + 13] & _TCP_FIN_RST)
            return (p.ip_version, p.proto, local, lport, remote, rport), closes
        icmp = _ECHO_REQUEST if outbound else _ECHO_REPLY
        if p.proto in icmp and (p.proto == PROTO_ICMP) == (p.ip_version == 4):
            start = p.l4_offset  # type, code, checksum, then the echo id and sequence
            if p.payload_length >= 4 and frame[start] == icmp[p.proto]:
                echo_id = (frame[start + 4] << 8) | frame[start + 5]
                return (p.ip_version, p.proto, local, echo_id, remote, 0), False
        return None

    # -- the VM's own traffic ----------------------------------------------------------------------

    def egress(self, frame: bytes, ts_ns: int) -> None:
        """Record a frame a VM sent: it opens or refreshes a connection (FIN/RST: closes it)."""
        p = parse(frame)
        found = self._key(frame, p, outbound=True)
        if found is None:
            return
        key, closes = found
        if closes:
            self.conns.pop(key, None)
        else:
            self.conns[key] = ts_ns

    # -- bounced frames ----------------------------------------------------------------------------

    def _rate_ok(self, p: Parsed, ts_ns: int) -> bool:
        rate = self.config.rate
        if rate is None:
            return True
        source = (p.ip_version, p.src_ip if p.ip_version is not None else p.src)
        burst = float(self.config.burst)
        tokens, last = self._buckets.get(source, (burst, ts_ns))
        tokens = min(burst, tokens + max(0, ts_ns - last) * rate / 1e9)
        ok = tokens >= 1.0
        self._buckets[source] = (tokens - 1.0 if ok else tokens, ts_ns)
        return ok

    def decide(self, frame: bytes, ts_ns: int, verdict: Verdict) -> Decision:
        """Decide one bounced frame.

        Raises
        ------
        ValueError
            ``verdict`` is not a bounce (only bounced frames reach this filter).
        """
        if verdict.verdict != "bounce":
            raise ValueError(f"the software filter takes bounced frames, not {verdict.verdict}")
        p = parse(frame)
        reason = self._reason(frame, p, ts_ns)
        self.stats[reason] += 1
        return Decision("reinject" if reason == "reply" else "drop", reason, verdict.vf)

    def _reason(self, frame: bytes, p: Parsed, ts_ns: int) -> str:
        payload = frame[p.payload_offset : p.payload_offset + p.payload_length]
        if any(sig in payload for sig in self.config.signatures):
            return "signature"
        if not self._rate_ok(p, ts_ns):
            return "rate"
        found = self._key(frame, p, outbound=False)
        if found is None:
            return "policy"
        key, closes = found
        last = self.conns.get(key)
        if last is None:
            return "policy"
        if ts_ns - last > self.config.conn_timeout_s * 1e9:
            del self.conns[key]
            return "policy"
        if closes:
            del self.conns[key]
        else:
            self.conns[key] = ts_ns
        return "reply"


def share(verdicts: Iterable[Verdict]) -> dict[str, object]:
    """How much traffic the hardware decided alone and how much it bounced to software.

    Returns
    -------
    dict
        ``frames``; ``hardware`` (pass, block, unknown, malformed) and ``software`` (bounce)
        counts and ``hardware_pct`` / ``software_pct``; ``by_verdict`` counts.
    """
    by = {v: 0 for v in ("pass", "block", "bounce", "unknown", "malformed")}
    for v in verdicts:
        by[v.verdict] += 1
    total = sum(by.values())
    sw = by["bounce"]
    hw = total - sw
    return {
        "frames": total,
        "hardware": hw,
        "software": sw,
        "hardware_pct": 100.0 * hw / total if total else 0.0,
        "software_pct": 100.0 * sw / total if total else 0.0,
        "by_verdict": by,
    }


def bench_filter(
    config: VmmConfig,
    bounced: Sequence[tuple[int, bytes, Verdict]],
    *,
    min_seconds: float = 0.2,
) -> float:
    """Frames per second of :meth:`VmmFilter.decide` over ``bounced`` (repeated until
    ``min_seconds`` have passed, with a fresh filter each pass)."""
    if not bounced:
        raise ValueError("no bounced frames to measure")
    frames = 0
    start = time.perf_counter()
    while True:
        f = VmmFilter(config)
        for ts, data, v in bounced:
            f.decide(data, ts, v)
        frames += len(bounced)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return frames / elapsed
