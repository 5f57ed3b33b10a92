"""Run a scenario on the RTL (``vmassist mmu run --sim icarus|verilator``)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hdl.mmu import MMU
from models.vmm.run import RunResult
from models.vmm.scenario import Scenario, scenario_to_toml
from vmassist.errors import UserError

from ..common.runner import REPO, results_ok, run_cocotb

__all__ = ["run_hw"]


def run_hw(
    scenario: Scenario,
    *,
    sim: str,
    seed: int | None = None,
    waves: bool = False,
    entries: int = 32,
    p_pause: float = 0.3,
    build_root: Path | None = None,
    quiet: bool = True,
) -> RunResult:
    """Run ``scenario`` through the VMM model driving the MMU RTL on ``sim``.

    The scenario travels to the simulator process as TOML, and the result comes back as JSON.
    With ``quiet`` the simulator's log goes to ``<build dir>/sim.log``.
    """
    build_root = Path(build_root or REPO / "build" / "sim")
    build_dir = build_root / f"mmu-{sim}-e{entries}-run"
    with tempfile.TemporaryDirectory(prefix="vmassist-mmu-") as tmp:
        scen = Path(tmp) / "scenario.toml"
        out = Path(tmp) / "result.json"
        scen.write_text(scenario_to_toml(scenario))
        results = run_cocotb(
            top=lambda: MMU(entries=entries),
            toplevel="mmu",
            test_module="tb.mmu.cosim",
            sim=sim,
            build_dir=build_dir,
            seed=seed,
            waves=waves,
            log_file=build_dir / "sim.log" if quiet else None,
            extra_env={
                "MMU_SCENARIO": str(scen),
                "MMU_RESULT": str(out),
                "MMU_PAUSE": str(p_pause),
                **({"WAVES": "1"} if waves else {}),
            },
        )
        run, failed = results_ok(results)
        if not run or failed or not out.exists():
            raise UserError(
                f"simulation ({sim})", f"the co-simulation failed; see {build_dir / 'sim.log'}"
            )
        return RunResult(**json.loads(out.read_text()))
