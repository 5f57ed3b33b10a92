"""cocotb entry point for :func:`tb.nic.run.run_hw`: one capture through the NIC, every sink
ready and ``rx`` back to back, then, when ``NIC_REINJECT`` names a JSON list of ``[frame index,
VF]``, those frames sent back through ``reinject``; the decisions, where each frame went and
the counters come back as JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb

from models.nic.pcap import read_pcap
from models.nic.rules import load_rules
from vmassist.formats.nic import CounterKind

from .score import score
from .tb import NicTB


@cocotb.test()
async def replay(dut):
    rules = load_rules(os.environ["NIC_RULES_FILE"])
    frames = [data for _, data in read_pcap(os.environ["NIC_PCAP"])]
    tb = await NicTB.create(
        dut,
        n_vfs=rules.n_vfs,
        rules=rules.max_rules,
        width=int(os.environ["NIC_WIDTH"]),
        seed=1,
        agents="fast",
    )
    await tb.program(rules)
    for data in frames:
        await tb.send(data)
    await tb.quiesce(len(frames), lambda: sum(d.queue != "drop" for d in tb.got.decisions))
    n = rules.n_vfs
    reinjected: list[list[bytes]] = [[] for _ in range(n)]
    if os.environ.get("NIC_REINJECT"):
        for i, vf in json.loads(Path(os.environ["NIC_REINJECT"]).read_text()):
            reinjected[vf].append(frames[i])
            await tb.send_reinject(frames[i], vf)
        out_now = tb.delivered()
        await tb.quiesce(len(frames), lambda: out_now + sum(map(len, reinjected)))
    overflow = await tb.overflows()
    assert not any(overflow), f"the hardware dropped frames for lack of room: {overflow}"
    rj_drop = [await tb.counter(CounterKind.REINJECT_DROP, k) for k in range(n)]
    assert not any(rj_drop), f"the hardware dropped re-injected frames: {rj_drop}"
    decisions = tb.got.decisions
    # Every queue against the hardware's own decisions: the replay reports what it did.
    allowed = [{d} for d in decisions]
    out = score(frames, decisions, allowed, tb.got, reinjected, overflow, rj_drop)
    counters = await tb.counters(rules)
    Path(os.environ["NIC_RESULT"]).write_text(
        json.dumps(
            {
                "decisions": [[d.verdict, d.vf, d.rule, d.queue] for d in decisions],
                "vf": out.vf,
                "vmm": out.vmm,
                "reinjected": out.reinjected,
                "counters": counters.as_dict(),
                "cycles": tb.cycle,
            }
        )
    )
