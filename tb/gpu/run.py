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

__all__ = ["run_track", "run_workload"]


def _run(sim, test_module, build_dir, seed, waves, env) -> None:
    results = run_cocotb(
        top=lambda: GpuTracker(addr_width=64),
        toplevel="gpu",
        test_module=test_module,
        sim=sim,
        build_dir=build_dir,
        seed=seed,
        waves=waves,
        log_file=build_dir / "sim.log",
        extra_env=env,
    )
    run, failed = results_ok(results)
    if not run or failed:
        raise UserError(f"simulation ({sim})", f"the run failed; see {build_dir / 'sim.log'}")


def run_workload(
    workload_path: Path,
    out_dir: Path,
    *,
    sim: str,
    seed: int | None = None,
    waves: bool = False,
    build_root: Path | None = None,
) -> None:
    """``vmassist gpu run`` with the tracker RTL on ``sim``: the checkpoint manager's outputs
    go into ``out_dir`` (a fresh directory)."""
    build_dir = Path(build_root or REPO / "build" / "sim") / f"gpu-{sim}-track"
    env = {
        "GPU_WORKLOAD": str(Path(workload_path).resolve()),
        "GPU_WORKLOAD_NAME": str(workload_path),
        "GPU_OUT": str(Path(out_dir).resolve()),
    }
    _run(sim, "tb.gpu.gpurun", build_dir, seed, waves, env)


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
        env = {"GPU_TRACE": str(Path(trace_path).resolve()), "GPU_RESULT": str(out)}
        _run(sim, "tb.gpu.track", build_dir, seed, waves, env)
        raw = json.loads(out.read_text())
    return [EpochReport(e["epoch"], tuple(e["pages"]), e["overflow"]) for e in raw["epochs"]]
