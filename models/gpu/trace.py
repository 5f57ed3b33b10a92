"""Write-address traces for ``vmassist gpu track`` (``DESIGN.md``, "Command line"), and the
tracker model run over one.

A trace is CSV with the header ``awaddr,awlen,awsize,awburst``: one accepted AW per row
(numbers in decimal or ``0x`` hex, ``awburst`` FIXED, INCR or WRAP), or a row whose first field
is ``flip``, which ends the epoch. Addresses are relative to the aperture. The epochs are read
out in order: each one after the flip that ends it, the last at the end of the trace.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from vmassist.errors import UserError, read_text
from vmassist.outdir import atomic_output_file

from .axi import Aw, Burst
from .tracker import DirtyTracker, EpochReport

__all__ = ["FLIP", "HEADER", "load_trace", "run_model", "epochs_jsonl", "write_epochs"]

HEADER = ("awaddr", "awlen", "awsize", "awburst")


FLIP: Final = "flip"
"""The trace item that ends an epoch."""

#: The largest address a trace may give: 64-bit AXI.
_ADDR_MAX = (1 << 64) - 1


def _number(text: str, name: str, field: str, lo: int, hi: int) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise UserError(name, f"not a number: {text!r}", field) from None
    if not lo <= value <= hi:
        raise UserError(name, f"must be {lo} to {hi:#x}, not {text}", field)
    return value


def load_trace(path: str | os.PathLike[str]) -> list[Aw | str]:
    """The AWs and flips of the trace in ``path``, in order.

    Raises
    ------
    UserError
        The file cannot be read, or a row is bad (named by its line number and field).
    """
    name = os.fspath(path)
    rows = csv.reader(io.StringIO(read_text(name)))
    header = next(rows, None)
    if header is None or tuple(h.strip() for h in header) != HEADER:
        raise UserError(name, f"the header must be {','.join(HEADER)}", "line 1")
    items: list[Aw | str] = []
    for line, row in enumerate(rows, start=2):
        cells = [c.strip() for c in row]
        if not cells or cells == [""]:
            continue
        if cells[0].lower() == FLIP:
            items.append(FLIP)
            continue
        if len(cells) != len(HEADER):
            raise UserError(name, f"{len(cells)} fields, not {len(HEADER)}", f"line {line}")
        where = [f"line {line}: {h}" for h in HEADER]
        burst = cells[3].upper()
        if burst not in ("FIXED", "INCR", "WRAP"):
            raise UserError(name, f"must be FIXED, INCR or WRAP, not {cells[3]!r}", where[3])
        items.append(
            Aw(
                _number(cells[0], name, where[0], 0, _ADDR_MAX),
                _number(cells[1], name, where[1], 0, 255),
                _number(cells[2], name, where[2], 0, 7),
                Burst[burst],
            )
        )
    return items


def run_model(trace: Sequence[Aw | str], tracker: DirtyTracker | None = None) -> list[EpochReport]:
    """Every epoch of ``trace`` as the tracker reports it. At each flip the driver drains the
    log, then flips and reads the ended epoch out; the last epoch is read out at the end."""
    tr = DirtyTracker() if tracker is None else tracker
    reports = []
    for item in [*trace, FLIP]:
        if item == FLIP:
            tr.log_pop()
            tr.flip()
            reports.append(tr.read_out())
        else:
            tr.write(item)
    return reports


def epochs_jsonl(reports: Sequence[EpochReport]) -> str:
    """``epochs.jsonl``: one object per epoch, in order."""
    return "".join(
        json.dumps({"epoch": r.epoch, "pages": list(r.pages), "overflow": r.overflow}) + "\n"
        for r in reports
    )


def write_epochs(out_dir: str | os.PathLike[str], reports: Sequence[EpochReport]) -> Path:
    """Write ``epochs.jsonl`` into ``out_dir`` (created if need be), whole or not at all."""
    path = Path(out_dir) / "epochs.jsonl"
    with atomic_output_file(path) as tmp:
        tmp.write_text(epochs_jsonl(reports))
    return path
