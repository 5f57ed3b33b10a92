"""cocotb regressions of the NIC filter on both simulators, one build directory per case.

The 64-bit default instance runs every test with IMIX traffic; the 512-bit one carries the bulk:
1e5 frames per simulator, weighted to short frames (every kind of frame is still in the mix,
jumbo frames and giants too) so that a frame is ~3.3 beats, and every one scored against the
model as in the small case. The bulk is two cases of 5e4 frames (each with its own seed, the
given seed plus the case's index) so that ``pytest -n 2`` runs them side by side: Icarus, which
spends ~80 % of its time evaluating the DUT, takes ~4 minutes of CPU per half (~215 frames/s
on a loaded 2-core machine), Verilator ~12 s (~4200 frames/s) plus its build.
"""

from __future__ import annotations

import os
import random

import pytest

from hdl.nic import NicFilter
from tb.common.runner import REPO, results_ok, run_cocotb

pytestmark = pytest.mark.cocotb

#: (data width, rules per VF, frames in the traffic test, traffic profile, stream agents, cocotb
#: tests): cocotbext-axi's agents drive every test of the 64-bit case; the bulk uses
#: tb.common.axis's, the same protocol at a fraction of the cost.
CASES = {
    "w64": (64, 16, 3000, "imix", "cocotbext", None),
    "w512-bulk-a": (512, 16, 50_000, "short", "fast", "traffic_rewrites_and_reinject"),
    "w512-bulk-b": (512, 16, 50_000, "short", "fast", "traffic_rewrites_and_reinject"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_nic(sim: str, case: str) -> None:
    width, rules, frames, traffic, agents, testcase = CASES[case]
    base = int(
        os.environ.get("SEED") or os.environ.get("COCOTB_RANDOM_SEED") or random.randrange(1 << 31)
    )
    # Distinct per case, so that the two bulk halves never replay the same traffic.
    seed = base + list(CASES).index(case)
    # SEED=base replays every case with the seed it had (the base is what make sim takes).
    print(f"cocotb seed {seed} (replay: make sim BLOCK=nic SIM={sim} SEED={base})")
    dut = NicFilter(data_width=width, rules=rules)
    results = run_cocotb(
        top=lambda: dut,
        toplevel="nic",
        test_module="tb.nic.test_nic",
        sim=sim,
        build_dir=REPO / "build" / "sim" / f"nic-{sim}-{case}-r{rules}",  # cases run in parallel
        testcase=testcase,
        seed=seed,
        extra_env={
            "NIC_WIDTH": str(width),
            "NIC_RULES": str(rules),
            "NIC_FRAMES": str(frames),
            "NIC_TRAFFIC": traffic,
            "NIC_AGENTS": agents,
            "NIC_LATENCY": str(dut.decision_latency(True)),
        },
    )
    run, failed = results_ok(results)
    assert run > 0, "cocotb ran no test"
    assert failed == 0, (
        f"{failed} of {run} cocotb tests failed (seed {seed}, SEED={base}); see {results}"
    )


def test_replay_matches_the_model(sim: str, tmp_path) -> None:
    """``vmassist nic replay`` on the RTL writes exactly what ``--sim model`` writes."""
    from models.nic.pcap import write_pcap
    from models.nic.rules import random_rules, rules_to_toml
    from models.nic.traffic import generate_traffic
    from vmassist.cli import main

    seed = int(os.environ.get("SEED") or random.randrange(1 << 31))
    rules = random_rules(random.Random(seed))
    (tmp_path / "rules.toml").write_text(rules_to_toml(rules))
    write_pcap(tmp_path / "in.pcap", generate_traffic(rules, 400, seed).records)
    args = ["nic", "replay", "--rules", str(tmp_path / "rules.toml")]
    args += ["--pcap", str(tmp_path / "in.pcap")]
    assert main([*args, "--sim", "model", "--out", str(tmp_path / "model")]) == 0
    assert main([*args, "--sim", sim, "--out", str(tmp_path / sim)]) == 0
    names = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert names == sorted(p.name for p in (tmp_path / sim).iterdir())
    for name in names:
        want = (tmp_path / "model" / name).read_bytes()
        assert (tmp_path / sim / name).read_bytes() == want, f"seed {seed}: {name} differs"
