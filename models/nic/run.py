"""Run the NIC model over a capture, and write the outputs of ``vmassist nic replay``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from vmassist.outdir import atomic_output_dir

from .filter import Counters, Steering, Verdict, judge
from .parse import parse
from .pcap import Record, pcap_bytes
from .rules import Rules
from .vmm import Decision, VmmFilter

__all__ = ["run_model", "run_vmm", "queue_records", "write_outputs", "verdicts_jsonl"]


def run_model(
    rules: Rules, records: Iterable[Record | tuple[int, bytes]], counters: Counters | None = None
) -> list[Verdict]:
    """The NIC filter's verdict for every frame, in input order (``counters`` updated)."""
    steer = Steering(rules)
    return [judge(steer, parse(data), counters) for _, data in records]


def run_vmm(
    rules: Rules,
    records: Sequence[Record | tuple[int, bytes]],
    verdicts: Sequence[Verdict],
    egress: Iterable[Record | tuple[int, bytes]] = (),
) -> dict[int, Decision]:
    """Run the VMM software filter over the bounced frames, with the VMs' egress interleaved.

    Returns
    -------
    dict of int to Decision
        Per index of a bounced input frame. Egress frames are applied before a received frame
        with a later or equal timestamp.
    """
    vmm = VmmFilter(rules.vmm)
    out_frames = sorted(egress, key=lambda r: r[0])
    k = 0
    decisions: dict[int, Decision] = {}
    for i, ((ts, data), v) in enumerate(zip(records, verdicts, strict=True)):
        while k < len(out_frames) and out_frames[k][0] <= ts:
            vmm.egress(out_frames[k][1], out_frames[k][0])
            k += 1
        if v.verdict == "bounce":
            decisions[i] = vmm.decide(data, ts, v)
    return decisions


def queue_records(
    records: Sequence[Record | tuple[int, bytes]], verdicts: Sequence[Verdict]
) -> dict[str, list[tuple[int, bytes]]]:
    """The frames of each queue (``vf<N>``, ``vmm``, ``drop``) in output order."""
    queues: dict[str, list[tuple[int, bytes]]] = {}
    for (ts, data), v in zip(records, verdicts, strict=True):
        queues.setdefault(v.queue, []).append((ts, data))
    return queues


def verdicts_jsonl(verdicts: Iterable[Verdict]) -> str:
    """``verdicts.jsonl``: one object per input frame, in input order."""
    return "".join(
        json.dumps(v.as_dict(i), separators=(",", ":")) + "\n" for i, v in enumerate(verdicts)
    )


def write_outputs(
    out_dir: str | os.PathLike[str],
    records: Sequence[Record | tuple[int, bytes]],
    verdicts: Sequence[Verdict],
    n_vfs: int,
    counters: Counters | None = None,
) -> list[Path]:
    """Write ``vf<N>.pcap`` (one per VF, even empty), ``vmm.pcap``, ``dropped.pcap``,
    ``verdicts.jsonl`` and, when given, ``counters.json`` into ``out_dir``, all or nothing
    (:func:`vmassist.outdir.atomic_output_dir`). Returns the paths written."""
    queues = queue_records(records, verdicts)
    nanos = any(ts % 1000 for ts, _ in records)  # keep the input's resolution when it needs ns
    files: dict[str, bytes] = {
        f"vf{n}.pcap": pcap_bytes(queues.get(f"vf{n}", []), nanos=nanos) for n in range(n_vfs)
    }
    files["vmm.pcap"] = pcap_bytes(queues.get("vmm", []), nanos=nanos)
    files["dropped.pcap"] = pcap_bytes(queues.get("drop", []), nanos=nanos)
    files["verdicts.jsonl"] = verdicts_jsonl(verdicts).encode()
    if counters is not None:
        files["counters.json"] = (json.dumps(counters.as_dict(), indent=1) + "\n").encode()
    with atomic_output_dir(out_dir) as tmp:
        for name, blob in files.items():
            (tmp / name).write_bytes(blob)
    return [Path(out_dir) / name for name in files]
