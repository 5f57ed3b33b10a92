"""``make demo`` (NIC part): a generated capture replayed through the NIC filter on Verilator;
the VMM's software filter judges the bounced frames and the ones it approves are re-injected
through the hardware. Prints what was passed, blocked, bounced and re-injected, checks every
decision against the golden model, and writes the run to ``build/demo/nic/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
from collections import Counter
from pathlib import Path

from models.nic.filter import Counters
from models.nic.pcap import write_pcap
from models.nic.rules import VmmConfig, random_rules, rules_to_toml
from models.nic.run import run_model, run_vmm, write_outputs
from models.nic.traffic import generate_traffic
from models.nic.vmm import share
from vmassist.toolchain import use_project_tools, waves_from_env

from ..common.runner import REPO
from .run import run_hw

#: The demo's VMM policy: a rate limit per source and one payload signature.
DEMO_VMM = VmmConfig(rate=100.0, burst=5, signatures=(b"\x5a\x5a",), signature_text=("hex:5a5a",))


def demo_setup(seed: int, frames: int):
    """The demo's rules (every VF bouncing what it blocks) and traffic."""
    rules = random_rules(random.Random(seed), vmm=DEMO_VMM)
    rules = dataclasses.replace(
        rules, vfs=tuple(dataclasses.replace(v, bounce=True) for v in rules.vfs)
    )
    return rules, generate_traffic(rules, frames, seed)


def render(rules, traffic, hw, model_ok: bool, vmm, sim: str, out: Path, waves) -> str:
    verdicts = hw.verdicts
    sh = share(verdicts)
    by = sh["by_verdict"]
    reasons = Counter(d.reason for d in vmm.values())
    rows = []
    for v in rules.vfs:
        mine = [d for d in verdicts if d.vf == v.id]
        n_pass = sum(d.verdict == "pass" for d in mine)
        n_bounce = sum(d.verdict == "bounce" for d in mine)
        rows.append(
            f"  vf{v.id}   {len(v.rules):>5}  {v.default:<7} {n_pass:>7} {n_bounce:>7}"
            f" {hw.reinjected[v.id]:>10} {len(hw.queues[f'vf{v.id}']) + hw.reinjected[v.id]:>10}"
        )
    lines = [
        f"vmassist demo: NIC cooperated packet filtering with side bounce ({sim})",
        f"  capture   {out / 'in.pcap'} ({len(traffic.records)} frames)",
        f"  rules     {out / 'rules.toml'}",
        "",
        "  VF    rules  default  passed bounced reinjected  delivered",
        *rows,
        "",
        f"  hardware  decided {sh['hardware']} of {sh['frames']} frames alone "
        f"({sh['hardware_pct']:.1f} %): {by['pass']} passed, {by['block']} blocked, "
        f"{by['unknown']} unknown and {by['malformed']} malformed to the VMM queue",
        f"  software  {by['bounce']} bounced ({sh['software_pct']:.1f} %): "
        + ", ".join(f"{k} {reasons[k]}" for k in ("reply", "signature", "rate", "policy"))
        + f"; {sum(hw.reinjected)} re-injected through the hardware to their VFs",
        f"  model     every decision {'IDENTICAL to' if model_ok else 'DIFFERS from'} "
        "the golden model's",
        f"  time      {hw.cycles} cycles at 64 bits",
        f"  outputs   {out}/verdicts.jsonl, vf<N>.pcap, vmm.pcap, dropped.pcap, counters.json"
        + (f"; waves under {waves}" if waves else "; WAVES=1 for an FST"),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tb.nic.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim", default="verilator", choices=("verilator", "icarus"))
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", type=Path, default=REPO / "build" / "demo" / "nic")
    args = ap.parse_args(argv)
    use_project_tools()
    waves = waves_from_env()
    rules, traffic = demo_setup(args.seed, args.frames)
    model = run_model(rules, traffic.records)
    vmm = run_vmm(rules, traffic.records, model, traffic.egress)
    approve = {i: d.vf for i, d in vmm.items() if d.action == "reinject"}
    sim_root = REPO / "build" / "demo" / "sim"
    hw = run_hw(
        rules, traffic.records, sim=args.sim, waves=waves, build_root=sim_root, reinject=approve
    )
    model_ok = hw.verdicts == model
    write_outputs(
        args.out, traffic.records, hw.verdicts, rules.n_vfs, Counters.from_dict(hw.counters)
    )
    (args.out / "rules.toml").write_text(
        rules_to_toml(rules, comment="The NIC demo's rules (python -m tb.nic.demo).")
    )
    write_pcap(args.out / "in.pcap", traffic.records)
    print(
        render(rules, traffic, hw, model_ok, vmm, args.sim, args.out, sim_root if waves else None)
    )
    return 0 if model_ok else 1


if __name__ == "__main__":
    sys.exit(main())
