"""The NIC filter's decision for one parsed frame: malformed check, steering, rules, bounce.

This is what the hardware does per frame (``docs/nic.md``, "Contract"), plus the counters it
keeps, so that the RTL's verdicts and counter registers can be compared with the model's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .parse import Parsed
from .rules import Rule, Rules, Vf

__all__ = [
    "Verdict",
    "Counters",
    "VERDICTS",
    "Steering",
    "rule_matches",
    "judge",
]

VERDICTS = ("pass", "block", "bounce", "unknown", "malformed")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The filter's decision for one frame.

    Members
    -------
    verdict : str
        pass | block | bounce | unknown | malformed.
    vf : int or None
        The VF the frame was steered to (None for unknown and malformed).
    rule : int or None
        Index of the deciding rule in that VF's list; None when the default decided.
    queue : str
        ``vf<N>`` | ``vmm`` | ``drop``.
    """

    verdict: str
    vf: int | None
    rule: int | None
    queue: str

    def as_dict(self, index: int) -> dict[str, object]:
        """The ``verdicts.jsonl`` object for input frame ``index``."""
        return {
            "index": index,
            "verdict": self.verdict,
            "vf": self.vf,
            "rule": self.rule,
            "queue": self.queue,
        }


_MALFORMED = Verdict("malformed", None, None, "vmm")
_UNKNOWN = Verdict("unknown", None, None, "vmm")


class Steering:
    """(dst MAC, outer VID) -> VF lookup built once from a rules set."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.table: dict[tuple[int, int | None], Vf] = {(v.mac, v.vlan): v for v in rules.vfs}

    def lookup(self, p: Parsed) -> Vf | None:
        """The VF the frame belongs to, or None (group address or no such (MAC, VLAN))."""
        if p.dst >> 40 & 1:  # I/G bit of the first byte: multicast and broadcast
            return None
        return self.table.get((p.dst, p.outer_vid))


def rule_matches(r: Rule, p: Parsed) -> bool:
    """Whether every field ``r`` gives matches the parsed frame ``p``."""
    if r.src_mac is not None and not r.src_mac.matches(p.src):
        return False
    if r.dst_mac is not None and not r.dst_mac.matches(p.dst):
        return False
    if r.ethertype is not None and p.ethertype != r.ethertype:
        return False
    if r.vlan is not None and p.inner_vid != r.vlan:  # untagged: inner_vid None never matches
        return False
    if r.src_ip is not None and not r.src_ip.matches(p.ip_version, p.src_ip):
        return False
    if r.dst_ip is not None and not r.dst_ip.matches(p.ip_version, p.dst_ip):
        return False
    if r.proto is not None and p.proto != r.proto:
        return False
    if r.src_port is not None and not r.src_port.matches(p.sport):
        return False
    return r.dst_port is None or r.dst_port.matches(p.dport)


@dataclass
class Counters:
    """The counters the hardware keeps, updated by :func:`judge`.

    Members
    -------
    rule_hits : dict of int to list of int
        Per VF id, hits per rule index (a hit is a rule that decided a frame).
    passed, blocked, bounced, dropped : dict of int to int
        Per VF id. ``blocked`` counts every frame a rule or the default blocked; of those,
        ``bounced`` went to the VMM queue and ``dropped`` were discarded (verdict ``block``).
    unknown, malformed : int
    """

    rule_hits: dict[int, list[int]] = field(default_factory=dict)
    passed: dict[int, int] = field(default_factory=dict)
    blocked: dict[int, int] = field(default_factory=dict)
    bounced: dict[int, int] = field(default_factory=dict)
    dropped: dict[int, int] = field(default_factory=dict)
    unknown: int = 0
    malformed: int = 0

    @classmethod
    def for_rules(cls, rules: Rules) -> Counters:
        """All counters of ``rules``' VFs at zero."""
        c = cls()
        for v in range(rules.n_vfs):
            vf = rules.vf(v)
            c.rule_hits[v] = [0] * (len(vf.rules) if vf else 0)
            for d in (c.passed, c.blocked, c.bounced, c.dropped):
                d[v] = 0
        return c

    def count(self, v: Verdict) -> None:
        """Count one verdict."""
        if v.verdict == "malformed":
            self.malformed += 1
            return
        if v.verdict == "unknown":
            self.unknown += 1
            return
        assert v.vf is not None
        if v.rule is not None:
            hits = self.rule_hits.setdefault(v.vf, [])
            hits.extend([0] * (v.rule + 1 - len(hits)))
            hits[v.rule] += 1
        if v.verdict == "pass":
            self.passed[v.vf] = self.passed.get(v.vf, 0) + 1
            return
        self.blocked[v.vf] = self.blocked.get(v.vf, 0) + 1
        which = self.bounced if v.verdict == "bounce" else self.dropped
        which[v.vf] = which.get(v.vf, 0) + 1

    @classmethod
    def from_dict(cls, d: dict) -> Counters:
        """The inverse of :meth:`as_dict`."""

        def per_vf(key):
            return {int(k): v for k, v in d[key].items()}

        return cls(
            rule_hits={int(k): list(v) for k, v in d["rule_hits"].items()},
            passed=per_vf("pass"),
            blocked=per_vf("block"),
            bounced=per_vf("bounce"),
            dropped=per_vf("drop"),
            unknown=d["unknown"],
            malformed=d["malformed"],
        )

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view (VF ids as string keys)."""
        return {
            "rule_hits": {str(k): v for k, v in sorted(self.rule_hits.items())},
            "pass": {str(k): v for k, v in sorted(self.passed.items())},
            "block": {str(k): v for k, v in sorted(self.blocked.items())},
            "bounce": {str(k): v for k, v in sorted(self.bounced.items())},
            "drop": {str(k): v for k, v in sorted(self.dropped.items())},
            "unknown": self.unknown,
            "malformed": self.malformed,
        }


def judge(rules: Rules | Steering, parsed: Parsed, counters: Counters | None = None) -> Verdict:
    """Decide one frame as the hardware does.

    Parameters
    ----------
    rules : Rules or Steering
        The rules set (pass a :class:`Steering` built once to judge many frames quickly).
    parsed : Parsed
        The frame, from :func:`models.nic.parse.parse`.
    counters : Counters, optional
        Updated with the verdict.

    Returns
    -------
    Verdict
        Malformed first; then steering (group address or no VF with that (MAC, outer VID):
        unknown); then the VF's rules, first match wins, else the VF's default. A pass goes to
        the VF's queue; a block is bounced to the VMM queue when the VF's bounce is on, else
        dropped.
    """
    steer = rules if isinstance(rules, Steering) else Steering(rules)
    if parsed.malformed is not None:
        v = _MALFORMED
    elif (vf := steer.lookup(parsed)) is None:
        v = _UNKNOWN
    else:
        action, index = vf.default, None
        for i, r in enumerate(vf.rules):
            if rule_matches(r, parsed):
                action, index = r.action, i
                break
        if action == "pass":
            v = Verdict("pass", vf.id, index, f"vf{vf.id}")
        elif vf.bounce:
            v = Verdict("bounce", vf.id, index, "vmm")
        else:
            v = Verdict("block", vf.id, index, "drop")
    if counters is not None:
        counters.count(v)
    return v
