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
from vmassist.formats.mmu import MMU_CSR

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
    Path(os.environ["BENCH_OUT"]).write_text(json.dumps(out))
