"""cocotb tests of the NIC filter top against the golden model (``models/nic``).

Every test logs its seed; ``COCOTB_RANDOM_SEED=<seed>`` replays it. The parameters of the
top come from ``NIC_WIDTH``, ``NIC_VFS`` and ``NIC_RULES``, the stream agents from ``NIC_AGENTS``
(``cocotbext``, the default, or ``fast``); ``NIC_FRAMES`` sets the number of
frames and ``NIC_TRAFFIC`` their lengths (``imix``, the default, or ``short``: see
:data:`models.nic.traffic.SHORT`).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
import time

import cocotb

from models.nic.filter import Counters, Steering, judge
from models.nic.parse import parse
from models.nic.rules import format_mac, random_rules
from models.nic.run import run_model, run_vmm
from models.nic.traffic import IMIX, SHORT, generate_traffic, vm_ipv4
from vmassist.formats.nic import NIC_ID, CounterKind

from .score import score
from .tb import NicTB

#: Cycles after a rule write's response within which a frame may still see the old rule.
REWRITE_MARGIN = 64
#: ``NIC_TRAFFIC``: lengths of ordinary frames and the probability of a jumbo frame.
PROFILES = {"imix": {"sizes": IMIX, "jumbo": 0.02}, "short": {"sizes": SHORT, "jumbo": 0.003}}


def _params() -> dict:
    return {
        "width": int(os.environ.get("NIC_WIDTH", "64")),
        "n_vfs": int(os.environ.get("NIC_VFS", "4")),
        "rules": int(os.environ.get("NIC_RULES", "16")),
        # cocotbext-axi's stream agents, or tb.common.axis's for the bulk runs (tb.nic.tb)
        "agents": os.environ.get("NIC_AGENTS", "cocotbext"),
    }


def _frames(default: int) -> int:
    return int(os.environ.get("NIC_FRAMES", str(default)))


@cocotb.test()
async def registers(dut):
    """ID and PARAMS read back the instance; every counter starts at zero."""
    p = _params()
    tb = await NicTB.create(dut, seed=int(cocotb.RANDOM_SEED), **p)
    assert await tb.read_csr("ID") == NIC_ID
    params = await tb.read_csr("PARAMS")
    assert params & 0xFF == p["n_vfs"]
    assert (params >> 8) & 0xFF == p["rules"] % 256
    assert (params >> 16) & 0xFFFF == p["width"]
    assert 1 << ((params >> 32) & 0xFF) == 16384 // (p["width"] // 8)
    assert await tb.overflows() == [0] * (p["n_vfs"] + 2)


@cocotb.test()
async def traffic_rewrites_and_reinject(dut):
    """Seeded mixed traffic with idle cycles and back-pressure, single rules rewritten while it
    flows, and the VMM's software filter re-injecting the bounced frames it approves: every
    decision against the model (old or new rule around a rewrite), every queue against the
    decisions, isolation on every frame, and the counters."""
    wall = [time.perf_counter()]
    cpu = [time.process_time()]  # the simulator runs in this process: its time counts too
    p = _params()
    seed = int(cocotb.RANDOM_SEED)
    rng = random.Random(seed)
    n = p["n_vfs"]
    rules = random_rules(rng, n_vfs=n, max_rules=p["rules"])
    traffic = generate_traffic(
        rules, _frames(1500), seed, **PROFILES[os.environ.get("NIC_TRAFFIC", "imix")]
    )
    frames = [r.data for r in traffic.records]
    parsed = [parse(f) for f in frames]
    # The VMM's decisions on the bounced frames (the model's verdicts with the initial rules).
    model = run_model(rules, traffic.records)
    vmm = run_vmm(rules, traffic.records, model, traffic.egress)
    approve = {i for i, d in vmm.items() if d.action == "reinject"}
    wall.append(time.perf_counter())

    tb = await NicTB.create(dut, seed=seed, p_idle=0.2, p_stall=0.2, **p)
    await tb.program(rules)

    versions = [rules]
    windows: list[tuple[int, int]] = []  # (first, last) cycle a rewrite may be seen partly

    async def sender():
        for data in frames:
            await tb.send(data)

    async def rewriter():
        with_rules = [v for v in rules.vfs if v.rules]
        if not with_rules:
            return
        for step in range(1, 5):
            await tb.rx_frames_reach(len(frames) * step // 6)
            cur = versions[-1]
            vf = rng.choice([v for v in cur.vfs if v.rules])
            i = rng.randrange(len(vf.rules))
            pool = random_rules(random.Random(rng.random()), n_vfs=n, max_rules=p["rules"])
            new_rule = rng.choice([r for v in pool.vfs for r in v.rules] or [vf.rules[i]])
            new_vf = dataclasses.replace(vf, rules=(*vf.rules[:i], new_rule, *vf.rules[i + 1 :]))
            nxt = dataclasses.replace(
                cur, vfs=tuple(new_vf if v.id == vf.id else v for v in cur.vfs)
            )
            first = tb.cycle
            await tb.write_rule(nxt, vf.id, i)
            versions.append(nxt)
            windows.append((first, tb.cycle + REWRITE_MARGIN))
            tb.log.info("rule %d of vf%d rewritten at cycle %d", i, vf.id, tb.cycle)

    reinjected: list[list[bytes]] = [[] for _ in range(n)]
    bad = [0]

    async def reinjector():
        seen = 0
        vmm_idx = 0
        while True:
            while seen == len(tb.got.vmm):
                tb.vmm_arrived.clear()
                await tb.vmm_arrived.wait()
            while seen < len(tb.got.vmm):
                data, d = tb.got.vmm[seen]
                seen += 1
                # The input frame this is: the next VMM-bound decision with these bytes.
                while vmm_idx < len(tb.got.decisions) and not (
                    tb.got.decisions[vmm_idx].queue == "vmm" and frames[vmm_idx] == data
                ):
                    vmm_idx += 1
                if d.verdict == "bounce" and vmm_idx in approve:
                    reinjected[d.vf].append(data)
                    await tb.send_reinject(data, d.vf)
                    if rng.random() < 0.1:  # now and then a frame for no VF
                        bad[0] += 1
                        await tb.send_reinject(data, n + rng.randrange(256 - n))
                vmm_idx += 1

    cycle0 = tb.cycle
    wall.append(time.perf_counter())
    cpu.append(time.process_time())
    rew = cocotb.start_soon(rewriter())
    reinj = cocotb.start_soon(reinjector())
    await sender()
    await rew
    steer = [Steering(v) for v in versions]

    def allowed(i: int) -> set:
        c = tb.got.decision_cycles[i]
        k = sum(1 for _, last in windows if last < c)
        out = {judge(steer[k], parsed[i])}
        if any(first <= c <= last for first, last in windows):
            out.add(judge(steer[k + 1], parsed[i]))
        return out

    def expected_out() -> int:
        ds = tb.got.decisions
        return sum(d.queue != "drop" for d in ds) + sum(map(len, reinjected))

    # Time for a third of the traffic after the last rewrite, with room for idle and stalls.
    beats = sum(-(-len(f) // (p["width"] // 8)) for f in frames)
    await tb.quiesce(len(frames), expected_out, timeout=max(400_000, 2 * beats))
    reinj.cancel()
    wall.append(time.perf_counter())
    cpu.append(time.process_time())
    cycles = tb.cycle - cycle0
    overflow = await tb.overflows()
    rj_drop = [await tb.counter(CounterKind.REINJECT_DROP, k) for k in range(n + 1)]
    assert rj_drop[n] == bad[0], f"{rj_drop[n]} re-injected frames for no VF counted, {bad[0]} sent"
    out = score(
        frames,
        tb.got.decisions,
        [allowed(i) for i in range(len(frames))],
        tb.got,
        reinjected,
        overflow,
        rj_drop[:n],
    )
    for k in range(n):
        assert await tb.counter(CounterKind.REINJECT, k) == out.reinjected[k]

    # The counters, against the model's count of the hardware's (checked) decisions.
    want = Counters.for_rules(versions[-1])
    for d in tb.got.decisions:
        want.count(d)
    got = await tb.counters(versions[-1])
    assert got == want, f"counters: hardware {got.as_dict()}, model {want.as_dict()}"
    kinds = {d.verdict for d in tb.got.decisions}
    changed = sum(judge(steer[0], q) != judge(steer[-1], q) for q in parsed)
    tb.log.info(
        "%d frames (%s), %d rewrites changing %d verdicts, %d re-injected, overflow %s",
        len(frames),
        ", ".join(sorted(kinds)),
        len(windows),
        changed,
        sum(out.reinjected),
        overflow,
    )
    wall.append(time.perf_counter())
    gen, _, sim, check = (b - a for a, b in itertools.pairwise(wall))
    sim_cpu = cpu[2] - cpu[1]
    tb.log.info(
        "wall time: traffic and model %.1f s; %d cycles in %.1f s (%.0f cycles/s, %.0f frames/s; "
        "CPU %.1f s: %.0f cycles/s, %.0f frames/s); scoring %.1f s",
        gen,
        cycles,
        sim,
        cycles / sim,
        len(frames) / sim,
        sim_cpu,
        cycles / sim_cpu,
        len(frames) / sim_cpu,
        check,
    )
    assert {"pass", "unknown", "malformed"} <= kinds


@cocotb.test()
async def line_rate(dut):
    """tvalid held high, back-to-back shortest frames (64 bytes) for the VFs, every sink
    ready: every frame delivered, no drop, the decision latency constant and as documented,
    and the outputs keep pace with the input."""
    p = _params()
    seed = int(cocotb.RANDOM_SEED)
    rng = random.Random(seed)
    n = p["n_vfs"]
    rules = random_rules(rng, n_vfs=n, max_rules=p["rules"])
    frames = [_short_frame(rng, rules.vfs[rng.randrange(n)]) for _ in range(_frames(600))]
    tb = await NicTB.create(dut, seed=seed, **p)
    await tb.program(rules)
    for data in frames:
        await tb.send(data)
    await tb.quiesce(
        len(frames), lambda: sum(d.queue != "drop" for d in tb.got.decisions), timeout=50_000
    )
    lasts = tb.rx_last_cycles  # the cycle each frame's last beat went in
    beats = 64 // (p["width"] // 8)
    gaps = {b - a for a, b in itertools.pairwise(lasts)}
    assert gaps == {beats}, f"the source was not back to back: gaps {sorted(gaps)}"
    assert await tb.overflows() == [0] * (n + 2)
    steer = Steering(rules)
    want = [judge(steer, parse(f)) for f in frames]
    assert tb.got.decisions == want
    out = score(
        frames, tb.got.decisions, [{w} for w in want], tb.got, [[]] * n, [0] * (n + 2), [0] * n
    )
    assert sum(map(len, out.vf)) + len(out.vmm) == sum(d.queue != "drop" for d in want)
    lat = {c - last for c, last in zip(tb.got.decision_cycles, lasts, strict=True)}
    tb.log.info("%d frames at %d bits, decision latency %s cycles", len(frames), p["width"], lat)
    assert lat == {int(os.environ["NIC_LATENCY"])}, f"decision latency {sorted(lat)} cycles"


def _short_frame(rng: random.Random, vf) -> bytes:
    """A 64-byte UDP/IPv4 frame (60 bytes and the FCS on the wire would be 64: this is the
    stricter case, 64 bytes of stream) to ``vf``, tagged when the VF has a VLAN."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Dot1Q, Ether

    eth = Ether(dst=format_mac(vf.mac), src="02:00:00:00:99:01")
    if vf.vlan is not None:
        eth = eth / Dot1Q(vlan=vf.vlan)
    pkt = eth / IP(src=f"10.0.{rng.randrange(4)}.{rng.randrange(1, 255)}", dst=vm_ipv4(vf.id))
    pkt = pkt / UDP(sport=rng.choice((53, 80, 443, 1234, 40000)), dport=rng.choice((53, 80, 443)))
    head = bytes(pkt)
    pkt = pkt / (b"\0" * (64 - len(head)))
    return bytes(pkt)
