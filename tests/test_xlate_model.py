"""The translation layer's model: ELF checks, Linux start-up and syscalls, memory through the
VMM's tables, precise faults, instruction budgets, on every tier. Guests are small C programs
compiled here with the RISC-V toolchain ``make setup`` installs."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from models.vmm.bits import X86
from models.vmm.paging import guest_leaf, ref_translate
from models.xlate.machine import TIERS, Machine
from models.xlate.memory import RAM_HPA
from vmassist.formats.mmu import AccessKind

CC = "riscv64-unknown-elf-gcc"
FLAGS = ["-march=rv64imac_zicsr", "-mabi=lp64", "-O1", "-static", "-nostdlib", "-ffreestanding"]
SYSCALL = r"""
static long sys3(long n, long a, long b, long c) {
    register long a0 asm("a0") = a; register long a1 asm("a1") = b;
    register long a2 asm("a2") = c; register long a7 asm("a7") = n;
    asm volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a7) : "memory");
    return a0;
}
static void put(const char *s) { long n = 0; while (s[n]) n++; sys3(64, 1, (long)s, n); }
static void put_num(long v) {
    char b[24]; int i = 23; b[i] = 0; int neg = v < 0; unsigned long u = neg ? -v : v;
    do { b[--i] = '0' + u % 10; u /= 10; } while (u);
    if (neg) b[--i] = '-';
    put(b + i);
}
"""


@pytest.fixture(scope="module")
def cc() -> str:
    if shutil.which(CC) is None:
        pytest.fail(f"{CC} is missing: 'make setup' installs gcc-riscv64-unknown-elf")
    return CC


def compile_c(cc: str, tmp: Path, name: str, body: str) -> Path:
    src = tmp / f"{name}.c"
    src.write_text(SYSCALL + body)
    out = tmp / f"{name}.elf"
    subprocess.run([cc, *FLAGS, "-o", str(out), str(src)], check=True)
    return out


def vmassist(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "vmassist.cli", *args], input=stdin, capture_output=True
    )


@pytest.fixture(scope="module")
def hello(cc: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_c(cc, tmp_path_factory.mktemp("hello"), "hello", r"""
char buf[64];
void _start(void) {
    long n = sys3(63, 0, (long)buf, sizeof buf);   /* read stdin */
    put("got "); put_num(n); put(": "); sys3(64, 1, (long)buf, n); put("\n");
    sys3(94, 7, 0, 0);
}
""")  # fmt: skip


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("check", [(), ("--check", "unicorn")], ids=["alone", "lockstep"])
def test_cli_gives_the_guest_stdout_stdin_and_status(
    hello: Path, tier: str, check: tuple[str, ...]
) -> None:
    r = vmassist("xlate", "run", str(hello), "--tier", tier, *check, stdin=b"abc")
    assert (r.stdout, r.returncode, r.stderr) == (b"got 3: abc\n", 7, b"")


def _first_load(raw: bytes) -> int:
    """File offset of the first PT_LOAD program header."""
    phoff, phentsize = int.from_bytes(raw[32:40], "little"), int.from_bytes(raw[54:56], "little")
    i = phoff
    while int.from_bytes(raw[i : i + 4], "little") != 1:
        i += phentsize
    return i


def _patched(src: Path, dst: Path, offset: int, data: bytes) -> Path:
    raw = bytearray(src.read_bytes())
    raw[offset : offset + len(data)] = data
    dst.write_bytes(bytes(raw))
    return dst


def test_bad_executables_are_one_line_exit_2(hello: Path, tmp_path: Path) -> None:
    raw = hello.read_bytes()
    cases = {
        "not ELF": (_patched(hello, tmp_path / "a", 0, b"\x7fELX"), "e_ident"),
        "32-bit": (_patched(hello, tmp_path / "b", 4, b"\x01"), "EI_CLASS"),
        "x86-64": (Path(sys.executable).resolve(), "e_machine"),
        "float ABI": (_patched(hello, tmp_path / "c", 48, b"\x05"), "e_flags"),
        "dynamic": (_patched(hello, tmp_path / "d", 16, b"\x03"), "e_type"),
        "truncated": (tmp_path / "e", "truncated"),
        "kernel address": (
            _patched(
                hello,
                tmp_path / "f",
                _first_load(raw) + 16,
                (0xFFFF_8000_0000_0000).to_bytes(8, "little"),
            ),
            "user range",
        ),
        "missing": (tmp_path / "nothing-here", "cannot read"),
    }
    (tmp_path / "e").write_bytes(raw[: len(raw) // 3])
    for what, (path, word) in cases.items():
        r = vmassist("xlate", "run", str(path))
        lines = r.stderr.decode().splitlines()
        assert r.returncode == 2 and len(lines) == 1, (what, r.stderr)
        assert str(path) in lines[0] and word in lines[0], (what, lines)
        assert "Traceback" not in lines[0] and r.stdout == b"", what


@pytest.fixture(scope="module")
def syscalls(cc: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_c(cc, tmp_path_factory.mktemp("sys"), "sys", r"""
void _start(void) {
    put_num(sys3(172, 0, 0, 0)); put("\n");          /* getpid: not ours */
    long b0 = sys3(214, 0, 0, 0);
    long b1 = sys3(214, b0 + 100000, 0, 0);
    char *p = (char *)b0; p[99999] = 42; p[0] = 1;    /* the new heap is usable */
    put_num(b1 - b0); put(" "); put_num(p[99999] + p[0]); put("\n");
    put_num(sys3(64, 1, 16, 4)); put("\n");          /* a bad buffer: -EFAULT */
    put_num(sys3(64, 5, (long)"x", 1)); put("\n");   /* a bad fd: -EBADF */
    sys3(93, 3, 0, 0);
}
""")  # fmt: skip


@pytest.mark.parametrize("tier", TIERS)
def test_syscalls_and_unknown_ones(
    syscalls: Path, tier: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="models.xlate"):
        m = Machine(syscalls, tier=tier)
        assert m.run() == 3
    assert bytes(m.out) == b"-38\n100000 43\n-14\n-9\n"
    assert [n for n, _ in m.kernel.unknown] == [172]
    assert "unknown syscall 172" in caplog.text


@pytest.fixture(scope="module")
def faulting(cc: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_c(cc, tmp_path_factory.mktemp("fault"), "fault", r"""
long data[512];
void _start(void) {
    for (int i = 0; i < 512; i++) data[i] = i * 3;
    long s = 0;
    for (int i = 0; i < 512; i++) s += data[i];
    put_num(s); put("\n");
    asm volatile(".globl boom\n li t0, 0x1000\n boom: sd t0, 8(t0)" ::: "t0", "memory");
    sys3(93, 0, 0, 0);
}
""")  # fmt: skip


def test_faults_are_precise_on_every_tier(faulting: Path) -> None:
    seen = set()
    for tier in TIERS:
        m = Machine(faulting, tier=tier)
        assert m.run() == 128 + 11, tier
        assert m.signal is not None and m.cpu.pc == m.image.symbols["boom"], tier
        assert bytes(m.out) == b"392448\n"
        seen.add((m.cpu.instret, tuple(m.cpu.x)))
    assert len(seen) == 1, "the tiers disagree on the state at the fault"


def test_memory_goes_through_the_guest_tables_and_the_ept(faulting: Path) -> None:
    m = Machine(faulting, tier="block")
    m.run()
    mem, data = m.mem, m.image.symbols["data"]
    for gva in range(data, data + 512 * 8, 4096):
        t = ref_translate(mem.tables, mem.gcr3, mem.eptp, gva, AccessKind.READ, True)
        assert t.ok and t.hpa >= RAM_HPA
        o = t.hpa - RAM_HPA
        assert int.from_bytes(mem.ram[o : o + 8], "little") == ((gva - data) // 8) * 3
        leaf = guest_leaf(mem.tables, mem.gcr3, mem.eptp, gva)
        assert leaf is not None
        pte = X86.decode(leaf.value)
        assert (pte["a"], pte["d"], pte["us"], pte["rw"]) == (1, 1, 1, 1)
    text = guest_leaf(mem.tables, mem.gcr3, mem.eptp, m.image.entry)
    assert text is not None
    pte = X86.decode(text.value)
    assert (pte["a"], pte["d"], pte["xd"]) == (1, 0, 0)  # fetched, never written, executable
    assert {k for _, k in mem.trace} == {AccessKind.READ, AccessKind.WRITE, AccessKind.FETCH}


@pytest.mark.parametrize("tier", TIERS)
def test_an_instruction_budget_stops_the_guest(faulting: Path, tier: str) -> None:
    m = Machine(faulting, tier=tier)
    assert m.run(1000) is None and 1000 <= m.cpu.instret < 1100
    assert m.run() == 139
    r = vmassist("xlate", "run", str(faulting), "--tier", tier, "--max-insns", "500")
    assert r.returncode == 124 and b"--max-insns" in r.stderr


@pytest.mark.parametrize("tier", TIERS)
def test_a_guest_that_outgrows_the_vm_ram_is_faulted(cc: str, tmp_path: Path, tier: str) -> None:
    elf = compile_c(cc, tmp_path, "hog", r"""
void _start(void) {
    char *p = (char *)sys3(214, 0, 0, 0);
    sys3(214, (long)p + (8 << 20), 0, 0);
    for (long i = 0; i < (8 << 20); i += 4096) p[i] = 1;    /* 8 MiB of heap, touched */
    sys3(93, 0, 0, 0);
}
""")  # fmt: skip
    m = Machine(elf, tier=tier, ram_bytes=4 << 20)
    assert m.run() == 139 and m.signal is not None and "used up" in str(m.signal)
    assert Machine(elf, tier=tier, ram_bytes=16 << 20).run() == 0
