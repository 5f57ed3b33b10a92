"""``vmassist gpu run``: the checkpoint manager over the tracker RTL (Icarus, Verilator) gives the
same checkpoints, timeline and summary as over the tracker model, failovers verified; bad
workloads are one-line errors with nothing written."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tb.common.runner import REPO

EXAMPLES = REPO / "examples" / "gpu"
FILES = ("checkpoints.jsonl", "timeline.jsonl", "summary.json")


def vmassist(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("vmassist")
    cmd = [exe] if exe else [sys.executable, "-m", "vmassist.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, check=False, cwd=REPO)


def run(workload: Path, sim: str, out: Path) -> dict[str, str]:
    proc = vmassist("gpu", "run", "--workload", str(workload), "--sim", sim, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return {f: (out / f).read_text() for f in FILES}


@pytest.mark.cocotb
@pytest.mark.parametrize("example", ["frames", "failover"])
def test_rtl_tracker_gives_the_models_run(example: str, sim: str, tmp_path: Path) -> None:
    workload = EXAMPLES / f"{example}.toml"
    model = run(workload, "model", tmp_path / "model")
    rtl = run(workload, sim, tmp_path / sim)
    summary = json.loads(model["summary.json"])
    assert summary["recall"] == 1.0
    assert summary["failovers"]["injected"] == summary["failovers"]["verified"]
    for f in FILES:
        assert rtl[f] == model[f], f"{f} differs between {sim} and the model"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("seed = 1\ncommands = -4\n", "commands"),
        ("seed = 1\nbogus = 3\n", "bogus"),
        ("seed = 1\n[[failover]]\nat = 'checkpoint'\nindex = 1\nphase = 'nap'\n", "phase"),
        ("seed = [\n", "TOML"),
    ],
)
def test_bad_workload_is_one_line_and_nothing_written(
    text: str, field: str, tmp_path: Path
) -> None:
    workload = tmp_path / "w.toml"
    workload.write_text(text)
    out = tmp_path / "out"
    proc = vmassist("gpu", "run", "--workload", str(workload), "--sim", "model", "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vmassist: ") and str(workload) in lines[0]
    assert field in lines[0]
    assert "Traceback" not in proc.stderr
    assert not out.exists()
