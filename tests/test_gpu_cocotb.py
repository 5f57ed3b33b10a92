"""cocotb regressions of the GPU dirty tracker on both simulators (``tb/gpu/test_tracker.py``)."""

from __future__ import annotations

import os
import random

import pytest

from hdl.gpu import TrackedWrites
from tb.common.runner import REPO, results_ok, run_cocotb

pytestmark = pytest.mark.cocotb


def test_tracker(sim: str) -> None:
    seed = int(
        os.environ.get("SEED") or os.environ.get("COCOTB_RANDOM_SEED") or random.randrange(1 << 31)
    )
    print(f"cocotb seed {seed} (replay: SEED={seed})")
    results = run_cocotb(
        top=lambda: TrackedWrites(aperture_bits=20),
        toplevel="gpu_tb",
        test_module="tb.gpu.test_tracker",
        sim=sim,
        build_dir=REPO / "build" / "sim" / f"gpu-{sim}",
        seed=seed,
        extra_env={"GPU_PAGE_BITS": "12", "GPU_APERTURE_BITS": "20", "GPU_WRITES": "600"},
    )
    run, failed = results_ok(results)
    assert run > 0, "cocotb ran no test"
    assert failed == 0, f"{failed} of {run} cocotb tests failed (seed {seed}); see {results}"
