"""The ``vmassist`` command line: help, one-line errors with exit 2, Verilog and docs output."""

from __future__ import annotations

import gc
import shutil
import subprocess
import sys
import types

import pytest
from amaranth._unused import MustUse

from vmassist import cli
from vmassist.examples import WrapCounter
from vmassist.outdir import atomic_output_dir

SUBCOMMANDS = [["verilog"], ["docs"], ["mmu"], ["mmu", "run"]]


@pytest.fixture(autouse=True)
def _unused_elaboratables_stay_local():
    """A failed in-process command silences Amaranth's UnusedElaboratable warnings process-wide
    (right for a CLI about to exit); collect its leftovers here and switch the warnings back on
    for the other tests in this worker."""
    yield
    MustUse._MustUse__silence = True
    gc.collect()
    MustUse._MustUse__silence = False


def vmassist(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed console script (falling back to ``python -m vmassist.cli``)."""
    exe = shutil.which("vmassist")
    cmd = [exe] if exe else [sys.executable, "-m", "vmassist.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, check=False)


def assert_one_line_error(proc_or_err: str, status: int) -> None:
    lines = proc_or_err.strip().splitlines()
    assert status == 2
    assert len(lines) == 1, proc_or_err
    assert lines[0].startswith("vmassist: ")
    assert "Traceback" not in proc_or_err


@pytest.fixture
def fake_tops(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Stand in for ``hdl.tops`` with the tiny example design, so these tests need no block."""
    tops = {"ctr": WrapCounter}
    module = types.ModuleType("hdl.tops")
    module.TOPS = tops
    monkeypatch.setitem(sys.modules, "hdl.tops", module)
    return tops


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = cli.main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_console_script_help():
    proc = vmassist("--help")
    assert proc.returncode == 0
    assert "usage: vmassist" in proc.stdout
    assert "examples:" in proc.stdout


@pytest.mark.parametrize("sub", SUBCOMMANDS, ids=" ".join)
def test_subcommand_help_has_examples(sub: list[str], capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([*sub, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: vmassist " + " ".join(sub) in out
    assert "example" in out


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["verilog"],
        ["verilog", "--out"],
        ["mmu", "run", "--scenario", "s.toml", "--sim", "questa", "--out", "o"],
        ["mmu", "run", "--scenario", "s.toml", "--sim", "model", "--out", "o", "--seed", "x"],
    ],
    ids=repr,
)
def test_bad_arguments_one_line_exit_2(args: list[str]):
    proc = vmassist(*args)
    assert_one_line_error(proc.stderr, proc.returncode)
    assert proc.stdout == ""


def test_unknown_block_console_script(tmp_path):
    out = tmp_path / "v"
    proc = vmassist("verilog", "--block", "no_such_block", "--out", str(out))
    assert_one_line_error(proc.stderr, proc.returncode)
    assert "no_such_block" in proc.stderr
    assert not out.exists()


def test_unknown_block(fake_tops, tmp_path, capsys):
    status, _, err = run_main(capsys, "verilog", "--block", "nope", "--out", str(tmp_path / "v"))
    assert_one_line_error(err, status)
    assert "unknown block 'nope'" in err and "ctr" in err
    assert not (tmp_path / "v").exists()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (["bogus=1"], "has no parameter 'bogus'"),
        (["n=1"], "n must be an integer >= 2"),
        (["n"], "is not KEY=VALUE"),
        (["n=4", "n=5"], "given twice"),
        (["n=yes"], "n must be an integer"),
    ],
)
def test_bad_params(fake_tops, tmp_path, capsys, params, message):
    args = ["verilog", "--block", "ctr", "--out", str(tmp_path / "v")]
    for p in params:
        args += ["--param", p]
    status, _, err = run_main(capsys, *args)
    assert_one_line_error(err, status)
    assert message in err
    assert not (tmp_path / "v").exists()


def test_verilog_writes_block(fake_tops, tmp_path, capsys):
    out = tmp_path / "v"
    status, stdout, _ = run_main(
        capsys, "verilog", "--block", "ctr", "--param", "n=0x10", "--out", str(out)
    )
    assert status == 0
    text = (out / "ctr.v").read_text()
    assert "module ctr(" in text
    assert "[3:0] count" in text  # n=16 -> range(16) -> 4 bits
    assert stdout.strip() == str(out / "ctr.v")
    assert sorted(p.name for p in out.iterdir()) == ["ctr.v"]


def test_verilog_all_blocks_keeps_other_files(fake_tops, tmp_path, capsys):
    out = tmp_path / "v"
    out.mkdir()
    (out / "other.v").write_text("// kept\n")
    fake_tops["ctr2"] = WrapCounter
    status, _, _ = run_main(capsys, "verilog", "--out", str(out))
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == ["ctr.v", "ctr2.v", "other.v"]


def test_param_without_block(fake_tops, tmp_path, capsys):
    status, _, err = run_main(capsys, "verilog", "--param", "n=4", "--out", str(tmp_path))
    assert_one_line_error(err, status)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("16", 16),
        ("0x10", 16),
        ("0b101", 5),
        ("1_000", 1000),
        ("true", True),
        ("off", False),
        ("ept", "ept"),
    ],
)
def test_parse_param_value(text, value):
    assert cli.parse_param_value(text) == value
    assert type(cli.parse_param_value(text)) is type(value)


def test_docs(tmp_path, capsys):
    out = tmp_path / "docs" / "registers.md"
    status, _, _ = run_main(capsys, "docs", "--out", str(out))
    assert status == 0
    text = out.read_text()
    assert "| offset | name | access |" in text


def test_output_path_is_a_file(fake_tops, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    status, _, err = run_main(capsys, "verilog", "--block", "ctr", "--out", str(blocker))
    assert_one_line_error(err, status)
    assert blocker.read_text() == "x"


def test_keyboard_interrupt_exits_130(monkeypatch, tmp_path, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_docs", interrupted)
    status, _, _ = run_main(capsys, "docs", "--out", str(tmp_path / "x.md"))
    assert status == 130


def test_mmu_run_missing_scenario(tmp_path, capsys):
    pytest.importorskip("models.vmm.scenario", reason="the VMM model is not written yet")
    pytest.importorskip("models.vmm.run", reason="the VMM model is not written yet")
    out = tmp_path / "out"
    status, _, err = run_main(
        capsys,
        "mmu",
        "run",
        "--scenario",
        str(tmp_path / "missing.toml"),
        "--sim",
        "model",
        "--out",
        str(out),
    )
    assert_one_line_error(err, status)
    assert "missing.toml" in err
    assert not out.exists()


def test_atomic_output_dir_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_output_dir(target) as tmp:
        (tmp / "half.jsonl").write_text("{")
        raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_dir_replaces_files(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "results.jsonl").write_text("old")
    (target / "keep.txt").write_text("keep")
    with atomic_output_dir(target) as tmp:
        (tmp / "results.jsonl").write_text("new")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "a").write_text("a")
    assert (target / "results.jsonl").read_text() == "new"
    assert (target / "keep.txt").read_text() == "keep"
    assert (target / "sub" / "a").read_text() == "a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_register_docs_are_current():
    """docs/registers.md is rendered from the register maps; regenerate with
    `vmassist docs --out docs/registers.md` after changing a map."""
    from pathlib import Path

    from vmassist.cli import render_register_docs

    committed = (Path(__file__).resolve().parents[1] / "docs" / "registers.md").read_text()
    assert committed == render_register_docs()
