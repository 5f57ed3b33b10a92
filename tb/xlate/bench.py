"""``make bench`` (translation part): guest MIPS of every tier on the C benchmark programs,
measured side by side in one run with Unicorn's RISC-V engine and qemu-riscv64-static, as ratios.

Targets (issue 5): the block tier at least 10x the interpreter; the native tier at least 1.0x
Unicorn. Every run's stdout and exit status must equal qemu's, or the benchmark fails.

Instructions are those the guest retired (every tier counts the same; Unicorn and qemu run the
same program with the same arguments, so they execute the same instructions). The interpreter
runs each program at scale 1 (its rate does not depend on the length of the run); the others at
:data:`SCALE`. Each timing is the best of :data:`REPEAT` runs, start-up and translation included.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from statistics import geometric_mean

from models.xlate.elf import Image, read_elf
from models.xlate.linux import GuestExit, Linux
from models.xlate.machine import Machine
from models.xlate.memory import AddressSpace
from vmassist import riscv

BENCH = ("crc32", "sort", "matmul", "sieve", "strings", "recursion")
SCALE = 16
REPEAT = 3
OUT = riscv.ROOT / "build" / "bench" / "xlate.json"


def _best(run: Callable[[], object]) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(REPEAT):
        t = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - t)
    return best, result


def run_tier(elf: Path, args: tuple[str, ...], tier: str) -> tuple[bytes, int, int]:
    m = Machine(elf, args, tier=tier)
    status = m.run()
    assert status is not None
    return bytes(m.out), status, m.cpu.instret


def run_unicorn(image: Image, args: tuple[str, ...]) -> tuple[bytes, int]:
    """Run the program on Unicorn with nothing hooked but ``ecall`` (the same Linux serves the
    system calls): Unicorn at its full speed. Memory is the guest's start-up image, mirrored as
    the lockstep checker mirrors it."""
    from unicorn import UC_HOOK_INTR, Uc

    from models.xlate.lockstep import Peek, UnicornMirror

    mem = AddressSpace()
    out = bytearray()
    kernel = Linux(stdout=out.extend)
    cpu = kernel.start(mem, image, [image.path, *args])
    u, peek = UnicornMirror(hooks=False), Peek(mem)
    u.sync(peek, copy=True)
    u.set_regs(cpu.x, cpu.pc)
    regs = u.xregs
    status: list[int] = []

    class _UcMemory:  # what Linux's syscalls touch, in Unicorn's memory
        def read_bytes(self, addr: int, n: int) -> bytes:
            return bytes(u.uc.mem_read(addr, n))

        def write_bytes(self, addr: int, data: bytes) -> None:
            u.uc.mem_write(addr, data)

        def load(self, addr: int, size: int, signed: bool = False) -> int:
            return int.from_bytes(u.uc.mem_read(addr, size), "little", signed=signed)

    ucmem = _UcMemory()

    def ecall(uc: Uc, intno: int, _: object) -> None:
        if intno != 8:
            status.append(128 + 11)
            uc.emu_stop()
            return
        for i in (10, 11, 12, 17):
            cpu.x[i] = uc.reg_read(regs[i])
        try:
            kernel.syscall(cpu, ucmem)  # type: ignore[arg-type]
        except GuestExit as e:
            status.append(e.status)
            uc.emu_stop()
            return
        u.sync(peek)  # brk may have grown the heap
        uc.reg_write(regs[10], cpu.x[10])

    u.uc.hook_add(UC_HOOK_INTR, ecall)
    u.uc.emu_start(cpu.pc, 0)
    return bytes(out), status[0] if status else -1


def measure(name: str) -> dict[str, object]:
    elf = riscv.build(name)
    image = read_elf(elf)
    small, big = (), (str(SCALE),)
    want_small, want_big = riscv.run_qemu(elf, small), riscv.run_qemu(elf, big)
    row: dict[str, object] = {"program": name}
    secs, (out, status, n_small) = _best(lambda: run_tier(elf, small, "interp"))
    assert (out, status) == want_small, f"{name}: interp differs from qemu"
    row["interp"] = n_small / secs / 1e6
    n_big = 0
    for tier in ("block", "native"):
        secs, (out, status, n_big) = _best(lambda t=tier: run_tier(elf, big, t))
        assert (out, status) == want_big, f"{name}: {tier} differs from qemu"
        row[tier] = n_big / secs / 1e6
    secs, result = _best(lambda: run_unicorn(image, big))
    assert result == want_big, f"{name}: Unicorn differs from qemu"
    row["unicorn"] = n_big / secs / 1e6
    secs, result = _best(lambda: riscv.run_qemu(elf, big))
    row["qemu"] = n_big / secs / 1e6
    row["instructions"] = {"interp": n_small, "others": n_big}
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tb.xlate.bench", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--programs", nargs="*", default=list(BENCH), choices=riscv.PROGRAMS)
    args = ap.parse_args(argv)
    rows = [measure(p) for p in args.programs]
    cols = ("interp", "block", "native", "unicorn", "qemu")
    print("xlate: guest MIPS per tier (best of 3; interp at scale 1, the others at scale "
          f"{SCALE}), and ratios")  # fmt: skip
    print(f"  {'program':10s} {'insns':>10s} " + " ".join(f"{c:>8s}" for c in cols)
          + f" {'blk/int':>8s} {'nat/uc':>8s} {'nat/qemu':>8s}")  # fmt: skip
    for r in rows:
        v = {c: float(r[c]) for c in cols}  # type: ignore[arg-type]
        n = r["instructions"]["others"]  # type: ignore[index]
        print(f"  {r['program']:10s} {n:>10d} " + " ".join(f"{v[c]:8.2f}" for c in cols)
              + f" {v['block'] / v['interp']:8.1f} {v['native'] / v['unicorn']:8.2f}"
              f" {v['native'] / v['qemu']:8.2f}")  # fmt: skip
    g = {c: geometric_mean([float(r[c]) for r in rows]) for c in cols}  # type: ignore[arg-type]
    summary = {
        "geomean_mips": g,
        "block_over_interp": g["block"] / g["interp"],
        "native_over_unicorn": g["native"] / g["unicorn"],
        "native_over_qemu": g["native"] / g["qemu"],
    }
    print(f"  {'geomean':10s} {'':>10s} " + " ".join(f"{g[c]:8.2f}" for c in cols)
          + f" {summary['block_over_interp']:8.1f} {summary['native_over_unicorn']:8.2f}"
          f" {summary['native_over_qemu']:8.2f}")  # fmt: skip
    targets = (
        ("block / interp", summary["block_over_interp"], 10.0),
        ("native / Unicorn", summary["native_over_unicorn"], 1.0),
    )
    for what, value, target in targets:
        verdict = "met" if value >= target else "NOT met"
        print(f"  target {what} >= {target:g}x: {value:.2f}x, {verdict}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"rows": rows, **summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
