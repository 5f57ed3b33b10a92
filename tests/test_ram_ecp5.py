""":class:`~hdl.common.PipelinedRam` built for ECP5 (DP16KD primitives with their output
register) behaves cycle for cycle as the same block built from Amaranth's ``Memory``.

Both builds are emitted as Verilog side by side and driven in lockstep by one Verilog testbench
with random writes and reads (never of the word written in the same cycle, which block RAM
leaves undefined); the DP16KD is the behavioural model in ``tb/ecp5/DP16KD.v``. On Icarus and on
Verilator, for every DP16KD aspect ratio the block uses.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from amaranth.back import verilog

from hdl.common import PipelinedRam
from hdl.common.ram import dp16kd_mode
from vmassist.synth import Ecp5Target
from vmassist.toolchain import SIMULATORS, tool_env, verilator_makeflags

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "tb" / "ecp5" / "DP16KD.v"
CYCLES = 6000

TB = """\
`timescale 1ns / 1ps
module tb;
  reg clk = 0, rst = 1;
  reg w_en = 0, r_en = 0, r_oe = 0;
  reg [{a}:0] w_addr = 0, r_addr = 0;
  reg [{d}:0] w_data = 0;
  wire [{d}:0] q_ref, q_dut;
  integer cycle, errors = 0, reads = 0, seed = {seed};
  ram_ref u_ref (.clk(clk), .rst(rst), {ref_copies}, .w_data(w_data),
               .r_en(r_en), .r_oe(r_oe), .r_data(q_ref));
  ram_dut u_dut (.clk(clk), .rst(rst), {dut_copies}, .w_data(w_data),
               .r_en(r_en), .r_oe(r_oe), .r_data(q_dut));
  always #5 clk = ~clk;
  initial begin
    // Read word 0 through both registers first: Amaranth's Verilog leaves the read latch
    // without an initial value, where the FPGA's starts at 0.
    @(negedge clk); rst = 0; r_en = 1; r_oe = 1;
    @(negedge clk); @(negedge clk);
    for (cycle = 0; cycle < {cycles}; cycle = cycle + 1) begin
      @(negedge clk);
      if (q_ref !== q_dut) begin
        errors = errors + 1;
        if (errors < 5) $display("cycle %0d: Memory %h, DP16KD %h", cycle, q_ref, q_dut);
      end
      // a few words at each end of the RAM, so that reads mostly find written words
      w_en = $random(seed) % 2;
      w_addr = $random(seed) & 15;
      w_addr[{a}] = $random(seed) % 2;
      w_data = {{$random(seed), $random(seed), $random(seed), $random(seed)}};
      r_en = $random(seed) % 4 != 0;
      r_oe = $random(seed) % 4 != 0;
      r_addr = $random(seed) & 15;
      r_addr[{a}] = $random(seed) % 2;
      if (w_en && r_addr == w_addr) r_addr = r_addr ^ 1;
      reads = reads + (r_en && r_oe);
    end
    if (errors == 0 && reads > {cycles} / 4) $display("PASS %0d reads", reads);
    else $display("FAIL %0d mismatches", errors);
    $finish;
  end
endmodule
"""


#: The ECP5 build takes its enable and addresses in copies, each block RAM its own (all equal).
DUT_COPIES = 3


def _copies(n: int) -> str:
    """Port connections of a RAM with ``n`` copies of the write enable and addresses."""
    return ", ".join(
        f".{port}__{k}({port})" for port in ("w_en", "w_addr", "r_addr") for k in range(n)
    )


def _build(tmp_path: Path, width: int, depth: int, seed: int) -> list[Path]:
    files = []
    for name, platform, copies in (("ram_ref", None, 1), ("ram_dut", Ecp5Target(), DUT_COPIES)):
        ram = PipelinedRam(width, depth, copies=copies)
        text = verilog.convert(ram, name=name, platform=platform, emit_src=False)
        path = tmp_path / f"{name}.v"
        path.write_text(text)
        files.append(path)
    abits = (depth - 1).bit_length()
    tb = tmp_path / "tb.v"
    tb.write_text(
        TB.format(
            a=abits - 1,
            d=width - 1,
            seed=seed,
            cycles=CYCLES,
            ref_copies=_copies(1),
            dut_copies=_copies(DUT_COPIES),
        )
    )
    return [tb, *files, MODEL]


def _check(cmd: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, f"{cmd[0]} failed:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def _run(sim: str, files: list[Path], tmp_path: Path) -> str:
    env = tool_env()
    if sim == "icarus":
        exe = tmp_path / "tb.vvp"
        cmd = ["iverilog", "-g2012", "-s", "tb", "-o", str(exe), *map(str, files)]
        _check(cmd, env)
        run = ["vvp", "-n", str(exe)]
    else:
        env["MAKEFLAGS"] = verilator_makeflags(env.get("MAKEFLAGS", ""))
        obj = tmp_path / "obj"
        cmd = [
            "verilator",
            "--binary",
            "-CFLAGS",
            "-fcoroutines",
            "-Wno-fatal",
            "-Wno-lint",
            "-Wno-style",
            "--top-module",
            "tb",
            "--Mdir",
            str(obj),
            "-j",
            "1",
            *map(str, files),
        ]
        _check(cmd, env)
        run = [str(obj / "Vtb")]
    return _check(run, env)


# One case per DP16KD aspect ratio the wrapper picks, word widths that leave a partial block.
CASES = [(73, 2048), (21, 1024), (94, 512), (5, 4096), (3, 8192), (2, 16384)]


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize(("width", "depth"), CASES, ids=[f"{w}x{d}" for w, d in CASES])
def test_dp16kd_build_matches_memory(sim, width, depth, tmp_path):
    if sim == "icarus" and shutil.which("iverilog", path=tool_env()["PATH"]) is None:
        pytest.fail("iverilog is not installed (make setup installs it)")
    files = _build(tmp_path, width, depth, seed=width * 7919 + depth)
    out = _run(sim, files, tmp_path)
    assert "PASS" in out, out


def test_modes_cover_every_depth():
    assert [dp16kd_mode(d)[0] for d in (2, 1024, 1025, 2048, 4096, 8192, 16384)] == [
        18,
        18,
        9,
        9,
        4,
        2,
        1,
    ]
    with pytest.raises(ValueError, match="16384"):
        dp16kd_mode(16385)
