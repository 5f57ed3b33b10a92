"""Every tier of the translation layer runs every C guest program of ``examples/xlate`` exactly
as qemu-riscv64-static does (stdout and exit status), and the tiers agree with each other on the
instructions retired and the final registers. ``smc`` must make the translating tiers drop code.
"""

from __future__ import annotations

import os
import shutil

import pytest

from models.xlate.machine import TIERS, Machine
from vmassist import riscv

pytestmark = pytest.mark.skipif(
    not (shutil.which(riscv.CC) and shutil.which(riscv.QEMU)) and not os.environ.get("CI"),
    reason="the RISC-V cross GCC, picolibc and qemu-user are installed by make setup "
    "(under CI their absence fails)",
)


@pytest.mark.parametrize("name", riscv.PROGRAMS)
def test_every_tier_matches_qemu(name: str) -> None:
    args = ("2",) if name != "smc" else ()
    want = riscv.run_qemu(riscv.build(name), args)
    states = {}
    for tier in TIERS:
        m = Machine(riscv.build(name), args, tier=tier)
        status = m.run()
        assert (bytes(m.out), status) == want, f"{name} on {tier}: {m.signal}"
        states[tier] = (m.cpu.instret, m.cpu.pc, tuple(m.cpu.x))
        if tier != "interp" and name == "smc":
            assert m.engine.invalidations > 0, f"{tier} never dropped modified code"
    assert len(set(states.values())) == 1, f"{name}: the tiers end in different states"
