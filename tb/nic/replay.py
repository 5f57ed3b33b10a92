"""cocotb entry point for :func:`tb.nic.run.run_hw`: one capture through the NIC, every sink
ready and ``rx`` back to back; the decisions, where each frame went and the counters come back
as JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb

from models.nic.pcap import read_pcap
from models.nic.rules import load_rules

from .score import score
from .tb import NicTB


@cocotb.test()
async def replay(dut):
    rules = load_rules(os.environ["NIC_RULES_FILE"])
    frames = [data for _, data in read_pcap(os.environ["NIC_PCAP"])]
    tb = await NicTB.create(
        dut, n_vfs=rules.n_vfs, rules=rules.max_rules, width=int(os.environ["NIC_WIDTH"]), seed=1
    )
    await tb.program(rules)
    for data in frames:
        await tb.send(data)
    await tb.quiesce(len(frames), lambda: sum(d.queue != "drop" for d in tb.got.decisions))
    n = rules.n_vfs
    overflow = await tb.overflows()
    assert not any(overflow), f"the hardware dropped frames for lack of room: {overflow}"
    decisions = tb.got.decisions
    # Every queue against the hardware's own decisions: the replay reports what it did.
    out = score(frames, decisions, [{d} for d in decisions], tb.got, [[]] * n, overflow, [0] * n)
    counters = await tb.counters(rules)
    Path(os.environ["NIC_RESULT"]).write_text(
        json.dumps(
            {
                "decisions": [[d.verdict, d.vf, d.rule, d.queue] for d in decisions],
                "vf": out.vf,
                "vmm": out.vmm,
                "counters": counters.as_dict(),
                "cycles": tb.cycle,
            }
        )
    )
