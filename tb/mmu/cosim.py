"""cocotb entry point for :func:`tb.mmu.run.run_hw`: one scenario, result written as JSON."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import cocotb

from models.vmm.run import run_scenario
from models.vmm.scenario import load_scenario

from .tb import MmuTB


@cocotb.test()
async def run(dut):
    scenario = load_scenario(os.environ["MMU_SCENARIO"])
    tb = await MmuTB.create(
        dut, seed=int(cocotb.RANDOM_SEED), p_pause=float(os.environ.get("MMU_PAUSE", "0.3"))
    )
    result = await run_scenario(scenario, tb.port)
    Path(os.environ["MMU_RESULT"]).write_text(json.dumps(asdict(result)))
