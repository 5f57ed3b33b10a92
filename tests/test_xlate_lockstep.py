"""Lockstep differential testing of the translation layer's tiers against Unicorn.

Random programs come from :mod:`models.xlate.randgen`, seeded from ``SEED`` (or at random; a
failure prints the seed, the command that replays it, the program's listing and a shrunk
program that still fails). ``LOCKSTEP_N`` sets how many programs each tier runs.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable

import pytest

from models.xlate import lockstep, randgen
from models.xlate.elf import Image, Segment
from models.xlate.interp import Interpreter
from models.xlate.isa import STORES, Insn, decode
from models.xlate.linux import SIGBUS, SIGILL, SIGSEGV, SIGTRAP
from models.xlate.machine import TIERS, Machine
from models.xlate.randgen import DATA_BYTES, Ins, Program, Unit
from vmassist import riscv

N_PROGRAMS = int(os.environ.get("LOCKSTEP_N", "100"))
SEED = int(os.environ["SEED"]) if "SEED" in os.environ else random.randrange(1 << 31)


def _machine(image: Image, tier: str = "interp") -> Machine:
    return Machine(image, tier=tier, stdin=randgen.STDIN)


def _fails(tier: str) -> Callable[[Image], bool]:
    def fails(image: Image) -> bool:
        try:
            lockstep.check(_machine(image, tier), max_blocks=100_000)
        except lockstep.LockstepMismatch:
            return True
        return False

    return fails


# ---- (a) every tier against Unicorn on random programs -------------------------------------------


@pytest.mark.parametrize("tier", TIERS)
def test_random_programs(tier: str) -> None:
    instructions = 0
    for seed in range(SEED, SEED + N_PROGRAMS):
        try:
            r = lockstep.check_random(seed, tier=tier)
        except lockstep.LockstepMismatch as e:
            small = randgen.shrink(seed, _fails(tier), max_tries=150)
            pytest.fail(
                f"{e.report}\n\n{randgen.reproducer(seed, tier=tier)}\n"
                f"shrunk to a program that still fails:\n{randgen.listing(small)}",
                pytrace=False,
            )
        assert r.status is not None, f"seed {seed}: the program did not end"
        assert r.signal is None, f"seed {seed}: died of signal {r.signal}"
        instructions += r.instructions
    assert instructions > 50 * N_PROGRAMS


# ---- (b) the interpreter against Unicorn on the C programs ---------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", riscv.PROGRAMS)
def test_c_programs(name: str) -> None:
    if not shutil.which(riscv.CC) and not os.environ.get("CI"):
        pytest.skip("the RISC-V cross GCC and picolibc are installed by make setup")
    m = Machine(riscv.build(name), tier="interp")
    r = lockstep.check(m)
    assert m.signal is None and r.status == m.status
    assert r.instructions > 1000 and r.syscalls >= 2
    assert m.out, "the program wrote nothing"


# ---- (c) the checker can fail, and names the right instruction -----------------------------------


class _CorruptReg(Interpreter):
    """Flips bit 7 of the link register the first call (``jal``/``jalr`` with ``rd``) at or past
    ``AT`` retired instructions wrote. Deterministic, so a re-run from the block's start
    corrupts the same one; and the call ends its block, so the flip shows at the boundary."""

    AT = 70

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.done: tuple[int, int] | None = None

    def step(self) -> Insn:
        pc = self.cpu.pc
        i = super().step()
        if (self.done is None and self.cpu.instret > self.AT and i.rd
                and i.op in ("jal", "jalr")):  # fmt: skip
            self.cpu.x[i.rd] ^= 0x80
            self.done = (pc, i.rd)
        return i


class _CorruptStore(Interpreter):
    """Flips bit 6 of the first byte the first store at or past ``AT`` instructions wrote."""

    AT = 60

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.done: int | None = None

    def step(self) -> Insn:
        pc, x = self.cpu.pc, list(self.cpu.x)
        i = super().step()
        if self.done is None and self.cpu.instret > self.AT and i.op in STORES:
            addr = (x[i.rs1] + i.imm) & ((1 << 64) - 1)
            self.mem.store(addr, 1, self.mem.load(addr, 1) ^ 0x40)
            self.done = pc
        return i


class _CorruptBlocks:
    """A tier that cannot single-step: the interpreter by blocks, with ``a5`` corrupted at the
    end of block ``AT``."""

    name = "corrupt-blocks"
    AT = 9

    def __init__(self, m: Machine) -> None:
        self.inner = Interpreter(m.cpu, m.mem, m.kernel)
        self.cpu = m.cpu
        self.blocks = 0
        self.block_pc: int | None = None

    def step_block(self) -> int:
        pc = self.cpu.pc
        n = self.inner.step_block()
        self.blocks += 1
        if self.blocks == self.AT + 1:
            self.cpu.x[15] ^= 1 << 40
            self.block_pc = pc
        return n

    def run(self, limit: int | None = None) -> None:  # pragma: no cover - the protocol's
        while True:
            self.step_block()


def test_wrong_register_is_caught_and_bisected() -> None:
    for seed in range(3, 100):  # the first program with a call past AT
        m = _machine(randgen.random_program(seed))
        m.engine = eng = _CorruptReg(m.cpu, m.mem, m.kernel)
        try:
            lockstep.check(m)
        except lockstep.LockstepMismatch as exc:
            e = exc
            break
        assert eng.done is None, f"seed {seed}: a corrupted link register went unnoticed"
    else:
        pytest.fail("no random program made a call")
    assert eng.done is not None
    pc, rd = eng.done
    assert e.pc == pc, e.report
    assert e.insn == decode(e.word or 0) and e.insn.rd == rd
    assert [r[0] for r in e.regs] == [lockstep._reg_name(rd)], e.report
    _, ours, theirs = e.regs[0]
    assert ours is not None and theirs is not None and ours ^ theirs == 0x80
    assert f"{pc:x}:" in e.report and "first divergence" in e.report


def test_wrong_store_is_caught_and_bisected() -> None:
    m = _machine(randgen.random_program(7))
    m.engine = eng = _CorruptStore(m.cpu, m.mem, m.kernel)
    with pytest.raises(lockstep.LockstepMismatch) as info:
        lockstep.check(m)
    e = info.value
    assert e.pc == eng.done and e.insn is not None and e.insn.op in STORES, e.report
    assert not e.regs and len(e.memory) == 1
    _, ours, theirs = e.memory[0]
    assert ours[0] ^ theirs[0] == 0x40


def test_wrong_block_tier_is_caught() -> None:
    """A tier that cannot step: the reference interpreter agrees with Unicorn, so the report
    blames the block as a whole."""
    m = _machine(randgen.random_program(11))
    m.engine = eng = _CorruptBlocks(m)  # type: ignore[assignment]
    with pytest.raises(lockstep.LockstepMismatch) as info:
        lockstep.check(m)
    e = info.value
    assert e.pc is None and e.block_pc == eng.block_pc
    assert [r[0] for r in e.regs] == ["a5 (x15)"]
    assert "the tier's execution of the block as a whole diverges" in e.report


def test_stray_store_is_caught_by_the_sweep() -> None:
    class Stray(Interpreter):
        def step(self) -> Insn:
            i = super().step()
            if self.cpu.instret == 40:
                self.mem.store(randgen.DATA_BASE + DATA_BYTES - 16, 1, 0x5A)
            return i

    m = _machine(randgen.random_program(5))
    m.engine = Stray(m.cpu, m.mem, m.kernel)
    with pytest.raises(lockstep.LockstepMismatch, match="sweep"):
        lockstep.check(m)


# ---- faults: ours and Unicorn's must agree -------------------------------------------------------

_EXIT = [Ins("addi", 17, 0, imm=93), Ins("ecall")]
_DATA = randgen.DATA_BASE


@pytest.mark.parametrize(
    ("body", "signal"),
    [
        ([Ins("addi", 5, 0, imm=3), Ins("ld", 6, 0, imm=8)], SIGSEGV),
        ([Ins("lui", 7, imm=0x10 << 12), Ins("sw", 0, 7, 5)], SIGSEGV),  # read-only text
        ([Ins("jalr", 0, 0, imm=0x100)], SIGSEGV),  # fetch from nowhere
        ([Ins("lui", 7, imm=_DATA), Ins("jalr", 0, 7, imm=16)], SIGSEGV),  # not executable
        ([Ins("addi", 5, 0, imm=3), Ins("ebreak", c=True)], SIGTRAP),
        (
            [Ins("lui", 7, imm=_DATA), Ins("addi", 7, 7, imm=0x102), Ins("amoadd.w", 6, 7, 5)],
            SIGBUS,
        ),
        ([Ins("lui", 7, imm=_DATA), Ins("addi", 7, 7, imm=0x104), Ins("lr.d", 6, 7)], SIGBUS),
        ([Ins("csrrw", 6, 5, imm=0xC00)], SIGILL),  # counters are read-only
        ([Ins("csrrs", 6, 0, imm=0x300)], SIGILL),  # Unicorn lets user mode read mstatus
    ],
    ids=[
        "load",
        "store-ro",
        "fetch",
        "fetch-nx",
        "ebreak",
        "amo-misaligned",
        "lr-misaligned",
        "csr-write",
        "csr-priv",
    ],
)
def test_faults_agree(body: list[Ins], signal: int) -> None:
    image, _ = randgen.assemble(Program(0, [Unit(1, "t", body)], _EXIT, bytes(DATA_BYTES)))
    m = Machine(image)
    r = lockstep.check(m)
    assert r.signal == signal and r.status == 128 + signal and m.status == r.status


def test_illegal_instruction_agrees() -> None:
    code = bytes.fromhex("93021000ffffffff")  # addi t0, zero, 1; an illegal word
    m = Machine(Image("illegal", 0x10000, [Segment(0x10000, 8, code, True, False, True)], b"", 0,
                      0, {}))  # fmt: skip
    assert lockstep.check(m).signal == SIGILL


def test_max_blocks_stops_early() -> None:
    m = _machine(randgen.random_program(1))
    r = lockstep.check(m, max_blocks=5, sweep_every=2)
    assert r.blocks == 5 and r.status is None and m.status is None
    assert lockstep.check(m).status is not None  # and it goes on from there


# ---- (d) the generator ---------------------------------------------------------------------------


def _insns(image: Image) -> list[tuple[int, Insn]]:
    seg = image.segments[0]
    assert seg.x
    out, off = [], 0
    while off < len(seg.data):
        word = int.from_bytes(seg.data[off : off + 4].ljust(4, b"\0"), "little")
        i = decode(word)  # raises on an illegal word
        out.append((seg.vaddr + off, i))
        off += i.size
    return out


def test_generator_is_deterministic() -> None:
    a, b = randgen.random_program(SEED), randgen.random_program(SEED)
    assert a.segments == b.segments and a.entry == b.entry
    assert randgen.random_program(SEED + 1).segments != a.segments
    assert randgen.reproducer(SEED) == randgen.reproducer(SEED)


#: Programs a coverage test may look at: 40 usually suffice, but a rare op can miss one seed's 40.
COVERAGE_PROGRAMS = 400


def test_generator_covers_the_isa() -> None:
    want = {*randgen.ALU_OPS, *randgen.IMM_OPS, *randgen.AMO_OPS, *STORES, "lb", "lh", "lw",
            "ld", "lbu", "lhu", "lwu", "lr.w", "lr.d", "sc.w", "sc.d", "lui", "auipc", "jal",
            "jalr", "beq", "bne", "blt", "bge", "bltu", "bgeu", "csrrs", "csrrc", "csrrsi",
            "csrrci", "ecall", "fence", "fence.i"}  # fmt: skip
    ops: set[str] = set()
    compressed = total = 0
    for seed in range(SEED, SEED + COVERAGE_PROGRAMS):
        for _pc, i in _insns(randgen.random_program(seed)):
            ops.add(i.op)
            compressed += i.size == 2
            total += 1
        if want <= ops:
            break
    assert want <= ops, (SEED, sorted(want - ops))
    assert compressed > 0.2 * total


def test_every_compressed_form_is_emitted() -> None:
    """Each RVC form (told apart by its quadrant and funct3, and the CR/CA sub-forms)."""
    quadrant_funct3 = {(0, 0), (0, 2), (0, 3), (0, 6), (0, 7), (1, 0), (1, 1), (1, 2), (1, 3),
                       (1, 4), (1, 5), (1, 6), (1, 7), (2, 0), (2, 2), (2, 3), (2, 4), (2, 6),
                       (2, 7)}  # fmt: skip
    forms: set[tuple[int, ...]] = set()
    for seed in range(SEED, SEED + COVERAGE_PROGRAMS):
        if quadrant_funct3 <= {f[:2] for f in forms} and {(2, 4, 0), (2, 4, 1)} <= forms:
            break
        img = randgen.random_program(seed)
        for pc, i in _insns(img):
            if i.size == 2:
                off = pc - img.segments[0].vaddr
                h = int.from_bytes(img.segments[0].data[off : off + 2], "little")
                forms.add((h & 3, h >> 13, (h >> 12) & 1 if (h & 3, h >> 13) == (2, 4) else 0))
    assert quadrant_funct3 <= {f[:2] for f in forms}
    assert {(2, 4, 0), (2, 4, 1)} <= forms  # c.jr/c.mv and c.jalr/c.add


def test_encoder_round_trips() -> None:
    rng = random.Random(SEED)
    for _ in range(3000):
        op = rng.choice([*randgen.ALU_OPS, *randgen.IMM_OPS, *randgen.AMO_OPS, "lw", "sd", "beq",
                         "jal", "lui", "jalr", "csrrs"])  # fmt: skip
        rd, rs1, rs2 = (rng.randrange(32) for _ in range(3))
        imm = 0
        if op in ("slli", "srli", "srai", "slliw", "srliw", "sraiw"):
            imm = rng.randrange(32 if op.endswith("w") else 64)
        elif op in randgen.IMM_OPS or op in ("lw", "sd", "jalr"):
            imm = rng.randint(-2048, 2047) if rng.random() < 0.5 else rng.randint(-40, 520)
        elif op == "beq":
            imm = 2 * rng.randint(-2048, 2047)
        elif op == "jal":
            imm = 2 * rng.randint(-(1 << 19), (1 << 19) - 1)
        elif op == "lui":
            imm = (rng.getrandbits(20) << 12 ^ 1 << 31) - (1 << 31)
        elif op == "csrrs":
            imm = rng.randrange(4096)
        want = randgen.expected_insn(op, rd, rs1, rs2, imm, 4)
        assert decode(randgen.encode(op, rd, rs1, rs2, imm)) == want
        h = randgen.compress(op, rd, rs1, rs2, imm)
        if h is not None:
            assert decode(h) == want._replace(size=2)


def test_generated_programs_run_and_exit() -> None:
    statuses = set()
    for seed in range(SEED, SEED + 20):
        m = _machine(randgen.random_program(seed))
        assert m.run(1_000_000) is not None and m.signal is None, seed
        statuses.add(m.status)
    assert len(statuses) > 5  # the status depends on the registers


def test_reproducer_and_listing() -> None:
    text = randgen.reproducer(SEED, 8, tier="block")
    assert f"seed={SEED}" in text and f"check_random({SEED}, 8, tier='block')" in text
    assert "ecall" in text and "<illegal" not in text and "u1:" in text and "end:" in text


def test_shrink() -> None:
    """Shrinking keeps the property and drops nearly everything else."""

    def has_mulhsu(image: Image) -> bool:
        return any(i.op == "mulhsu" for _pc, i in _insns(image))

    seed = next(s for s in range(SEED, SEED + 500) if has_mulhsu(randgen.random_program(s)))
    full = randgen.random_program(seed)
    small = randgen.shrink(seed, has_mulhsu)
    assert has_mulhsu(small)
    assert len(_insns(small)) < min(20, len(_insns(full)) // 4)
    m = _machine(small)
    assert m.run(100_000) is not None and m.signal is None  # still a valid program
    with pytest.raises(ValueError, match="does not fail"):
        randgen.shrink(seed, lambda image: False)


def test_shrink_a_lockstep_failure() -> None:
    """With a wrong tier, shrinking finds a small program that the checker still rejects, within
    its budget of tries (counted, not timed: the machines are shared)."""
    calls = 0

    class Bad(Interpreter):  # mulh gets the wrong answer for negative products
        def step(self) -> Insn:
            x = list(self.cpu.x)
            i = super().step()
            if i.op == "mulh" and i.rd:
                self.cpu.x[i.rd] = (x[i.rs1] * x[i.rs2]) >> 64
            return i

    def fails(image: Image) -> bool:
        nonlocal calls
        calls += 1
        m = _machine(image)
        m.engine = Bad(m.cpu, m.mem, m.kernel)
        try:
            lockstep.check(m)
        except lockstep.LockstepMismatch as e:
            return e.insn is not None and e.insn.op == "mulh"
        return False

    seed = next(s for s in range(SEED, SEED + 500) if fails(randgen.random_program(s)))
    calls = 0
    small = randgen.shrink(seed, fails, max_tries=120)
    assert calls <= 1 + 120  # the first check, then at most max_tries candidates
    assert fails(small) and len(_insns(small)) < 30
