"""Replay a capture through the NIC RTL (``vmassist nic replay --sim icarus|verilator``)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hdl.nic import NicFilter
from models.nic.filter import Verdict
from models.nic.pcap import Record, pcap_bytes
from models.nic.rules import Rules, rules_to_toml
from vmassist.errors import UserError

from ..common.runner import REPO, results_ok, run_cocotb

__all__ = ["HwReplay", "run_hw"]


@dataclass
class HwReplay:
    """What the RTL did with a capture.

    Members
    -------
    verdicts : list of Verdict
        The decision tap, one per input frame in input order.
    queues : dict of str to list of int
        Input frame indices of ``vf<N>`` and ``vmm`` in the order the hardware delivered them.
    counters : dict
        The hardware counters in ``counters.json`` form.
    cycles : int
    reinjected : list of int
        Per VF, the re-injected frames it delivered.
    """

    verdicts: list[Verdict]
    queues: dict[str, list[int]]
    counters: dict
    cycles: int
    reinjected: list[int]


def run_hw(
    rules: Rules,
    records: list[Record],
    *,
    sim: str,
    width: int = 64,
    seed: int | None = None,
    waves: bool = False,
    build_root: Path | None = None,
    reinject: dict[int, int] | None = None,
) -> HwReplay:
    """Run ``records`` through a NIC sized for ``rules`` on ``sim``, then re-inject the frames
    ``reinject`` maps (input index -> VF) as the VMM would; the simulator's log goes to
    ``<build dir>/sim.log``."""
    build_root = Path(build_root or REPO / "build" / "sim")
    build_dir = build_root / f"nic-{sim}-w{width}-v{rules.n_vfs}-r{rules.max_rules}-replay"
    with tempfile.TemporaryDirectory(prefix="vmassist-nic-") as tmp:
        rules_file = Path(tmp) / "rules.toml"
        pcap = Path(tmp) / "in.pcap"
        out = Path(tmp) / "result.json"
        reinject_file = Path(tmp) / "reinject.json"
        reinject_file.write_text(json.dumps(sorted((reinject or {}).items())))
        rules_file.write_text(rules_to_toml(rules))
        pcap.write_bytes(pcap_bytes(records))
        results = run_cocotb(
            top=lambda: NicFilter(data_width=width, n_vfs=rules.n_vfs, rules=rules.max_rules),
            toplevel="nic",
            test_module="tb.nic.replay",
            sim=sim,
            build_dir=build_dir,
            seed=seed,
            waves=waves,
            log_file=build_dir / "sim.log",
            extra_env={
                "NIC_RULES_FILE": str(rules_file),
                "NIC_PCAP": str(pcap),
                "NIC_RESULT": str(out),
                "NIC_WIDTH": str(width),
                "NIC_REINJECT": str(reinject_file),
                **({"WAVES": "1"} if waves else {}),
            },
        )
        run, failed = results_ok(results)
        if not run or failed or not out.exists():
            log = build_dir / "sim.log"
            raise UserError(f"simulation ({sim})", f"the replay failed; see {log}")
        raw = json.loads(out.read_text())
    queues = {f"vf{k}": idx for k, idx in enumerate(raw["vf"])}
    queues["vmm"] = raw["vmm"]
    return HwReplay(
        verdicts=[Verdict(*d) for d in raw["decisions"]],
        queues=queues,
        counters=raw["counters"],
        cycles=raw["cycles"],
        reinjected=raw["reinjected"],
    )
