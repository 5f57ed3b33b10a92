"""The model's rules and verdicts in the hardware's encodings (``vmassist.formats.nic``): what a
driver writes to the VF table and rule memory, and how a hardware decision reads back.

The layouts themselves are the Amaranth structs of ``vmassist.formats.nic``; this module only
fills their fields, so nothing here re-derives a bit position.
"""

from __future__ import annotations

from vmassist.formats.nic import Action, VerdictCode

from .filter import Verdict
from .rules import Rule, Vf

__all__ = ["vf_row", "rule_row", "pack", "decision_fields", "verdict_from_decision"]

_ACTION = {"pass": Action.PASS, "block": Action.BLOCK}
_VERDICT = {
    "pass": VerdictCode.PASS,
    "block": VerdictCode.BLOCK,
    "bounce": VerdictCode.BOUNCE,
    "unknown": VerdictCode.UNKNOWN,
    "malformed": VerdictCode.MALFORMED,
}
_VERDICT_NAME = {code: name for name, code in _VERDICT.items()}
_MAC_ALL = (1 << 48) - 1


def vf_row(vf: Vf | None) -> dict[str, int]:
    """The :class:`~vmassist.formats.nic.VfEntry` fields of ``vf`` (None: an invalid row)."""
    if vf is None:
        return {"valid": 0}
    return {
        "valid": 1,
        "mac": vf.mac,
        "vlan_en": int(vf.vlan is not None),
        "vlan": vf.vlan or 0,
        "default": _ACTION[vf.default],
        "bounce": int(vf.bounce),
    }


def rule_row(rule: Rule | None) -> dict[str, int]:
    """The :class:`~vmassist.formats.nic.RuleEntry` fields of ``rule`` (None: an invalid row,
    which never matches)."""
    if rule is None:
        return {"valid": 0}
    f: dict[str, int] = {"valid": 1, "action": _ACTION[rule.action]}
    # A MAC field always compares under its mask; an omitted one has mask 0 (matches anything).
    for name, mac in (("src_mac", rule.src_mac), ("dst_mac", rule.dst_mac)):
        if mac is not None:
            f[name], f[f"{name}_mask"] = mac.value & mac.mask, mac.mask & _MAC_ALL
    if rule.ethertype is not None:
        f["ethertype_en"], f["ethertype"] = 1, rule.ethertype
    if rule.vlan is not None:
        f["vlan_en"], f["vlan"] = 1, rule.vlan
    for name, ip in (("src_ip", rule.src_ip), ("dst_ip", rule.dst_ip)):
        if ip is not None:
            f[f"{name}_en"], f[name], f[f"{name}_mask"] = 1, ip.addr & ip.mask, ip.mask
            f["v6"] = int(ip.version == 6)
    if rule.proto is not None:
        f["proto_en"], f["proto"] = 1, rule.proto
    for name, rng in (("sport", rule.src_port), ("dport", rule.dst_port)):
        if rng is not None:
            f[f"{name}_en"], f[f"{name}_lo"], f[f"{name}_hi"] = 1, rng.lo, rng.hi
    return f


def pack(layout, fields: dict[str, int]) -> int:
    """The integer value of a struct of ``layout`` with ``fields`` (others zero)."""
    return layout.const(fields).as_value().value


def decision_fields(v: Verdict) -> dict[str, int]:
    """The :class:`~vmassist.formats.nic.Decision` the hardware must produce for the model's
    verdict ``v``."""
    return {
        "verdict": _VERDICT[v.verdict],
        "vf_valid": int(v.vf is not None),
        "vf": v.vf or 0,
        "rule_valid": int(v.rule is not None),
        "rule": v.rule or 0,
    }


def verdict_from_decision(fields: dict[str, int]) -> Verdict:
    """The :class:`~models.nic.filter.Verdict` a hardware decision denotes."""
    name = _VERDICT_NAME[VerdictCode(fields["verdict"])]
    vf = fields["vf"] if fields["vf_valid"] else None
    rule = fields["rule"] if fields["rule_valid"] else None
    queue = {"pass": f"vf{vf}", "block": "drop"}.get(name, "vmm")
    return Verdict(name, vf, rule, queue)
