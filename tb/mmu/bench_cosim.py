"""cocotb side of ``make bench``: the standard trace in three configurations on one DUT."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb

from models.vmm.run import COUNTERS, RunResult
from models.vmm.vmm import VMM
from models.vmm.workload import standard_trace, summarize, with_mode
from vmassist.formats.mmu import MMU_CSR, AccessKind, Fault

from .tb import MmuTB

CONFIGS = ("ept-cold", "ept-pwc", "shadow")


@cocotb.test()
async def standard_trace_configs(dut):
    tb = await MmuTB.create(dut, seed=1, p_pause=0.0)  # ideal memory: 1-cycle AXI handshakes
    n = int(os.environ.get("BENCH_ACCESSES", "2000"))
    out = {}
    for config in CONFIGS:
        scenario = with_mode(
            standard_trace(n_accesses=n), "shadow" if config == "shadow" else "ept"
        )
        tb.port.mem.clear()
        await tb.reset()
        vmm = VMM(tb.port)
        await vmm.setup(scenario)
        if config == "ept-cold":
            await tb.port.csr_write("CTRL", MMU_CSR["CTRL"].pack(mode=0, pwc_en=0, vpid=vmm.vpid))
        start_cycle, start = tb.cycle, time.perf_counter()
        results = [r for i, op in enumerate(scenario.ops) if (r := await vmm.run_op(i, op))]
        wall = time.perf_counter() - start
        counters = {name: await tb.port.csr_read(name) for name in COUNTERS}
        summary = summarize(scenario, RunResult(results, vmm.events, counters))
        summary.update(cycles=tb.cycle - start_cycle, wall_s=wall)
        out[config] = summary
        tb.log.info("%s: %s", config, summary)
    out["wp"] = await _wp_fault_cycles(tb)
    tb.log.info("wp: %s", out["wp"])
    Path(os.environ["BENCH_OUT"]).write_text(json.dumps(out))


async def _wp_fault_cycles(tb: MmuTB) -> dict:
    """Cycles from a guest store to a protected PTE until the WP fault (with the flush of the
    derived entries) is answered, with the store's own translation missing and hitting."""
    scenario = standard_trace(n_accesses=0)
    tb.port.mem.clear()
    await tb.reset()
    vmm = VMM(tb.port)
    await vmm.setup(scenario)
    gva = scenario.guest[2].gva  # a 4K data page
    out = {}
    for label in ("store translation missed", "store translation hit"):
        await tb.access(gva, AccessKind.READ, True)  # the PTE is now held by a TLB entry
        pte_gva, value = vmm.pte_store(gva, writable=True)
        resp = await tb.access(pte_gva, AccessKind.WRITE, False, value)
        assert resp.fault == Fault.WP and resp.flushed == 1, resp
        await vmm.handle_wp(pte_gva, resp, value)
        out[label] = resp.cycles
    return out
