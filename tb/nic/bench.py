"""``make bench`` for the NIC: throughput at 64 bytes and at IMIX (bits per cycle and % of the
bus), decision latency, the VMM software filter's frames/s and the hardware/software share, all
measured in one run.

Usage: ``python -m tb.nic.bench [--frames N] [--out build/bench]``
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

from hdl.nic import NicFilter
from models.nic.rules import random_rules
from models.nic.run import run_model
from models.nic.traffic import generate_traffic
from models.nic.vmm import bench_filter, share
from vmassist.toolchain import use_project_tools

from ..common.runner import REPO, results_ok, run_cocotb

WIDTH = 64


def measure_hw(frames: int) -> dict:
    dut = NicFilter(data_width=WIDTH)
    latency = dut.decision_latency(True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        build_dir = REPO / "build" / "sim" / f"nic-verilator-w{WIDTH}-bench"
        results = run_cocotb(
            top=lambda: dut,
            toplevel="nic",
            test_module="tb.nic.bench_cosim",
            sim="verilator",
            build_dir=build_dir,
            waves=False,
            log_file=build_dir / "sim.log",
            extra_env={"BENCH_OUT": str(out), "BENCH_FRAMES": str(frames), "NIC_WIDTH": str(WIDTH)},
        )
        run, failed = results_ok(results)
        if not run or failed:
            raise SystemExit(f"nic bench: the simulation failed; see {build_dir / 'sim.log'}")
        data = json.loads(out.read_text())
    data["documented_latency"] = latency
    return data


def measure_sw(frames: int) -> dict:
    rules = random_rules(random.Random(1))
    traffic = generate_traffic(rules, frames, 1)
    verdicts = run_model(rules, traffic.records)
    bounced = [
        (ts, data, v)
        for (ts, data), v in zip(traffic.records, verdicts, strict=True)
        if v.verdict == "bounce"
    ]
    return {"share": share(verdicts), "vmm_fps": bench_filter(rules.vmm, bounced, min_seconds=1.0)}


def render(hw: dict, sw: dict) -> str:
    lines = [
        f"## NIC benchmark: {WIDTH}-bit stream, 4 VFs x 16 rules, tvalid held high, every sink "
        "ready (Verilator)",
        "",
        "| traffic | frames | bytes | steady bits / cycle out | steady bits / cycle in "
        "| % of bus (steady) | bits / cycle (span) | % of bus (span) "
        "| decision latency (cycles) | forwarding latency (cycles) | drops |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in hw.items():
        if name == "documented_latency":
            continue
        lo, hi = r["latency"]
        steady = r["window_bits_per_cycle"]
        lines.append(
            f"| {name} | {r['frames']} | {r['bytes']} | {steady:.1f} "
            f"| {r['window_in_bits_per_cycle']:.1f} | {r['window_bus_pct']:.1f} "
            f"| {r['bits_per_cycle']:.1f} | {r['bus_pct']:.1f} | {lo}..{hi} "
            f"| {r['forward_latency']} | {sum(r['overflow'])} |"
        )
    s = sw["share"]
    lines += [
        "",
        "Steady: the bytes leaving on all outputs during the middle half of the input (which "
        "carries a beat every cycle), per cycle, beside the bytes whose last beat entered in "
        "that window; % of bus is the beats leaving in that window per cycle (100 = a beat "
        "out for every beat in, no bubble). Span: input beats over the "
        "cycles from the first to the last beat leaving on any output, less the "
        "store-and-forward (twice: ingress buffer and output queue) difference of the first "
        "and last frames' lengths (100 = the filter kept pace with a saturated line, no "
        "bubble). Decision latency: from a "
        f"frame's last beat on rx to its decision; documented {hw['documented_latency']} cycles "
        "for a frame that needs rules. Forwarding latency: from the first frame's last beat "
        "on rx to its first beat on an output, the pipeline idle.",
        "",
        f"VMM software filter (Python model): **{sw['vmm_fps']:,.0f} frames/s** on the bounced "
        f"frames of a generated mix; hardware decided {s['hardware']} of {s['frames']} frames "
        f"({s['hardware_pct']:.1f} %), software {s['software']} ({s['software_pct']:.1f} %).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tb.nic.bench", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=REPO / "build" / "bench")
    args = ap.parse_args(argv)
    use_project_tools()
    hw = measure_hw(args.frames)
    sw = measure_sw(5000)
    report = render(hw, sw)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "nic.json").write_text(json.dumps({"hw": hw, "sw": sw}, indent=1))
    (args.out / "nic.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
