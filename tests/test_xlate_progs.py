"""The RISC-V guest programs of ``examples/xlate``, built and run on qemu-riscv64-static, checked
against oracles written here in Python.

The translation layer's tests compare its runs with qemu's; these tests make sure qemu's runs
are themselves right. Each ``expect_*`` computes a program's whole stdout and exit status from
the same inputs (the same xorshift64 stream) by independent means where there are any: zlib for
CRC-32, Python's own %-formatting for printf, ``pow(x, -1, p)`` for the determinant, a Python
model of the RISC-V M-extension and shift semantics for ``arith``. A final test checks that no
ELF contains a floating-point instruction.
"""

# Python's %-formatting is the oracle for C's printf here, so it stays.
# ruff: noqa: UP031

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zlib
from collections.abc import Iterator
from functools import reduce
from itertools import islice, takewhile
from math import isqrt
from pathlib import Path

import pytest

from vmassist import riscv

pytestmark = pytest.mark.skipif(
    not (shutil.which(riscv.CC) and shutil.which(riscv.QEMU)) and not os.environ.get("CI"),
    reason="the RISC-V cross GCC, picolibc and qemu-user are installed by make setup "
    "(under CI their absence fails)",
)

M32 = (1 << 32) - 1
M64 = (1 << 64) - 1
FNV_PRIME = 0x100000001B3
FNV_OFFSET = 0xCBF29CE484222325

#: No argument (the programs' default, scale 1), and a larger scale through argv[1].
SCALES = (None, 3)


def run(name: str, scale: int | None) -> tuple[str, int]:
    """Build ``name`` and run it on qemu with ``scale`` as argv[1] (none when None)."""
    out, status = riscv.run_qemu(riscv.build(name), () if scale is None else (str(scale),))
    return out.decode(), status


def xorshift64(state: int) -> Iterator[int]:
    """The generator of ``rt/guest.h``: Marsaglia's xorshift64 (13, 7, 17)."""
    while True:
        state ^= (state << 13) & M64
        state ^= state >> 7
        state ^= (state << 17) & M64
        yield state


def s64(x: int) -> int:
    """``x`` as a signed 64-bit integer."""
    x &= M64
    return x - (1 << 64) if x >> 63 else x


def s32(x: int) -> int:
    """The low 32 bits of ``x``, signed (what a RISC-V *w instruction leaves in a register)."""
    x &= M32
    return x - (1 << 32) if x >> 31 else x


def c_div(a: int, b: int) -> int:
    """C's (and RISC-V's) division, truncating toward zero."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def c_rem(a: int, b: int) -> int:
    return a - b * c_div(a, b)


def cmp(a: str, b: str) -> int:
    """The sign of strcmp(a, b), for ASCII."""
    return (a > b) - (a < b)


def lines(*items: str) -> str:
    return "".join(f"{item}\n" for item in items)


# -- crc32 -----------------------------------------------------------------------------------------


def expect_crc32(scale: int) -> tuple[str, int]:
    n = 16384 * scale
    data = b"".join(x.to_bytes(8, "little") for x in islice(xorshift64(0x9E3779B97F4A7C15), n // 8))
    # The table entry for byte b is one register step from 0 without the final inversion.
    table = [zlib.crc32(bytes([b]), M32) ^ M32 for b in range(256)]
    crc = zlib.crc32(data)
    text = lines(
        f"table[1] = {table[1]:08x}, table[255] = {table[255]:08x}",
        f'crc32("123456789") = {zlib.crc32(b"123456789"):08x}',
        f"crc32({n} bytes) = {crc:08x}",
        "chunked: same",
    )
    return text, crc & 0x7F


@pytest.mark.parametrize("scale", SCALES)
def test_crc32(scale: int | None) -> None:
    assert run("crc32", scale) == expect_crc32(scale or 1)


def test_crc32_check_value() -> None:
    """The standard CRC-32 check value, whatever the oracle says."""
    assert 'crc32("123456789") = cbf43926\n' in run("crc32", None)[0]


# -- sort ------------------------------------------------------------------------------------------


def merge_sort(a: list[int]) -> tuple[list[int], int]:
    """``a`` sorted, and the comparisons the C merge sort makes (top-down, mid = n // 2)."""
    if len(a) < 2:
        return a, 0
    mid = len(a) // 2
    left, cl = merge_sort(a[:mid])
    right, cr = merge_sort(a[mid:])
    out: list[int] = []
    i = j = compares = 0
    while i < len(left) and j < len(right):
        compares += 1
        if right[j] < left[i]:
            out.append(right[j])
            j += 1
        else:
            out.append(left[i])
            i += 1
    return out + left[i:] + right[j:], cl + cr + compares


def expect_sort(scale: int) -> tuple[str, int]:
    """The output with the qsort comparison count (picolibc's algorithm) as ``{qsort}``."""
    n = 1000 * scale
    keys = [(x >> 32) % 100000 for x in islice(xorshift64(88172645463325252), n)]
    merged, compares = merge_sort(keys)
    ordered = sorted(keys)
    assert merged == ordered
    checksum = sum(v * (i + 1) for i, v in enumerate(ordered)) & M64
    text = lines(
        f"n = {n}",
        f"min = {ordered[0]}, median = {ordered[n // 2]}, max = {ordered[-1]}",
        "qsort sorted: yes, merge sort sorted: yes, equal: yes",
        f"merge sort comparisons = {compares}",
        "qsort comparisons = {qsort}",
        f"checksum = {checksum:016x}",
    )
    return text, checksum & 0x7F


@pytest.mark.parametrize("scale", SCALES)
def test_sort(scale: int | None) -> None:
    out, status = run("sort", scale)
    text, expected_status = expect_sort(scale or 1)
    m = re.search(r"^qsort comparisons = (\d+)$", out, re.MULTILINE)
    assert m is not None, out
    n = 1000 * (scale or 1)
    assert n - 1 <= int(m[1]) <= n * n
    assert (out, status) == (text.replace("{qsort}", m[1]), expected_status)


# -- matmul ----------------------------------------------------------------------------------------

N = 32
P = 2**31 - 1


def det_mod_p(a: list[list[int]]) -> int:
    """det(a) mod P by Gaussian elimination with Python's modular inverse."""
    m = [[v % P for v in row] for row in a]
    det = 1
    for col in range(N):
        piv = next((r for r in range(col, N) if m[r][col]), None)
        if piv is None:
            return 0
        if piv != col:
            m[col], m[piv] = m[piv], m[col]
            det = -det
        det = det * m[col][col] % P
        inv = pow(m[col][col], -1, P)
        for r in range(col + 1, N):
            f = m[r][col] * inv % P
            m[r] = [(x - f * y) % P for x, y in zip(m[r], m[col], strict=True)]
    return det % P


def expect_matmul(scale: int) -> tuple[str, int]:
    rng = xorshift64(0x2545F4914F6CDD1D)
    total = 0
    text = ""
    for r in range(scale):
        a = [[next(rng) % 128 - 64 for _ in range(N)] for _ in range(N)]
        b = [[next(rng) % 128 - 64 for _ in range(N)] for _ in range(N)]
        cols = list(zip(*b, strict=True))
        c = [[sum(x * y for x, y in zip(row, col, strict=True)) for col in cols] for row in a]
        checksum = sum(c[i][j] * (i * N + j + 1) for i in range(N) for j in range(N)) & M64
        total = (total * 31 + checksum) & M64
        if r == 0:
            text += lines(
                f"C[0][0] = {c[0][0]}, C[{N - 1}][{N - 1}] = {c[-1][-1]}, "
                f"trace = {sum(c[i][i] for i in range(N))}",
                f"checksum = {checksum:016x}",
                f"det(A) mod p = {det_mod_p(a)}",
            )
    text += lines(f"rounds = {scale}, products agree: yes", f"total = {total:016x}")
    return text, total & 0x7F


@pytest.mark.parametrize("scale", SCALES)
def test_matmul(scale: int | None) -> None:
    assert run("matmul", scale) == expect_matmul(scale or 1)


# -- sieve -----------------------------------------------------------------------------------------


def expect_sieve(scale: int) -> tuple[str, int]:
    limit = 50000 * scale
    primes: list[int] = []
    for n in range(2, limit):  # trial division by the primes up to sqrt(n)
        root = isqrt(n)
        if all(n % p for p in takewhile(root.__ge__, primes)):
            primes.append(n)
    prime_set = set(primes)
    twins = sum(p + 2 in prime_set for p in primes)
    text = lines(
        f"limit = {limit}",
        "first: " + " ".join(map(str, primes[:10])),
        f"count = {len(primes)}, largest = {primes[-1]}, sum = {sum(primes)}, twin pairs = {twins}",
    )
    return text, len(primes) & 0x7F


@pytest.mark.parametrize("scale", SCALES)
def test_sieve(scale: int | None) -> None:
    assert run("sieve", scale) == expect_sieve(scale or 1)


@pytest.mark.parametrize("arg", ["0", "-5", "x", ""])
def test_bad_scale_means_default(arg: str) -> None:
    out, status = riscv.run_qemu(riscv.build("sieve"), (arg,))
    assert (out.decode(), status) == expect_sieve(1)


# -- strings ---------------------------------------------------------------------------------------


def fnv1a(h: int, data: bytes) -> int:
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & M64
    return h


def expect_strings(scale: int) -> tuple[str, int]:
    long_min, long_max, ulong_max = -(2**63), 2**63 - 1, 2**64 - 1
    text = lines(
        "[%d] [%i] [%u] [%d]" % (-42, 17, 4000000000, -(2**31)),
        "[%x] [%X] [%o] [%#x] [%#X]" % (48879, 48879, 511, 255, 255),
        "[%5d] [%-5d] [%05d] [%+d] [% d] [%+d]" % (42, 42, -42, 7, 7, -7),
        "[%.5d] [%8.3d] [%-8.3d] [%*d] [%-*d]" % (42, -7, 7, 6, 99, 6, 99),
        "[%d] [%d] [%d]" % (long_min, long_max, ulong_max),
        "[%x] [%016x] [%#x]" % (0xDEADBEEFCAFE, 0x1234, ulong_max),
        "[%s] [%10s] [%-10s] [%.3s] [%c%c%c] [%%]" % ("abc", "right", "left", "truncate", *"xyz"),
        "[%d] [%d] [%d] [%d]" % (-128, 200, -32768, 65535),
        "[0x1234] [%d] [%d] [%d]" % (123456789, -5, -9000000000),
        "[%d] [%d] [%x]" % (long_min, ulong_max, 0x0123456789ABCDEF),
    )

    s = "Hello" + ", " + "world!!!"[:6]
    abc = "abcdefghij"
    tokens = [t for t in re.split("[ ,;]", "the quick,brown;;fox  jumps") if t]
    swapped = "Mixed Case 123".swapcase()
    text += lines(
        f"strcat: {s} ({len(s)})",
        f"strcmp: {cmp('abc', 'abd')} {cmp('abc', 'abc')} {cmp('b', 'abc')}",
        f"strncmp: {cmp('abc', 'abc')} {cmp('abcd', 'abcx')}",
        f"strchr: {s.index('o')} strrchr: {s.rindex('o')} strstr: {s.index('world')}",
        f"strspn: {len(re.match('[abc]*', 'aabbcxyz')[0])} strcspn: {'hello world'.index(' ')}",
        f"memmove up: {abc[:3] + abc[:7]}",
        f"memmove down: {abc[3:]}",
        f"memset: ***** memcmp: {cmp('abc', 'abd')} {cmp('ab', 'ab')}",
        f"strtol: -12345 {int('ff', 16)} {int('7fffffff', 16)} {int('777', 8)}",
        f"strtoul: {ulong_max} atoi: -77",
        "strtok: " + " ".join(f"<{t}>" for t in tokens) + f" ({len(tokens)})",
        f"swapcase: {swapped}",
        f"reversed: {swapped[::-1]}",
        f'snprintf truncates: {len("hello world")} "{"hello world"[:7]}"',
    )

    n = 200 * scale
    h, total = FNV_OFFSET, 0
    for x in islice(xorshift64(0x853C49E6748FEA9B), n):
        v = s64(x)
        formatted = "%d:%x:%08x:%-6d|%+5d" % (v, x, x & M32, c_rem(v, 1000), v >> 54)
        total += len(formatted)
        h = fnv1a(h, formatted.encode())
    text += lines(f"formatted {n} values, {total} characters, hash = {h:016x}")
    return text, h & 0x7F


@pytest.mark.parametrize("scale", SCALES)
def test_strings(scale: int | None) -> None:
    assert run("strings", scale) == expect_strings(scale or 1)


# -- recursion -------------------------------------------------------------------------------------


class Counted:
    """The recursive functions of recursion.c, counting their calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.moves: list[tuple[int, int]] = []

    def fib(self, n: int) -> int:
        self.calls += 1
        return n if n < 2 else self.fib(n - 1) + self.fib(n - 2)

    def ack(self, m: int, n: int) -> int:
        self.calls += 1
        if m == 0:
            return n + 1
        if n == 0:
            return self.ack(m - 1, 1)
        return self.ack(m - 1, self.ack(m, n - 1))

    def hanoi(self, n: int, src: int, dst: int, via: int) -> None:
        self.calls += 1
        if n:
            self.hanoi(n - 1, src, via, dst)
            self.moves.append((src, dst))
            self.hanoi(n - 1, via, dst, src)

    def queens(self, n: int, placed: tuple[int, ...] = ()) -> int:
        self.calls += 1
        row = len(placed)
        if row == n:
            return 1
        return sum(
            self.queens(n, (*placed, col))
            for col in range(n)
            if all(col != c and abs(col - c) != row - r for r, c in enumerate(placed))
        )


def counted(method: str, *args: int) -> tuple[int, Counted]:
    """The result of ``Counted().method(*args)``, and the object with its call count."""
    c = Counted()
    return getattr(c, method)(*args), c


def expect_recursion(scale: int) -> tuple[str, int]:
    checksum = 0
    text = ""
    for r in range(scale):
        fn, a2, a3, hn, qn = 18 + r % 3, 30 + r % 5, 4 + r % 2, 12 + r % 3, 6 + r % 3
        fib, c_fib = counted("fib", fn)
        ack2, c_ack2 = counted("ack", 2, a2)
        ack3, c_ack3 = counted("ack", 3, a3)
        _, c_hanoi = counted("hanoi", hn, 1, 3, 2)
        queens, c_queens = counted("queens", qn)
        moves_hash = reduce(lambda h, m: (h * 31 + m[0] * 4 + m[1]) & M32, c_hanoi.moves, 0)
        results = (fib, ack2, ack3, len(c_hanoi.moves) << 32 | moves_hash, queens)
        counts = [c.calls for c in (c_fib, c_ack2, c_ack3, c_hanoi, c_queens)]
        for value, count in zip(results, counts, strict=True):
            checksum = (checksum * 1000003 + value * 7 + count) & M64
        if r == 0:
            text += lines(
                f"fib({fn}) = {fib} in {counts[0]} calls",
                f"ack(2, {a2}) = {ack2} in {counts[1]} calls",
                f"ack(3, {a3}) = {ack3} in {counts[2]} calls",
                f"hanoi({hn}) = {len(c_hanoi.moves)} moves, hash {moves_hash:08x}, "
                f"in {counts[3]} calls",
                f"queens({qn}) = {queens} solutions in {counts[4]} calls",
            )
    text += lines(f"rounds = {scale}, checksum = {checksum:016x}")
    return text, checksum & 0x7F


@pytest.mark.parametrize("scale", SCALES)
def test_recursion(scale: int | None) -> None:
    assert run("recursion", scale) == expect_recursion(scale or 1)


# -- smc -------------------------------------------------------------------------------------------


def expect_smc(scale: int) -> tuple[str, int]:
    r1, r2, r3 = 37 + 5, 37 - 100, 37 << 3
    checksum = (r1 + r2 * 3 + r3 * 5) & M64
    s100, s0 = sum(range(101)), 0
    checksum = (checksum * 31 + s100 + s0) & M64
    c1, c2 = 1 + 3, 1 - 3
    checksum = (checksum * 31 + c1 + c2) & M64
    rounds = 256 * scale
    acc = 0
    for k in range(rounds):
        acc = ((acc ^ ((k + (k * 7 % 2048) - 1024) & M64)) * FNV_PRIME) & M64
    checksum = (checksum * 31 + acc) & M64
    h1, h2 = 10 + 100, 10 << 2
    checksum = (checksum * 31 + h1 + h2) & M64
    text = lines(
        f"addi 5: {r1}, addi -100: {r2}, slli 3: {r3}",
        f"sum(1..100) = {s100}, sum(1..0) = {s0}",
        f"c.addi 3: {c1}, c.addi -3: {c2}",
        f"{rounds} patch-and-call rounds: {acc:016x}",
        f"self-patched addi 100: {h1}, slli 2: {h2}",
        f"checksum = {checksum:016x}",
    )
    return text, checksum >> 57


@pytest.mark.parametrize("scale", SCALES)
def test_smc(scale: int | None) -> None:
    assert run("smc", scale) == expect_smc(scale or 1)


def segments(elf: Path) -> list[tuple[str, str, list[str]]]:
    """The type, flags ("R E", "RW ", ...) and sections of each program header of ``elf``."""
    readelf = shutil.which("riscv64-unknown-elf-readelf")
    assert readelf is not None
    out = subprocess.run(
        [readelf, "-lW", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    headers, mapping = out.split("Section to Segment mapping:")
    phdrs = re.findall(r"^\s+([A-Z_]+)\s+0x[0-9a-f]+\s+(?:\S+\s+){4}(.{3})", headers, re.M)
    sections = re.findall(r"^\s+\d+\s+(.*)$", mapping, re.M)
    return [(t, f, s.split()) for (t, f), s in zip(phdrs, sections, strict=True)]


def test_smc_buffer_is_in_its_own_rwx_segment() -> None:
    """The code buffer is loaded from the ELF (no mmap): one R+W+X PT_LOAD holding just .smc;
    the other programs have no writable and executable segment at all."""
    for name, elf in riscv.build_all().items():
        segs = segments(elf)
        assert [t for t, _, _ in segs].count("LOAD") >= 2, segs
        rwx = [sections for t, flags, sections in segs if t == "LOAD" and flags == "RWE"]
        assert rwx == ([[".smc"]] if name == "smc" else []), (name, segs)


# -- counters --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", SCALES)
def test_counters(scale: int | None) -> None:
    n = 256 * (scale or 1)
    text = lines(
        f"{n} samples",
        "cycle monotonic: yes",
        "instret monotonic: yes",
        "time monotonic: yes",
    )
    assert run("counters", scale) == (text, 0)


# -- atomics ---------------------------------------------------------------------------------------


def expect_atomics(scale: int) -> tuple[str, int]:
    checksum = 0

    def note(*values: int) -> None:
        nonlocal checksum
        for v in values:
            checksum = ((checksum * FNV_PRIME) & M64) ^ (v & M64)

    old_w, w = 0x7FFFFFF0, s32(0x7FFFFFF0 + 0x20)
    old_d, d = -5, 5
    note(old_w, w, old_d, d)
    o1 = 0xF0F0F0F0
    o2 = o1 & 0xFF00FF00
    o3 = o2 | 0xF
    o4 = o3 ^ M32
    bits = 0x12345678
    note(o1, o2, o3, o4, bits)
    m1, m2, mw = -3, max(-3, 7), min(7, -100)
    m3, m4, uw = 5, s32(max(5, 0x80000000)), min(0x80000000, 9)
    note(m1, m2, m3, m4)
    m5, m6, md = 1, -(2**63), max(-(2**63), 2)
    m7, m8, ud = 3, M64, 4
    note(m5, m6, m7, m8, md, ud)
    cell = 0x04030201  # byte 2 (0xc8) replaced by 3 on the second try
    note(0, 1, 0xC8, cell, 1, 0xDEADBEEF, 0, 1 << 40, 1 << 40)
    note(100, 123)
    rounds = 1000 * scale
    total = sum(range(rounds)) + rounds
    peak = max(i * 7919 % 10007 for i in range(rounds))
    mix = 1
    for i in range(rounds):
        mix ^= (i * 2654435761) & M32
    low = min(0, *(i % 1000 - (i % 777) * 3 for i in range(rounds)))
    note(total, peak, mix, low)
    text = lines(
        f"fetch_add.w: old {old_w} new {w}; fetch_add.d: old {old_d} new {d}",
        f"and/or/xor/swap.w: {o1:08x} {o2:08x} {o3:08x} {o4:08x} -> {bits:08x}",
        f"amomax/amomin.w: {m1} {m2} -> {mw}; amomaxu/amominu.w: {m3} {m4} -> {uw}",
        f"amomin/amomax.d: {m5} {m6} -> {md}; amomaxu/amominu.d: {m7} {m8} -> {ud}",
        f"cas8: 0 1 expected 200 -> {cell:08x}; cas32: 1 deadbeef; "
        f"cas64: 0 {1 << 40} expected {1 << 40}",
        "lr/sc add: 100 -> 123",
        f"{rounds} rounds: total {total}, peak {peak}, mix {mix:08x}, low {low}",
        f"checksum = {checksum:016x}",
    )
    return text, checksum & 0x7F


@pytest.mark.parametrize("scale", SCALES)
def test_atomics(scale: int | None) -> None:
    assert run("atomics", scale) == expect_atomics(scale or 1)


# -- arith -----------------------------------------------------------------------------------------

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def rv_div(a: int, b: int) -> int:
    if b == 0:
        return -1
    return INT64_MIN if (a, b) == (INT64_MIN, -1) else c_div(a, b)


def rv_rem(a: int, b: int) -> int:
    if b == 0:
        return a
    return 0 if (a, b) == (INT64_MIN, -1) else c_rem(a, b)


def rv_divw(a: int, b: int) -> int:
    a, b = s32(a), s32(b)
    if b == 0:
        return -1
    return INT32_MIN if (a, b) == (INT32_MIN, -1) else c_div(a, b)


def rv_remw(a: int, b: int) -> int:
    a, b = s32(a), s32(b)
    if b == 0:
        return a
    return 0 if (a, b) == (INT32_MIN, -1) else c_rem(a, b)


#: The RISC-V semantics of each operation of arith.c, on signed 64-bit operands, as signed
#: 64-bit results.
RV_OPS = {
    "div": rv_div,
    "divu": lambda a, b: s64((a & M64) // (b & M64)) if b & M64 else -1,
    "rem": rv_rem,
    "remu": lambda a, b: s64((a & M64) % (b & M64)) if b & M64 else a,
    "divw": rv_divw,
    "divuw": lambda a, b: s32((a & M32) // (b & M32)) if b & M32 else -1,
    "remw": rv_remw,
    "remuw": lambda a, b: s32((a & M32) % (b & M32)) if b & M32 else s32(a),
    "mul": lambda a, b: s64(a * b),
    "mulh": lambda a, b: s64((a * b) >> 64),
    "mulhsu": lambda a, b: s64((a * (b & M64)) >> 64),
    "mulhu": lambda a, b: s64(((a & M64) * (b & M64)) >> 64),
    "mulw": lambda a, b: s32(a * b),
    "sll": lambda a, b: s64(a << (b & 63)),
    "srl": lambda a, b: s64((a & M64) >> (b & 63)),
    "sra": lambda a, b: a >> (b & 63),
    "sllw": lambda a, b: s32(a << (b & 31)),
    "srlw": lambda a, b: s32((a & M32) >> (b & 31)),
    "sraw": lambda a, b: s32(s32(a) >> (b & 31)),
    "addw": lambda a, b: s32(a + b),
    "subw": lambda a, b: s32(a - b),
    "slt": lambda a, b: int(a < b),
    "sltu": lambda a, b: int((a & M64) < (b & M64)),
}

EDGES = (0, 1, -1, 2, -2, 7, -7, 31, 32, 63, 64, INT64_MIN, INT64_MAX, INT32_MIN, INT32_MAX, M32)


def expect_arith(scale: int) -> tuple[str, int]:
    op = RV_OPS
    text = lines(
        f"div(7, 0) = {op['div'](7, 0)}, rem(7, 0) = {op['rem'](7, 0)}, "
        f"divu(7, 0) = {op['divu'](7, 0) & M64:x}",
        f"div(INT64_MIN, -1) = {op['div'](INT64_MIN, -1)}, "
        f"rem(INT64_MIN, -1) = {op['rem'](INT64_MIN, -1)}",
        f"divw(INT32_MIN, -1) = {op['divw'](INT32_MIN, -1)}, "
        f"remw(INT32_MIN, -1) = {op['remw'](INT32_MIN, -1)}, "
        f"divuw(-1, 0) = {op['divuw'](-1, 0)}, remw(-7, 0) = {op['remw'](-7, 0)}",
        f"mulh(INT64_MIN, INT64_MIN) = {op['mulh'](INT64_MIN, INT64_MIN) & M64:x}, "
        f"mulhsu(-1, -1) = {op['mulhsu'](-1, -1)}, mulhu(-1, -1) = {op['mulhu'](-1, -1) & M64:x}",
        f"addw(INT32_MAX, 1) = {op['addw'](INT32_MAX, 1)}, sll(1, 65) = {op['sll'](1, 65)}, "
        f"sraw(INT32_MIN, 33) = {op['sraw'](INT32_MIN, 33)}, srlw(-1, 36) = {op['srlw'](-1, 36)}",
    )
    values = [*EDGES, *map(s64, islice(xorshift64(0xDA942042E4DD58B5), 8 * scale))]
    combined = FNV_OFFSET
    for name, fn in RV_OPS.items():
        h = FNV_OFFSET
        for v in values:
            for e in EDGES:
                h = ((h ^ (fn(v, e) & M64)) * FNV_PRIME) & M64
                h = ((h ^ (fn(e, v) & M64)) * FNV_PRIME) & M64
        text += lines(f"{name:<7} {h:016x}")
        combined = ((combined ^ h) * FNV_PRIME) & M64
    text += lines(f"all = {combined:016x}")
    return text, combined & 0x7F


@pytest.mark.parametrize("scale", SCALES)
def test_arith(scale: int | None) -> None:
    assert run("arith", scale) == expect_arith(scale or 1)


# -- every program ---------------------------------------------------------------------------------


def test_some_status_is_not_zero() -> None:
    """The exit status is compared too: it must not be 0 everywhere."""
    assert any(run(name, None)[1] != 0 for name in riscv.PROGRAMS)


#: Undecodable words: objdump decodes by the ELF's arch attribute, so an F/D instruction in an
#: rv64imac ELF would show up as one of these rather than as `fld`.
UNDECODED = {".word", ".short", ".byte", ".insn", ".2byte", ".4byte"}
FP_CSRS = re.compile(r"\b(fcsr|frm|fflags)\b")


def float_instructions(elf: Path) -> list[str]:
    """The lines of ``objdump -d elf`` that are (or could hide) floating-point instructions."""
    objdump = shutil.which("riscv64-unknown-elf-objdump")
    assert objdump is not None
    listing = subprocess.run(
        [objdump, "-d", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    bad = []
    for line in listing.splitlines():
        fields = line.split("\t")
        if len(fields) < 3 or not re.fullmatch(r"\s*[0-9a-f]+:", fields[0]):
            continue
        mnemonic = fields[2].split()[0] if fields[2].split() else ""
        operands = fields[3] if len(fields) > 3 else ""
        if (
            (mnemonic.startswith(("f", "c.f")) and not mnemonic.startswith("fence"))
            or mnemonic in UNDECODED
            or FP_CSRS.search(operands)
        ):
            bad.append(line)
    return bad


@pytest.mark.parametrize("name", riscv.PROGRAMS)
def test_no_floating_point(name: str) -> None:
    elf = riscv.build(name)
    assert float_instructions(elf) == []
    readelf = shutil.which("riscv64-unknown-elf-readelf")
    assert readelf is not None
    info = subprocess.run(
        [readelf, "-hA", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    assert "soft-float ABI" in info
    arch = re.search(r'Tag_RISCV_arch: "rv64(\w+)"', info)
    assert arch is not None
    extensions = re.findall(r"([a-z]+?)\d+p\d+", arch[1])
    assert "i" in extensions and not [x for x in extensions if x[0] in "fdq" or x[:2] == "zf"]
