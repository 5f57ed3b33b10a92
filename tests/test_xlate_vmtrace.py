"""The translation layer runs inside the modelled VM: the translations its softmmu took from the
VMM's guest tables and EPT, replayed through the VMM on the MMU (model, then RTL on both
simulators, in EPT and in shadow mode with runtime verification), give the same host-physical
addresses."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from models.vmm.run import run_model
from models.vmm.scenario import check_scenario
from models.xlate.machine import Machine
from models.xlate.vmtrace import expected_hpas, mmu_scenario

PROGRAM = r"""
long table[4096];
static char msg[] = "sum 0000000000\n";
void _start(void) {
    long s = 0;
    for (int i = 0; i < 4096; i += 7) table[i] = i;          /* 8 pages of data */
    for (int i = 4095; i >= 0; i -= 5) s += table[i];
    char *stack = __builtin_alloca(20000);                  /* stack pages below */
    for (int i = 0; i < 20000; i += 512) stack[i] = (char)i;
    for (int i = 0; i < 20000; i += 512) s += stack[i];
    for (int i = 13; i > 3; i--, s /= 10) msg[i] = '0' + s % 10;
    register long a0 asm("a0") = 1, a1 asm("a1") = (long)msg, a2 asm("a2") = 15;
    register long a7 asm("a7") = 64;
    asm volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a7) : "memory");
    a0 = 0; a7 = 93;
    asm volatile("ecall" : "+r"(a0) : "r"(a7));
}
"""


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Machine:
    cc = shutil.which("riscv64-unknown-elf-gcc")
    if cc is None:
        pytest.fail("riscv64-unknown-elf-gcc is missing: 'make setup' installs it")
    tmp = tmp_path_factory.mktemp("vmtrace")
    (tmp / "p.c").write_text(PROGRAM)
    flags = ["-march=rv64imac_zicsr", "-mabi=lp64", "-O1", "-static", "-nostdlib"]
    subprocess.run([cc, *flags, "-o", str(tmp / "p.elf"), str(tmp / "p.c")], check=True)
    m = Machine(tmp / "p.elf", tier="block")
    assert m.run() == 0 and bytes(m.out).startswith(b"sum ")
    return m


@pytest.mark.parametrize("mode", ["ept", "shadow"])
def test_mmu_model_gives_the_translations_the_guest_used(guest: Machine, mode: str) -> None:
    s = mmu_scenario(guest.mem, mode)
    check_scenario(s)
    assert s.n_accesses() >= 15  # code, data, stack and the write of each
    r = run_model(s)
    assert [x["fault"] for x in r.results] == [None] * len(s.ops)
    assert [x["hpa"] for x in r.results] == expected_hpas(guest.mem, s)
    if mode == "shadow":
        assert not [e for e in r.events if e["type"] == "rv_mismatch"]


@pytest.mark.cocotb
def test_mmu_rtl_gives_the_translations_the_guest_used(guest: Machine, sim: str) -> None:
    from tb.mmu.run import run_hw

    s = mmu_scenario(guest.mem, "shadow")
    r = run_hw(s, sim=sim)
    assert [x["hpa"] for x in r.results] == expected_hpas(guest.mem, s)
    assert r.arch() == run_model(s).arch()
