"""``make demo`` (translation part): a RISC-V guest program (``examples/xlate/sort.c``, built
with the RISC-V toolchain) runs through the translation layer on every tier, inside the modelled
VM: its memory goes through the guest's x86-64 page tables and the EPT of ``models/vmm``. Its
output is checked against qemu-riscv64-static, the self-modifying ``smc`` program runs in
lockstep with Unicorn, and the guest's translations drive the MMU RTL on Verilator in shadow
mode with runtime verification. Writes the run to ``build/demo/xlate/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from models.vmm.bits import X86
from models.vmm.paging import guest_leaf
from models.vmm.run import run_model
from models.vmm.scenario import scenario_to_toml
from models.xlate.lockstep import check
from models.xlate.machine import TIERS, Machine
from models.xlate.vmtrace import expected_hpas, mmu_scenario
from vmassist import riscv
from vmassist.toolchain import use_project_tools, waves_from_env

from ..common.runner import REPO

PROGRAM, ARGS = "sort", ("2",)


def _pte_bits(m: Machine) -> tuple[int, int, int]:
    """Guest pages mapped; of them, Accessed; Dirty (read back from the guest's tables)."""
    mapped = accessed = dirty = 0
    for gva, _, _ in m.mem.guest.mappings():
        leaf = guest_leaf(m.mem.tables, m.mem.gcr3, m.mem.eptp, gva)
        assert leaf is not None
        pte = X86.decode(leaf.value)
        mapped += 1
        accessed += pte["a"]
        dirty += pte["d"]
    return mapped, accessed, dirty


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tb.xlate.demo", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--sim", choices=("icarus", "verilator"), default="verilator")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "demo" / "xlate")
    args = ap.parse_args(argv)
    use_project_tools()
    ok = True
    elf = riscv.build(PROGRAM)
    q_out, q_status = riscv.run_qemu(elf, ARGS)
    print(f"xlate: {elf.relative_to(REPO)} {' '.join(ARGS)} in the modelled VM "
          f"(qemu-riscv64-static: exit {q_status}, {len(q_out)} bytes of stdout)")  # fmt: skip
    runs = {}
    for tier in TIERS:
        m = Machine(elf, ARGS, tier=tier)
        t = time.perf_counter()
        status = m.run()
        secs = time.perf_counter() - t
        same = (bytes(m.out), status) == (q_out, q_status)
        ok &= same
        runs[tier] = m
        print(f"  {tier:7s} exit {status}  {m.cpu.instret:>9d} instructions  "
              f"{m.cpu.instret / secs / 1e6:7.2f} MIPS  {m.mem.walks:4d} page walks  "
              f"stdout {'== qemu' if same else '!= qemu (FAIL)'}")  # fmt: skip
    m = runs["native"]
    print("  guest stdout:")
    for line in bytes(m.out).decode(errors="replace").splitlines():
        print(f"    | {line}")
    mapped, accessed, dirty = _pte_bits(m)
    print(f"  guest page tables: {mapped} pages mapped on demand, {accessed} Accessed, "
          f"{dirty} Dirty (set by the VMM's walks)")  # fmt: skip

    smc = Machine(riscv.build("smc"), tier="block")
    lock = check(smc)
    print(f"  smc on the block tier in lockstep with Unicorn: {lock.blocks} blocks, "
          f"{lock.instructions} instructions compared, exit {lock.status}, "
          f"{smc.engine.invalidations} code invalidations")  # fmt: skip

    scenario = mmu_scenario(m.mem, "shadow")
    want = expected_hpas(m.mem, scenario)
    from tb.mmu.run import run_hw

    rtl = run_hw(scenario, sim=args.sim, waves=waves_from_env())
    same_rtl = [r["hpa"] for r in rtl.results] == want
    same_model = rtl.arch() == run_model(scenario).arch()
    mismatches = [e for e in rtl.events if e["type"] == "rv_mismatch"]
    ok &= same_rtl and same_model and not mismatches
    print(f"  the guest's {len(want)} translations replayed on the MMU RTL ({args.sim}, shadow "
          f"mode): host addresses {'identical' if same_rtl else 'DIFFERENT'}, "
          f"model {'agrees' if same_model else 'DISAGREES'}, "
          f"{len(mismatches)} runtime-verification mismatches")  # fmt: skip

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stdout.txt").write_bytes(bytes(m.out))
    (args.out / "scenario.toml").write_text(scenario_to_toml(scenario))
    summary = {
        "program": PROGRAM, "args": list(ARGS), "status": m.status,
        "instructions": m.cpu.instret, "pages_mapped": mapped, "walks": m.mem.walks,
        "qemu_identical": all((bytes(r.out), r.status) == (q_out, q_status) for r in runs.values()),
        "lockstep_blocks": lock.blocks, "mmu_rtl_identical": same_rtl,
    }  # fmt: skip
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"  written to {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
