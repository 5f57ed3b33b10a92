"""The NIC RTL against an oracle independent of our model: for rules libpcap can express, the
frames the hardware passes to each VF are exactly the frames tcpdump's filter for that VF
selects from the same pcap (``models/nic/bpf.py``)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from models.nic.bpf import expressible, tcpdump_passes
from models.nic.pcap import write_pcap
from models.nic.rules import Rules, random_rules
from models.nic.run import run_model
from models.nic.traffic import Traffic, generate_traffic
from tb.nic.run import run_hw

pytestmark = pytest.mark.cocotb

TCPDUMP = "/usr/bin/tcpdump"


def _passing_mix(seed: int, frames: int = 800, least: int = 150) -> tuple[Rules, Traffic]:
    """Rules and traffic from ``seed`` where at least ``least`` frames pass: some random rule sets
    block nearly everything (seed 8: 1 frame in 800), which would leave tcpdump little to check.
    The model only chooses the workload here; the verdicts are compared with tcpdump's."""
    rng = random.Random(seed)
    while True:
        rules = random_rules(rng)
        # No malformed frames: libpcap does not check header lengths.
        traffic = generate_traffic(rules, frames, seed=rng.randrange(1 << 31), malformed=0.0)
        if sum(v.verdict == "pass" for v in run_model(rules, traffic.records)) >= least:
            return rules, traffic


@pytest.mark.skipif(
    not Path(TCPDUMP).exists() and not os.environ.get("CI"),
    reason="tcpdump is installed by make setup (under CI its absence fails)",
)
def test_hardware_passes_what_tcpdump_selects(sim: str, tmp_path: Path) -> None:
    seed = int(os.environ.get("SEED") or random.randrange(1 << 31))
    rules, traffic = _passing_mix(seed)
    assert all(expressible(vf) for vf in rules.vfs)
    pcap = tmp_path / "in.pcap"
    write_pcap(pcap, traffic.records, nanos=False)
    hw = run_hw(rules, traffic.records, sim=sim, seed=seed)
    oracle = tcpdump_passes(TCPDUMP, rules, pcap, traffic.records)
    checked = 0
    for vf in rules.vfs:
        passed = {i for i, v in enumerate(hw.verdicts) if v.verdict == "pass" and v.vf == vf.id}
        # What left the VF's port, not just the decision tap.
        assert set(hw.queues[f"vf{vf.id}"]) == passed, f"seed {seed}: vf{vf.id} port vs tap"
        assert passed == oracle[vf.id], (seed, vf.id, sorted(passed ^ oracle[vf.id])[:10])
        checked += len(passed)
    assert checked > 50, f"seed {seed}: only {checked} frames passed; the comparison saw too few"
