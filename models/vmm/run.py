"""Run a scenario on an MMU port, and write the outputs of ``vmassist mmu run``."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .mmu import COUNTERS, MMUModel
from .port import MmuPort
from .scenario import Scenario
from .vmm import VMM

__all__ = ["RunResult", "ARCH_FIELDS", "run_scenario", "run_model", "write_outputs", "OUTPUT_FILES"]

ARCH_FIELDS = ("gva", "hpa", "fault")
"""The fields of a result that are architectural: equal in every mode and implementation."""
OUTPUT_FILES = ("results.jsonl", "events.jsonl", "counters.json")


@dataclass
class RunResult:
    """What a scenario run produced.

    Members
    -------
    results : list of dict
        One record per ``access`` op, in order (see :meth:`VMM.access`).
    events : list of dict
        Everything else, in order (see :attr:`VMM.events`).
    counters : dict of str to int
        The MMU's event counters (``HITS`` ... ``STORES``), read at the end.
    """

    results: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)

    def arch(self) -> list[dict[str, Any]]:
        """The architectural part of every result."""
        return [{k: r[k] for k in ARCH_FIELDS} for r in self.results]


async def run_scenario(
    scenario: Scenario, port: MmuPort, *, log: logging.Logger | None = None
) -> RunResult:
    """Set up the VMM on ``port`` and execute every op of ``scenario`` in order."""
    vmm = VMM(port, log=log)
    await vmm.setup(scenario)
    results = []
    for i, op in enumerate(scenario.ops):
        r = await vmm.run_op(i, op)
        if r is not None:
            results.append(r)
    counters = {name: await port.csr_read(name) for name in COUNTERS}
    return RunResult(results, vmm.events, counters)


def run_model(
    scenario: Scenario, *, log: logging.Logger | None = None, **mmu_params: int
) -> RunResult:
    """Run ``scenario`` on the functional model (``MMUModel(**mmu_params)``) under asyncio."""
    return asyncio.run(run_scenario(scenario, MMUModel(**mmu_params), log=log))


def _jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)


def write_outputs(result: RunResult, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``results.jsonl``, ``events.jsonl`` and ``counters.json`` into ``out_dir``.

    Every file is written to a temporary file in ``out_dir`` first and renamed into place only
    when all of them are complete; if a rename fails, the files this call already published are
    removed again, so a failed run never leaves a half-written or mixed output. Returns the
    paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = {
        "results.jsonl": _jsonl(result.results),
        "events.jsonl": _jsonl(result.events),
        "counters.json": json.dumps(result.counters, indent=1) + "\n",
    }
    temps: dict[str, str] = {}
    published: list[Path] = []
    try:
        for name, text in texts.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=out)
            temps[name] = tmp
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
        for name, tmp in temps.items():
            os.replace(tmp, out / name)
            published.append(out / name)
    except BaseException:
        # Never leave a mix of this run's and an older run's files that looks complete.
        for path in published:
            path.unlink(missing_ok=True)
        raise
    finally:
        for tmp in temps.values():
            if os.path.exists(tmp):
                os.unlink(tmp)
    return [out / name for name in texts]
