"""``make demo``'s GPU part on both simulators: the run with the tracker RTL is the model's, the
failover is verified, and the timeline shows it."""

from __future__ import annotations

import pytest

from tb.gpu.demo import main

pytestmark = pytest.mark.cocotb


def test_demo(sim: str, tmp_path, capsys) -> None:
    assert main(["--sim", sim, "--out", str(tmp_path / "gpu")]) == 0
    text = capsys.readouterr().out
    assert "*** PRIMARY FAILS (checkpoint transfer)" in text
    assert "memory and vGPU verified equal" in text
    assert "failovers: 1 of 1 verified" in text
    assert "tracker RTL against the tracker model: identical run" in text
