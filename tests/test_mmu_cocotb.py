"""cocotb regressions of the MMU on both simulators, one build directory per case."""

from __future__ import annotations

import os
import random

import pytest

from hdl.mmu import MMU
from tb.common.runner import REPO, results_ok, run_cocotb

pytestmark = pytest.mark.cocotb


@pytest.mark.parametrize("entries", [32, 8])
def test_mmu(sim: str, entries: int) -> None:
    seed = int(
        os.environ.get("SEED") or os.environ.get("COCOTB_RANDOM_SEED") or random.randrange(1 << 31)
    )
    print(f"cocotb seed {seed} (replay: make sim BLOCK=mmu SIM={sim} SEED={seed})")
    results = run_cocotb(
        top=lambda: MMU(entries=entries),
        toplevel="mmu",
        test_module="tb.mmu.test_mmu",
        sim=sim,
        build_dir=REPO / "build" / "sim" / f"mmu-{sim}-e{entries}",
        seed=seed,
        extra_env={"MMU_ENTRIES": str(entries)},
    )
    run, failed = results_ok(results)
    assert run > 0, "cocotb ran no test"
    assert failed == 0, f"{failed} of {run} cocotb tests failed (seed {seed}); see {results}"
