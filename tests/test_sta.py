"""The SDF timing analysis (vmassist.sta) on hand-written SDF: parsing, longest paths, grouping,
and its command line. tests/test_synth_infra.py checks it against nextpnr's Fmax."""

from __future__ import annotations

import pytest

from vmassist import sta

# Two flip-flops a and b[3], a LUT between them, and a flip-flop c fed from a alone. Instance
# names carry SDF escapes, as nextpnr writes yosys names.
SDF = r"""(DELAYFILE (SDFVERSION "3.0") (DIVIDER /) (TIMESCALE 1ps)
  (CELL (CELLTYPE "top") (INSTANCE )
    (DELAY (ABSOLUTE
      (INTERCONNECT u\.a_TRELLIS_FF_Q/Q u\.n_LUT4_Z/A (100:200:300) (100:200:300))
      (INTERCONNECT u\.a_TRELLIS_FF_Q/Q u\.c_TRELLIS_FF_Q/DI (50:60:70) (50:60:70))
      (INTERCONNECT u\.n_LUT4_Z/F u\.b\[3\]_TRELLIS_FF_Q_2/DI (400:500:600) (400:500:600))
      (INTERCONNECT \$PACKER_VCC/F u\.n_LUT4_Z/B (9000:9000:9000) (9000:9000:9000)))))
  (CELL (CELLTYPE "TRELLIS_FF") (INSTANCE u\.a_TRELLIS_FF_Q)
    (DELAY (ABSOLUTE (IOPATH CLK Q (400:450:500) (400:450:500))))
    (TIMINGCHECK (SETUPHOLD (posedge DI) (posedge CLK) (0:0:0) (1:1:1))))
  (CELL (CELLTYPE "TRELLIS_FF") (INSTANCE u\.b\[3\]_TRELLIS_FF_Q_2)
    (DELAY (ABSOLUTE (IOPATH CLK Q (400:450:500) (400:450:500))))
    (TIMINGCHECK (SETUPHOLD (posedge DI) (posedge CLK) (100:110:120) (0:0:0))))
  (CELL (CELLTYPE "TRELLIS_FF") (INSTANCE u\.c_TRELLIS_FF_Q)
    (DELAY (ABSOLUTE (IOPATH CLK Q (400:450:500) (400:450:500))))
    (TIMINGCHECK (SETUPHOLD (posedge DI) (posedge CLK) (10:10:10) (0:0:0))))
  (CELL (CELLTYPE "TRELLIS_COMB") (INSTANCE u\.n_LUT4_Z)
    (DELAY (ABSOLUTE (IOPATH A F (200:210:220) (200:210:220)) (IOPATH B F (1:1:1) (1:1:1))))))
"""


def test_longest_path_and_slack():
    graph = sta.parse_sdf(SDF)
    timing = sta.analyse(graph)
    end = "u.b[3]_TRELLIS_FF_Q_2/DI"
    # clock-to-out 500 + route 300 + LUT 220 + route 600 (maximum values); the constant driver
    # launches nothing, so its 9 ns route does not count.
    assert timing.arrival[end] == 1620
    assert [p for p, _ in timing.path(end)] == [
        "u.a_TRELLIS_FF_Q/Q",
        "u.n_LUT4_Z/A",
        "u.n_LUT4_Z/F",
        end,
    ]
    # Setup 120 ps: the path needs 1740 ps.
    assert sta.failing(graph, timing, 1740) == []
    assert sta.failing(graph, timing, 1739) == [(-1, end)]
    assert [p for _, p in sta.failing(graph, timing, 500)] == [end, "u.c_TRELLIS_FF_Q/DI"]


def test_signal_names():
    assert sta.signal_of("u.b[3]_TRELLIS_FF_Q_2/DI") == "u.b"
    assert sta.signal_of("\\$signal_TRELLIS_FF_Q/Q") == "$signal"
    assert sta.signal_of("nic.q_wr_ptr_CCU2C_S0_12/A0") == "nic.q_wr_ptr"
    assert sta.signal_of("nic.q.w_addr_3_ff7/DI") == "nic.q.w_addr"


def test_loop_and_malformed_arcs_are_errors():
    loop = r"""(DELAYFILE (CELL (CELLTYPE "top") (INSTANCE ) (DELAY (ABSOLUTE
      (INTERCONNECT x/F y/A (1:1:1) (1:1:1)) (INTERCONNECT y/F x/A (1:1:1) (1:1:1)))))
      (CELL (CELLTYPE "TRELLIS_COMB") (INSTANCE x) (DELAY (ABSOLUTE (IOPATH A F (1) (1)))))
      (CELL (CELLTYPE "TRELLIS_COMB") (INSTANCE y) (DELAY (ABSOLUTE (IOPATH A F (1) (1))))))"""
    with pytest.raises(ValueError, match="loop"):
        sta.analyse(sta.parse_sdf(loop))
    with pytest.raises(ValueError, match="INTERCONNECT in cell '' has 2 fields"):
        sta.parse_sdf(loop.replace("y/A (1:1:1) (1:1:1)", "y/A"))


def test_cli(tmp_path, capsys):
    sdf = tmp_path / "timing.sdf"
    sdf.write_text(SDF)
    assert sta.main([str(sdf), "--period", "1.0"]) == 0
    out = capsys.readouterr().out
    assert "1 failing endpoints at 1.0 ns, worst slack -0.740 ns" in out
    assert "u.a  ->  u.b" in out
    bad = tmp_path / "bad.sdf"
    bad.write_text("(DELAYFILE (CELL")
    assert sta.main([str(bad), "--period", "1.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and "unbalanced" in err
    assert sta.main([str(sdf), "--period", "0"]) == 2
