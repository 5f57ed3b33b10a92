"""cocotb entry point for :mod:`tb.nic.bench`: throughput and decision latency of the NIC top,
tvalid held high and every sink ready; the figures are written as JSON to ``BENCH_OUT``."""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import cocotb
from cocotb.triggers import RisingEdge

from models.nic.rules import IpMatch, Rule, Rules, Vf, vf_mac

from .tb import NicTB
from .test_nic import _short_frame

IMIX = ((64, 7), (594, 4), (1518, 1))  # the simple IMIX: sizes (bytes) and weights


def _imix(rng: random.Random, rules: Rules, n: int) -> list[bytes]:
    sizes = [s for s, w in IMIX for _ in range(w)]
    out = []
    for _ in range(n):
        frame = _short_frame(rng, rules.vfs[rng.randrange(len(rules.vfs))])
        size = rng.choice(sizes)
        out.append(frame + bytes(rng.randrange(256) for _ in range(size - len(frame))))
    return out


async def _measure(tb: NicTB, frames: list[bytes]) -> dict:
    """Beats in; the span from the first to the last beat leaving on any output; and the bytes
    that left during the middle half of the input (the steady state)."""
    dut, n = tb.dut, tb.n_vfs
    names = [f"vf__{k}" for k in range(n)] + ["vmm"]
    ports = [
        (getattr(dut, f"{p}__tvalid"), getattr(dut, f"{p}__tready"), getattr(dut, f"{p}__tkeep"))
        for p in names
    ]
    span = {"first_in": None, "last_in": None, "first_out": None, "last_out": None, "out": 0}
    out_bytes: list[tuple[int, int, int]] = []  # (cycle, beats, bytes) of cycles with output
    base = len(tb.got.decisions)

    async def watch():
        while True:
            await RisingEdge(dut.clk)
            if dut.rx__tvalid.value:
                span["first_in"] = span["first_in"] or tb.cycle
                span["last_in"] = tb.cycle
            moving = [k for v, r, k in ports if v.value and r.value]
            if moving:
                span["first_out"] = span["first_out"] or tb.cycle
                span["last_out"] = tb.cycle
                span["out"] += len(moving)
                nbytes = sum(k.value.to_unsigned().bit_count() for k in moving)
                out_bytes.append((tb.cycle, len(moving), nbytes))

    w = cocotb.start_soon(watch())
    lasts = len(tb.got.decision_cycles)
    wall = time.perf_counter()
    for f in frames:
        await tb.send(f)
    await tb.quiesce(base + len(frames), lambda: base + len(frames))  # every frame visible
    wall = time.perf_counter() - wall
    w.cancel()
    bpb = tb.width // 8
    ends = _last_beats(frames, bpb)  # each frame's last beat, in cycles from the first
    beats_in = sum(-(-len(f) // bpb) for f in frames)
    # Two store-and-forward stages (ingress buffer, output queue): the first frame starts out
    # two of its own lengths after its first beat, the last frame two of its own; the output
    # span differs from the input's by twice the difference of their lengths.
    out_span = span["last_out"] - span["first_out"] + 1
    out_span -= 2 * (-(-len(frames[-1]) // bpb) - -(-len(frames[0]) // bpb))
    # Steady state: the middle half of the input's cycles. With tvalid held high the input
    # carries one beat a cycle, so a filter that keeps pace delivers as many in any long window.
    lo = span["first_in"] + (span["last_in"] - span["first_in"]) // 4
    hi = span["first_in"] + 3 * (span["last_in"] - span["first_in"]) // 4
    win_cycles = hi - lo
    win_in = sum(
        len(f) for f, t in zip(frames, ends, strict=True) if lo <= span["first_in"] + t < hi
    )
    win_out = sum(b for c, _, b in out_bytes if lo <= c < hi)
    win_beats = sum(k for c, k, _ in out_bytes if lo <= c < hi)
    lat = [c - first for c, first in zip(tb.got.decision_cycles[lasts:], ends, strict=True)]
    return {
        "frames": len(frames),
        "bytes": sum(map(len, frames)),
        "beats_in": beats_in,
        "in_cycles": span["last_in"] - span["first_in"] + 1,
        "beats_out": span["out"],
        "out_cycles": out_span,
        "bits_per_cycle": 8 * sum(map(len, frames)) / out_span,
        "bus_pct": 100.0 * beats_in / out_span,
        "window_cycles": win_cycles,
        "window_bits_per_cycle": 8 * win_out / win_cycles,
        "window_in_bits_per_cycle": 8 * win_in / win_cycles,
        "window_bus_pct": 100.0 * win_beats / win_cycles,
        "latency": [min(lat) - span["first_in"], max(lat) - span["first_in"]],
        # the first frame meets an idle pipeline: its last beat in to its first beat out
        "forward_latency": span["first_out"] - span["first_in"] - ends[0],
        "overflow": await tb.overflows(),
        "wall_s": wall,
    }


def _last_beats(frames: list[bytes], bpb: int) -> list[int]:
    """The cycle (from the first beat, 0) of each frame's last beat, back to back."""
    out, t = [], -1
    for f in frames:
        t += -(-len(f) // bpb)
        out.append(t)
    return out


@cocotb.test()
async def bench(dut):
    width = int(os.environ.get("NIC_WIDTH", "64"))
    n_frames = int(os.environ.get("BENCH_FRAMES", "2000"))
    rng = random.Random(1)
    # Every VF passes everything by default and has 16 rules that never match, so each frame
    # goes through the whole rule engine and out on an output.
    never = Rule("block", dst_ip=IpMatch(4, 0xC0000201, 32))  # 192.0.2.1: no VM has it
    rules = Rules(tuple(Vf(k, vf_mac(k), None, "pass", False, (never,) * 16) for k in range(4)))
    tb = await NicTB.create(dut, n_vfs=4, rules=16, width=width, seed=1, agents="fast")
    await tb.program(rules)
    result = {
        "64B": await _measure(tb, [_short_frame(rng, rules.vfs[i % 4]) for i in range(n_frames)]),
        "IMIX": await _measure(tb, _imix(rng, rules, n_frames)),
    }
    for r in result.values():
        assert r["in_cycles"] == r["beats_in"], "the source did not hold tvalid high"
        assert r["beats_out"] == r["beats_in"] and not any(r["overflow"]), r
    Path(os.environ["BENCH_OUT"]).write_text(json.dumps(result))
