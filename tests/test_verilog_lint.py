"""``vmassist verilog`` writes every registered top, and each passes the Verilog lint
(``verilator --lint-only -Wall`` with the waivers documented in scripts/lint_verilog.sh)."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

from vmassist import cli

ROOT = Path(__file__).resolve().parents[1]


def _blocks() -> list[str]:
    if importlib.util.find_spec("hdl.tops") is None:
        return []
    from hdl.tops import TOPS

    return sorted(TOPS)


@pytest.mark.parametrize("block", _blocks())
def test_block_verilog_is_lint_clean(block: str, tmp_path):
    assert cli.main(["verilog", "--block", block, "--out", str(tmp_path)]) == 0
    vfile = tmp_path / f"{block}.v"
    proc = subprocess.run(
        [str(ROOT / "scripts" / "lint_verilog.sh"), str(vfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
