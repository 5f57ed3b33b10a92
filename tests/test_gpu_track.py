"""``vmassist gpu track``: a write-address trace through the model and through the RTL on both
simulators must give identical ``epochs.jsonl``; bad traces are one-line errors."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from models.gpu.trace import FLIP, HEADER
from vmassist.formats.gpu import APERTURE

pytestmark = pytest.mark.cocotb


def vmassist(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("vmassist")
    cmd = [exe] if exe else [sys.executable, "-m", "vmassist.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, check=False)


def random_trace(path: Path, seed: int) -> None:
    """Flips, legal and illegal bursts of every type, writes past the aperture, and one epoch
    that dirties more pages than the log holds."""
    rng = random.Random(seed)
    rows = [",".join(HEADER)]
    for epoch in range(5):
        n = 700 if epoch == 2 else rng.randrange(1, 80)
        hot = rng.randrange(APERTURE >> 12)
        for _ in range(n):
            if epoch == 2:
                addr = rng.randrange(APERTURE)
            elif rng.random() < 0.05:
                addr = APERTURE + rng.randrange(1 << 20)
            else:
                addr = ((hot + rng.randrange(64)) << 12) + rng.randrange(4096)
            burst = rng.choice(["FIXED", "INCR", "INCR", "WRAP"])
            length = rng.choice([0, 1, 3, 7, 15, rng.randrange(256)])
            rows.append(f"{addr:#x},{length},{rng.randrange(8)},{burst}")
        rows.append(FLIP)
    path.write_text("\n".join(rows) + "\n")


def test_model_and_rtl_agree(sim: str, tmp_path: Path) -> None:
    trace = tmp_path / "aw.csv"
    random_trace(trace, seed=3)
    outs = {}
    for where in ("model", sim):
        proc = vmassist(
            "gpu", "track", "--trace", str(trace), "--sim", where, "--out", str(tmp_path / where)
        )
        assert proc.returncode == 0, proc.stderr
        outs[where] = (tmp_path / where / "epochs.jsonl").read_text()
    lines = outs["model"].splitlines()
    assert len(lines) == 6
    assert '"overflow": true' in lines[2] and '"overflow": true' not in outs["model"].replace(
        lines[2], ""
    )
    assert outs[sim] == outs["model"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("awaddr,awlen\n", "line 1"),
        ("awaddr,awlen,awsize,awburst\n0x10,0,2,BURST\n", "line 2: awburst"),
        ("awaddr,awlen,awsize,awburst\n0x10,256,2,INCR\n", "line 2: awlen"),
        ("awaddr,awlen,awsize,awburst\nzz,0,2,INCR\n", "line 2: awaddr"),
    ],
)
def test_bad_trace_is_one_line_and_nothing_written(text: str, problem: str, tmp_path: Path) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text(text)
    out = tmp_path / "out"
    proc = vmassist("gpu", "track", "--trace", str(trace), "--sim", "model", "--out", str(out))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vmassist: ") and str(trace) in lines[0]
    assert problem in lines[0]
    assert not out.exists()
