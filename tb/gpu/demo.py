"""``make demo`` (GPU part): a command workload (``examples/gpu/demo.toml``: frames drawn by
blits, stores and PIPE_CONTROLs) checkpointed to a secondary with the dirty tracker RTL on
Verilator tracking the GPU's writes, and the primary failing in the middle of a checkpoint's
transfer. Prints the run as a timeline, checks it against the same run over the tracker model,
and writes it to ``build/demo/gpu/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from models.gpu.run import run_model, write_outputs
from models.gpu.workload_file import load_workload
from vmassist.toolchain import use_project_tools, waves_from_env

from ..common.runner import REPO
from .run import run_workload

WORKLOAD = REPO / "examples" / "gpu" / "demo.toml"
#: Fields every event has, shown in the time columns rather than among the details.
_COMMON = ("event", "t", "gpu", "generation")


def _us(cycles: int) -> str:
    return f"{cycles / 1000:10.3f}"  # the GPU's 1 GHz clock


def describe(e: dict) -> str:
    """One event as a line of the timeline."""
    kind = e["event"]
    rest = {k: v for k, v in e.items() if k not in _COMMON}
    if kind == "submit":
        what = (
            f"submission {rest['submission']}: {rest['commands']} commands scanned, "
            f"predicted {rest['predicted']} cycles"
        )
    elif kind == "run":
        first, last = rest["commands"]
        what = f"  GPU runs commands {first}..{last - 1} in {rest['cycles']} cycles"
    elif kind == "precopy":
        what = f"  live pre-copy for checkpoint {rest['checkpoint']}: {rest['pages']} pages"
    elif kind == "checkpoint":
        phase = rest.pop("phase")
        n = rest.pop("checkpoint")
        what = f"CHECKPOINT {n} {phase:9s} " + " ".join(f"{k}={v}" for k, v in rest.items())
    elif kind == "failover":
        where = rest["at"] if rest.get("phase") is None else f"checkpoint {rest['phase']}"
        what = f"*** PRIMARY FAILS ({where}) " + " ".join(
            f"{k}={v}" for k, v in rest.items() if k not in ("at", "phase")
        )
    elif kind == "restore":
        ok = "verified equal" if rest["verified"] else "**NOT EQUAL**"
        what = f"*** secondary restores checkpoint {rest['checkpoint']}: memory and vGPU {ok}"
    elif kind == "resume":
        what = f"*** secondary resumes at submission {rest['submission']}"
    else:
        what = f"{kind} " + " ".join(f"{k}={v}" for k, v in rest.items())
    return f"{_us(e['t'])} {_us(e['gpu'])}  {e['generation']:3d}  {what}"


def render(timeline: list[dict], summary: dict, same: bool, out: Path, sim: str) -> str:
    lines = [
        f"GPU demo: vGPU checkpointing with the dirty tracker RTL on {sim.capitalize()}",
        f"workload {WORKLOAD.relative_to(REPO)}, outputs in {out}",
        "",
        f"{'wall µs':>10} {'GPU µs':>10}  gen  event",
    ]
    lines += [describe(e) for e in timeline]
    fo = summary["failovers"]
    lines += [
        "",
        f"checkpoints: {summary['checkpoints']}; pages sent in downtime "
        f"{summary['downtime_pages']} against {summary['baseline_full_pages']} for "
        f"stop-and-copy ({summary['reduction_vs_full_pct']:.1f} % fewer); prediction precision "
        f"{summary['precision']['mean']:.3f}, recall {summary['recall']:.3f}",
        f"failovers: {fo['verified']} of {fo['injected']} verified",
        "tracker RTL against the tracker model: "
        + ("identical run" if same else "**the runs differ**"),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tb.gpu.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim", choices=("icarus", "verilator"), default="verilator")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "demo" / "gpu")
    args = ap.parse_args(argv)
    use_project_tools()
    model = args.out / "model"
    write_outputs(run_model(load_workload(WORKLOAD)), model)
    rtl = args.out / args.sim
    run_workload(WORKLOAD, rtl, sim=args.sim, waves=waves_from_env())
    files = ("checkpoints.jsonl", "timeline.jsonl", "summary.json")
    same = all((model / f).read_text() == (rtl / f).read_text() for f in files)
    timeline = [json.loads(line) for line in (rtl / "timeline.jsonl").read_text().splitlines()]
    summary = json.loads((rtl / "summary.json").read_text())
    print(render(timeline, summary, same, rtl, args.sim), end="")
    fo = summary["failovers"]
    return 0 if same and fo["verified"] == fo["injected"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
