"""``make bench`` for the MMU: memory references per miss and cycles per translation on the
standard trace (EPT without and with the page-walk cache, and shadow), and Verilator against
Icarus simulation speed, all measured side by side in one run.

Usage: ``python -m tb.mmu.bench [--accesses N] [--out build/bench]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from hdl.mmu import MMU
from vmassist.toolchain import SIMULATORS, use_project_tools

from ..common.runner import REPO, run_cocotb

TARGETS = {"ept-cold": ("<=", 24), "ept-pwc": ("<=", 6), "shadow": ("==", 4)}
LABELS = {"ept-cold": "EPT, cold (no PWC)", "ept-pwc": "EPT + page-walk cache", "shadow": "shadow"}


def measure(sim: str, accesses: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        build_dir = REPO / "build" / "sim" / f"mmu-{sim}-e32-bench"
        run_cocotb(
            top=lambda: MMU(),
            toplevel="mmu",
            test_module="tb.mmu.bench_cosim",
            sim=sim,
            build_dir=build_dir,
            waves=False,
            log_file=build_dir / "sim.log",
            extra_env={"BENCH_OUT": str(out), "BENCH_ACCESSES": str(accesses)},
        )
        return json.loads(out.read_text())


def _meets(value: float, target: tuple[str, float]) -> bool:
    op, bound = target
    return value <= bound if op == "<=" else abs(value - bound) < 0.05


def render(data: dict[str, dict], accesses: int) -> str:
    ref = data["verilator"]
    lines = [
        f"## MMU benchmark: standard trace ({accesses} accesses, 128 pages, 32-entry TLB, "
        "8-entry PWC, ideal AXI memory)",
        "",
        "| configuration | refs / miss | target | met | cycles / translation | hit rate | misses |",
        "|---|---|---|---|---|---|---|",
    ]
    for config, (op, bound) in TARGETS.items():
        s = ref[config]
        ok = _meets(s["refs_per_miss"], (op, bound))
        lines.append(
            f"| {LABELS[config]} | {s['refs_per_miss']:.2f} | {op} {bound} "
            f"| {'yes' if ok else 'NO'} "
            f"| {s['cycles_per_translation']:.1f} | {s['hit_rate']:.3f} | {s['misses']} |"
        )
    wp = ref["wp"]
    lines += [
        "",
        "WP fault (guest store to a PTE a TLB entry holds -> fault answered, derived "
        "entries flushed): " + ", ".join(f"{k}: {v} cycles" for k, v in wp.items()) + ".",
    ]
    lines += ["", "| simulator | simulated cycles | wall s | kcycles / s |", "|---|---|---|---|"]
    speed = {}
    for sim in SIMULATORS:
        cycles = sum(data[sim][c]["cycles"] for c in TARGETS)
        wall = sum(data[sim][c]["wall_s"] for c in TARGETS)
        speed[sim] = cycles / wall
        lines.append(f"| {sim} | {cycles} | {wall:.2f} | {speed[sim] / 1e3:.1f} |")
    lines += [
        "",
        f"Verilator / Icarus co-simulation speed: **{speed['verilator'] / speed['icarus']:.2f}x** "
        "(cocotb, the AXI models and the VMM model run in Python in both).",
        "",
    ]
    same = all(
        data["icarus"][c]["refs_per_miss"] == ref[c]["refs_per_miss"]
        and data["icarus"][c]["cycles"] == ref[c]["cycles"]
        for c in TARGETS
    )
    lines.append(
        f"Icarus and Verilator give identical counts and cycles: {'yes' if same else 'NO'}."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tb.mmu.bench", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--accesses", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=REPO / "build" / "bench")
    args = ap.parse_args(argv)
    use_project_tools()
    data = {sim: measure(sim, args.accesses) for sim in SIMULATORS}
    report = render(data, args.accesses)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mmu.json").write_text(json.dumps(data, indent=1))
    (args.out / "mmu.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
