"""Run a write-address trace through the tracker RTL (``vmassist gpu track --sim
icarus|verilator``)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hdl.gpu import GpuTracker
from models.gpu.tracker import EpochReport
from vmassist.errors import UserError

from ..common.runner import REPO, results_ok, run_cocotb

__all__ = ["run_track"]


def run_track(
    trace_path: Path,
    *,
    sim: str,
    seed: int | None = None,
    waves: bool = False,
    build_root: Path | None = None,
) -> list[EpochReport]:
    """Every epoch of the trace in ``trace_path`` as the RTL reports it (default page and
    aperture size, 64-bit addresses); the simulator's log goes to ``<build dir>/sim.log``."""
    build_dir = Path(build_root or REPO / "build" / "sim") / f"gpu-{sim}-track"
    with tempfile.TemporaryDirectory(prefix="vmassist-gpu-") as tmp:
        out = Path(tmp) / "result.json"
        results = run_cocotb(
            top=lambda: GpuTracker(addr_width=64),
            toplevel="gpu",
            test_module="tb.gpu.track",
            sim=sim,
            build_dir=build_dir,
            seed=seed,
            waves=waves,
            log_file=build_dir / "sim.log",
            extra_env={"GPU_TRACE": str(Path(trace_path).resolve()), "GPU_RESULT": str(out)},
        )
        run, failed = results_ok(results)
        if not run or failed or not out.exists():
            raise UserError(f"simulation ({sim})", f"the run failed; see {build_dir / 'sim.log'}")
        raw = json.loads(out.read_text())
    return [EpochReport(e["epoch"], tuple(e["pages"]), e["overflow"]) for e in raw["epochs"]]
