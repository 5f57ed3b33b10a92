"""``make demo`` (MMU part): a VM runs on Verilator in EPT mode; the VMM switches to shadow
paging mid-run; the guest rewrites its page tables and takes WP faults; injected TLB faults are
caught by runtime verification; then back to EPT mode. Prints a readable summary, writes the
run's outputs to ``build/demo/mmu/`` and, with ``WAVES=1``, an FST.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.vmm.run import run_model, write_outputs
from models.vmm.scenario import AccessOp, SwitchOp, scenario_to_toml
from models.vmm.workload import demo_scenario, summarize
from vmassist.toolchain import use_project_tools, waves_from_env

from ..common.runner import REPO
from .run import run_hw


def _phases(scenario, result):
    """Split the accesses at the mode switches: (mode, results)."""
    phases, mode, current = [], scenario.mode, []
    it = iter(result.results)
    for op in scenario.ops:
        if isinstance(op, SwitchOp):
            phases.append((mode, current))
            mode, current = op.mode, []
        elif isinstance(op, AccessOp):
            current.append(next(it))
    phases.append((mode, current))
    return [p for p in phases if p[1]]


def render(scenario, result, model_ok: bool, sim: str, out: Path, waves: Path | None) -> str:
    s = summarize(scenario, result)
    c = result.counters
    det = s["detection"]
    rows = []
    for mode, res in _phases(scenario, result):
        hits = sum(r["hit"] for r in res)
        misses = [r for r in res if not r["hit"]]
        refs = sum(r["walk_reads"] for r in misses) / len(misses) if misses else 0.0
        faults = sum(1 for r in res if r["fault"])
        cyc = sum(r["cycles"] for r in res) / len(res)
        rows.append(
            f"  {mode:<8} {len(res):>8} {hits / len(res):>9.1%} {refs:>10.2f} {cyc:>8.1f}"
            f" {faults:>7}"
        )
    ev = s["events"]
    lat = ", ".join(
        f"{a} access{'es' if a != 1 else ''} / {cy} cycles"
        for a, cy in zip(
            det["latency_accesses"],
            det["latency_cycles"] or [None] * len(det["latency_accesses"]),
            strict=True,
        )
    )
    masked = det["injected"] - det["activated"]
    rate = f"{det['rate']:.0%}" if det["rate"] is not None else "n/a"
    lines = [
        f"vmassist demo: MMU with runtime EPT <-> shadow switching ({sim})",
        f"  scenario  {out / 'scenario.toml'}  ({s['accesses']} guest accesses)",
        "",
        "  phase    accesses  hit rate  refs/miss  cyc/xl  faults",
        *rows,
        "",
        f"  TLB        {c['HITS']} hits, {c['MISSES']} misses ({s['hit_rate']:.1%} hit rate), "
        f"{s['refs_per_miss']:.2f} memory reads per miss, {c['PWC_HITS']} page-walk-cache hits",
        f"  faults     {s['faults'] or 'none'} delivered to the guest",
        f"  guest PTE  {ev.get('pte_write', 0)} writes -> {c['WP_FAULTS']} WP faults, "
        f"{c['FLUSHED']} TLB entries flushed, {ev.get('shadow_pf', 0)} shadow faults resolved",
        f"  runtime    {det['injected']} TLB faults injected, {det['activated']} activated, "
        f"{det['detected']} caught by runtime verification ({rate}); latency {lat}"
        + (f"; {masked} never used before replacement, so harmless" if masked else ""),
        f"  model      architectural results {'IDENTICAL to' if model_ok else 'DIFFER from'} "
        "the golden model's",
        f"  outputs    {out}/results.jsonl, events.jsonl, counters.json"
        + (f"; waves {waves}" if waves else "; WAVES=1 for an FST"),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tb.mmu.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim", default="verilator", choices=("verilator", "icarus"))
    ap.add_argument("--out", type=Path, default=REPO / "build" / "demo" / "mmu")
    args = ap.parse_args(argv)
    use_project_tools()
    waves = waves_from_env()
    scenario = demo_scenario()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scenario.toml").write_text(
        scenario_to_toml(
            scenario,
            comment="The MMU demo VM (python -m tb.mmu.demo). Replay: vmassist mmu run "
            "--scenario build/demo/mmu/scenario.toml --sim verilator --out out/demo",
        )
    )
    result = run_hw(
        scenario, sim=args.sim, waves=waves, p_pause=0.2, build_root=REPO / "build" / "demo" / "sim"
    )
    model = run_model(scenario)
    model_ok = result.arch() == model.arch()
    write_outputs(result, args.out)
    fst = sorted((REPO / "build" / "demo" / "sim").glob("**/*.fst")) if waves else []
    print(render(scenario, result, model_ok, args.sim, args.out, fst[0] if fst else None))
    return 0 if model_ok else 1


if __name__ == "__main__":
    sys.exit(main())
