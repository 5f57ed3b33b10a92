"""The ``native`` tier: its x86-64 assembler checked against capstone, and its translations run
against the interpreter (the reference) on random and hand-written guests."""

from __future__ import annotations

import random
from collections.abc import Callable

import capstone
import pytest
from capstone import x86_const

from models.xlate import x86
from models.xlate.interp import Interpreter
from models.xlate.isa import ENDS_BLOCK, MASK64, Insn, decode
from models.xlate.linux import Cpu, GuestExit, GuestSignal, Linux
from models.xlate.memory import AddressSpace
from models.xlate.native import KIND_NAMES, NativeTranslator
from models.xlate.randgen import (
    ALU_OPS,
    AMO_OPS,
    BRANCH_OPS,
    CSR_OPS,
    IMM_OPS,
    LOAD_OPS,
    SHIFT_OPS,
    STORE_OPS,
    encode,
)
from models.xlate.x86 import CC, Asm, Mem, Reg, reg_name

CODE, CODE_BYTES = 0x10000, 0x4000
DATA, DATA_BYTES = 0x20000, 0x4000
INT64_MIN = 1 << 63

# ---- instruction words: randgen's encoder (validated: immediates must be in range) -----------

ALU_IMM_OPS = tuple(op for op in IMM_OPS if op not in SHIFT_OPS)
I_OPS = (*ALU_IMM_OPS, *LOAD_OPS)
AMO_NAMES = tuple(dict.fromkeys(op.partition(".")[0] for op in AMO_OPS))
"""``amoswap``, ``amoadd``, ...: the AMOs without their width (LR/SC not among them)."""
FIXED_OPS = ("ecall", "ebreak", "fence", "fence.i")


def upper20(bits: int) -> int:
    """The ``lui``/``auipc`` immediate with the upper 20 of 32 ``bits``, sign-extended."""
    return ((bits & 0xFFFFF000) ^ 0x8000_0000) - 0x8000_0000


def li(rd: int, value: int) -> list[int]:
    """``lui`` + ``addiw``/``addi``: ``rd`` = a sign-extended 32-bit ``value``."""
    lo = ((value & 0xFFF) ^ 0x800) - 0x800
    hi = upper20(value - lo)
    out = [encode("lui", rd, imm=hi)] if hi else []
    return [*out, encode("addiw" if hi else "addi", rd, rd if hi else 0, imm=lo)]


class Prog:
    """Instruction words and halfwords with forward/backward labels."""

    def __init__(self) -> None:
        self.items: list[tuple[str, object]] = []
        self.labels: dict[str, int] = {}
        self.size = 0

    def w(self, *words: int) -> None:
        for word in words:
            self.items.append(("w", word))
            self.size += 4

    def c(self, half: int) -> None:
        self.items.append(("c", half))
        self.size += 2

    def label(self, name: str) -> None:
        self.labels[name] = self.size

    def branch(self, op: str, rs1: int, rs2: int, target: str, rd: int = 0) -> None:
        self.items.append(("b", (op, rs1, rs2, target, rd, self.size)))
        self.size += 4

    def code(self) -> bytes:
        out = bytearray()
        for kind, v in self.items:
            if kind == "w":
                out += int(v).to_bytes(4, "little")  # type: ignore[call-overload]
            elif kind == "c":
                out += int(v).to_bytes(2, "little")  # type: ignore[call-overload]
            else:
                op, rs1, rs2, target, rd, at = v  # type: ignore[misc]
                off = self.labels[target] - at
                word = encode("jal", rd, imm=off) if op == "jal" else encode(op, 0, rs1, rs2, off)
                out += word.to_bytes(4, "little")
        return bytes(out)


# ---- guests ------------------------------------------------------------------------------------


def make_guest(code: bytes, regs: list[int], data: bytes) -> tuple[Cpu, AddressSpace, Linux]:
    """A guest with ``code`` at :data:`CODE` (writable: code may modify itself), ``data`` at
    :data:`DATA` and ``x1..x31`` = ``regs``."""
    mem = AddressSpace(2 << 20)
    mem.add_area(CODE, CODE + CODE_BYTES, r=True, w=True, x=True, name="code")
    mem.add_area(DATA, DATA + DATA_BYTES, r=True, w=True, x=False, name="data")
    mem.poke(CODE, code)
    data = data.ljust(DATA_BYTES, b"\0")
    for off in range(DATA_BYTES - 4096, -1, -4096):  # last page first: not contiguous in RAM,
        mem.write_bytes(DATA + off, data[off : off + 4096])  # so crossing a page must be seen
    out: list[bytes] = []
    kernel = Linux(stdout=out.append)
    cpu = Cpu(CODE)
    cpu.x[1:] = [v & MASK64 for v in regs]
    return cpu, mem, kernel


def state(cpu: Cpu, mem: AddressSpace) -> tuple[object, ...]:
    return (cpu.pc, cpu.instret, tuple(cpu.x), mem.read_bytes(DATA, DATA_BYTES),
            mem.read_bytes(CODE, CODE_BYTES), cpu.resv)  # fmt: skip


def diff(a: tuple[object, ...], b: tuple[object, ...]) -> str:
    """Where two states differ, readably."""
    out = []
    if a[:2] != b[:2]:
        out.append(f"pc/instret {a[0]:#x}/{a[1]} vs {b[0]:#x}/{b[1]}")  # type: ignore[str-format]
    for r, (u, v) in enumerate(zip(a[2], b[2], strict=True)):  # type: ignore[call-overload]
        if u != v:
            out.append(f"x{r}: {u:#x} vs {v:#x}")
    for k, name in ((3, "data"), (4, "code")):
        if a[k] != b[k]:
            at = next(i for i, (u, v) in enumerate(zip(a[k], b[k], strict=True)) if u != v)
            out.append(f"{name} differs first at +{at:#x}")
    if a[5] != b[5]:
        out.append(f"reservation {a[5]} vs {b[5]}")
    return "; ".join(out)


class Pair:
    """The same guest on the interpreter and on the native tier."""

    def __init__(self, code: bytes, regs: list[int], data: bytes) -> None:
        self.icpu, self.imem, self.ik = make_guest(code, regs, data)
        self.ncpu, self.nmem, self.nk = make_guest(code, regs, data)
        self.interp = Interpreter(self.icpu, self.imem, self.ik)
        self.native = NativeTranslator(self.ncpu, self.nmem, self.nk)

    def check(self, where: str) -> None:
        a, b = state(self.icpu, self.imem), state(self.ncpu, self.nmem)
        assert a == b, f"{where}: interp vs native: {diff(a, b)}"

    @staticmethod
    def _outcome(f: Callable[[], object]) -> tuple[str, object]:
        try:
            return "ok", f()
        except GuestExit as e:
            return "exit", e.status
        except GuestSignal as e:
            return "signal", (e.signal, e.pc, str(e))

    def lockstep(self, max_blocks: int = 20000) -> tuple[str, object]:
        """``step_block`` the native tier, run the interpreter as far, compare after each block;
        the final outcome."""
        for n in range(max_blocks):
            before = self.ncpu.instret
            kind, v = self._outcome(self.native.step_block)
            ran = self.ncpu.instret - before
            if kind == "ok":
                assert v == ran, f"step_block returned {v}, retired {ran}"
            assert self._outcome(lambda r=ran: self.interp.run(r)) == ("ok", None)
            if kind != "ok":
                assert self._outcome(self.interp.step) == (kind, v)
                self.check(f"end after block {n}")
                return kind, v
            self.check(f"block {n}")
        raise AssertionError("guest did not end")

    def run_both(self, limit: int | None = None) -> tuple[str, object]:
        """Run both freely (native: chained); compare at the end (or after ``limit``)."""
        n = self._outcome(lambda: self.native.run(limit))
        i = self._outcome(lambda: self.interp.run(self.ncpu.instret - self.icpu.instret))
        if n[0] != "ok":
            assert i == ("ok", None)
            i = self._outcome(self.interp.step)
        assert n == i
        self.check("after run")
        return n


VALUES = [0, 1, 2, 3, 7, 31, 32, 33, 63, 64, 65, MASK64, MASK64 - 1, INT64_MIN, INT64_MIN - 1,
          INT64_MIN + 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0xFFFF_FFFF_8000_0000,
          0x1_0000_0000, 0xFFFF_FFFF_FFFF_FF00]  # fmt: skip


def rand_value(rng: random.Random) -> int:
    k = rng.random()
    if k < 0.55:
        return rng.choice(VALUES)
    if k < 0.75:
        return rng.randrange(-300, 300) & MASK64
    if k < 0.85:
        v = rng.getrandbits(32)
        return (v | 0xFFFF_FFFF_0000_0000) if v >> 31 else v
    return rng.getrandbits(64)


RESERVED = (8, 30, 31)  # loop counter, jalr target, memory base
FREE = [r for r in range(32) if r not in RESERVED]  # x0 included: writes to it are dropped
_C_SAFE = {"addi", "addiw", "lui", "slli", "srli", "srai", "andi", "add", "sub", "xor", "or",
           "and", "subw", "addw"}  # fmt: skip


def rand_compressed(rng: random.Random) -> int:
    """A random compressed ALU instruction that leaves the reserved registers alone."""
    while True:
        h = rng.getrandbits(16)
        if h & 3 == 3:
            continue
        try:
            i = decode(h)
        except Exception:
            continue
        if i.op in _C_SAFE and i.rd not in RESERVED:
            return h


def rand_alu(rng: random.Random) -> int:
    rd, rs1, rs2 = rng.choice(FREE), rng.randrange(32), rng.randrange(32)
    k = rng.random()
    if k < 0.45:
        return encode(rng.choice(ALU_OPS), rd, rs1, rs2)
    if k < 0.75:
        op = rng.choice(ALU_IMM_OPS)
        imms = [0, 1, -1, 2047, -2048, rng.randrange(-2048, 2048)]
        return encode(op, rd, rs1, imm=rng.choice(imms))
    if k < 0.9:
        op = rng.choice(SHIFT_OPS)
        return encode(op, rd, rs1, imm=rng.randrange(64 if op[-1] == "i" else 32))
    return encode(rng.choice(["lui", "auipc"]), rd, imm=upper20(rng.getrandbits(32)))


def rand_address(rng: random.Random, size: int) -> int:
    """A data address for a ``size``-byte access: page-crossing or misaligned some of the time."""
    k = rng.random()
    if k < 0.3:
        page = rng.randrange(1, DATA_BYTES // 4096)
        return DATA + page * 4096 - rng.randrange(1, 8)
    if k < 0.5:
        return DATA + rng.randrange(DATA_BYTES - 8)
    return DATA + rng.randrange(0, DATA_BYTES - 8, size)


def emit_access(p: Prog, rng: random.Random) -> None:
    load = rng.random() < 0.5
    op = rng.choice(LOAD_OPS if load else STORE_OPS)
    size = {"b": 1, "h": 2, "w": 4, "d": 8}[op[1]]
    addr = rand_address(rng, size)
    imm = rng.randrange(-2048, 2048)
    p.w(*li(31, addr - imm))
    if load:
        p.w(encode(op, rng.choice(FREE), 31, imm=imm))
    else:
        p.w(encode(op, 0, 31, rng.randrange(32), imm))


def emit_atomic(p: Prog, rng: random.Random) -> None:
    w = rng.choice("wd")
    addr = DATA + rng.randrange(0, DATA_BYTES, 8)
    p.w(*li(31, addr))
    if rng.random() < 0.3:
        p.w(encode(f"lr.{w}", rng.choice(FREE), 31))
        p.w(encode(f"sc.{w}", rng.choice(FREE), 31, rng.randrange(32)))
    else:
        name = rng.choice(AMO_NAMES)
        p.w(encode(f"{name}.{w}", rng.choice(FREE), 31, rng.randrange(32)))


def random_program(rng: random.Random, body: int = 60, iterations: int = 3) -> Prog:
    """A loop of ``iterations`` over ``body`` random items: ALU (compressed too), M extension,
    loads and stores of every width (misaligned, page-crossing), forward branches, ``jal``,
    ``jalr``, counters, atomics, a ``write`` system call; then ``exit``."""
    p = Prog()
    p.w(*li(8, iterations))
    p.label("top")
    pending: list[list[object]] = []  # [label, items left]
    nlabel = 0
    for _ in range(body):
        for item in pending:
            item[1] -= 1  # type: ignore[operator]
            if item[1] == 0:
                p.label(item[0])  # type: ignore[arg-type]
        pending = [item for item in pending if item[1] > 0]  # type: ignore[operator]
        k = rng.random()
        if k < 0.4:
            p.w(rand_alu(rng))
        elif k < 0.5:
            p.c(rand_compressed(rng))
        elif k < 0.7:
            emit_access(p, rng)
        elif k < 0.82:
            name = f"L{nlabel}"
            nlabel += 1
            pending.append([name, rng.randrange(1, 5)])
            if rng.random() < 0.8:
                p.branch(rng.choice(BRANCH_OPS), rng.randrange(32), rng.randrange(32), name)
            else:
                p.branch("jal", 0, 0, name, rd=rng.choice(FREE))
        elif k < 0.87:
            skip = rng.randrange(2)  # over zero or one instruction
            p.w(encode("auipc", 30), encode("addi", 30, 30, imm=12 + 4 * skip + rng.randrange(2)))
            p.w(encode("jalr", rng.choice(FREE), 30, imm=0))
            if skip:
                p.w(rand_alu(rng))
        elif k < 0.91:
            csr = rng.choice([0xC00, 0xC01, 0xC02])
            p.w(encode(rng.choice(["csrrs", "csrrc"]), rng.choice(FREE), 0, imm=csr))
        elif k < 0.95:
            emit_atomic(p, rng)
        elif k < 0.97:
            p.w(*li(17, 64), *li(10, 1), *li(11, DATA + rng.randrange(64)), *li(12, 5))
            p.w(encode("ecall"))
        else:
            p.w(encode("fence"))
    for item in pending:
        p.label(item[0])  # type: ignore[arg-type]
    p.w(encode("addi", 8, 8, imm=-1))
    p.branch("bne", 8, 0, "top")
    p.w(*li(17, 93), encode("ecall"))
    return p


def random_pair(rng: random.Random, code: bytes) -> Pair:
    regs = [rand_value(rng) for _ in range(31)]
    return Pair(code, regs, rng.randbytes(DATA_BYTES))


# ---- 1. the assembler against capstone ---------------------------------------------------------


def _cs() -> capstone.Cs:
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.detail = True
    return md


def _cs_operands(ins: capstone.CsInsn) -> list[tuple[object, ...]]:
    """Capstone's operands, normalised; an immediate as ``("imm", value, bytes)``."""
    out: list[tuple[object, ...]] = []
    for o in ins.operands:
        if o.type == x86_const.X86_OP_REG:
            out.append(("reg", ins.reg_name(o.reg)))
        elif o.type == x86_const.X86_OP_IMM:
            out.append(("imm", o.imm & ((1 << 8 * o.size) - 1), o.size))
        else:
            m = o.mem
            out.append(("mem", 8 * o.size, ins.reg_name(m.base) if m.base else None,
                        ins.reg_name(m.index) if m.index else None, m.scale, m.disp))  # fmt: skip
    return out


def _expect(ops: list[object]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for o in ops:
        if isinstance(o, Reg):
            out.append(("reg", reg_name(o)))
        elif isinstance(o, Mem):
            out.append(("mem", o.bits, o.base and reg_name(o.base), o.index and reg_name(o.index),
                        o.scale, o.disp))  # fmt: skip
        else:
            out.append(("imm", o))
    return out


def rand_reg(rng: random.Random, bits: int, no_rsp: bool = False) -> Reg:
    while True:
        r = Reg(rng.randrange(16), bits)
        if not (no_rsp and r.num == 4):
            return r


def rand_mem(rng: random.Random, bits: int) -> Mem:
    """Any base (none; rsp, rbp, r12, r13: the special ModRM/SIB cases), index and
    displacement."""
    base = rng.choice([None, Reg(4), Reg(5), Reg(12), Reg(13), *(Reg(n) for n in range(16))])
    index = rand_reg(rng, 64, no_rsp=True) if rng.random() < 0.5 else None
    disp = rng.choice([0, 1, -1, 127, -128, 128, -129, 0x7FFF_FFFF, -(1 << 31),
                       rng.randrange(-(1 << 31), 1 << 31)])  # fmt: skip
    if base is None and index is None:
        disp &= 0x7FFF_FFFF
    return Mem(base, index, rng.choice([1, 2, 4, 8]) if index else 1, disp, bits)


def rand_imm(rng: random.Random, bits: int) -> int:
    lim = min(bits, 32)
    return rng.choice([0, 1, -1, 127, -128, 128 if bits > 8 else 100,
                       rng.randrange(-(1 << (lim - 1)), 1 << (lim - 1))])  # fmt: skip


Form = tuple[str, list[object], Callable[[Asm], object]]


def _forms(rng: random.Random) -> list[Form]:
    """(expected mnemonic, expected operands, emitter) for one random operand choice of every
    instruction form."""
    out: list[Form] = []
    for bits in (8, 16, 32, 64):
        r1, r2, m = rand_reg(rng, bits), rand_reg(rng, bits), rand_mem(rng, bits)
        imm = rand_imm(rng, bits)
        out += [
            ("mov", [r1, r2], lambda a, r1=r1, r2=r2: a.mov(r1, r2)),
            ("mov", [m, r1], lambda a, m=m, r1=r1: a.mov(m, r1)),
            ("mov", [r1, m], lambda a, m=m, r1=r1: a.mov(r1, m)),
            ("mov", [m, imm], lambda a, m=m, i=imm: a.mov(m, i)),
            ("mov", [r1, imm], lambda a, r1=r1, i=imm: a.mov(r1, i)),
            ("test", [r1, r2], lambda a, r1=r1, r2=r2: a.test(r1, r2)),
            ("test", [m, r1], lambda a, m=m, r1=r1: a.test(m, r1)),
            ("test", [m, imm], lambda a, m=m, i=imm: a.test(m, i)),
        ]
        for name in ("add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"):
            out += [
                (name, [r1, r2], lambda a, n=name, r1=r1, r2=r2: a.alu(n, r1, r2)),
                (name, [m, r1], lambda a, n=name, m=m, r1=r1: a.alu(n, m, r1)),
                (name, [r1, m], lambda a, n=name, m=m, r1=r1: a.alu(n, r1, m)),
                (name, [r1, imm], lambda a, n=name, r1=r1, i=imm: a.alu(n, r1, i)),
                (name, [m, imm], lambda a, n=name, m=m, i=imm: a.alu(n, m, i)),
            ]
        for name in ("rol", "ror", "shl", "shr", "sar"):
            count = rng.randrange(1, bits)
            out += [
                (name, [r1, x86.CL], lambda a, n=name, r1=r1: a.shift(n, r1, x86.CL)),
                (name, [m, count], lambda a, n=name, m=m, c=count: a.shift(n, m, c)),
                (name, [r1, count], lambda a, n=name, r1=r1, c=count: a.shift(n, r1, c)),
            ]
        for name in ("not", "neg", "mul", "div", "idiv"):
            out.append((name, [m], lambda a, n=name, m=m: a.unary(n, m)))
            out.append((name, [r1], lambda a, n=name, r1=r1: a.unary(n, r1)))
        out.append(("imul", [r1], lambda a, r1=r1: a.imul1(r1)))
        if bits >= 16:
            out += [
                ("imul", [r1, m], lambda a, r1=r1, m=m: a.imul(r1, m)),
                ("imul", [r1, r2, imm], lambda a, r1=r1, r2=r2, i=imm: a.imul(r1, r2, i)),
            ]
            for cc in range(16):
                out.append((f"cmov{CC.NAMES[cc]}", [r1, m],
                            lambda a, c=cc, r1=r1, m=m: a.cmov(c, r1, m)))  # fmt: skip
        if bits >= 32:
            out.append(("lea", [r1, m], lambda a, r1=r1, m=m: a.lea(r1, m)))
            for sb in (8, 16):
                src = rand_mem(rng, sb) if rng.random() < 0.5 else rand_reg(rng, sb)
                out.append(("movzx", [r1, src], lambda a, r1=r1, s=src: a.movzx(r1, s)))
                out.append(("movsx", [r1, src], lambda a, r1=r1, s=src: a.movsx(r1, s)))
    r64 = rand_reg(rng, 64)
    src32 = rand_reg(rng, 32) if rng.random() < 0.5 else rand_mem(rng, 32)
    big = rng.randrange(1 << 33, 1 << 64)
    r8, pr, jm = rand_reg(rng, 8), rand_reg(rng, 64), rand_mem(rng, 64)
    out += [
        ("movsxd", [r64, src32], lambda a: a.movsx(r64, src32)),
        ("movabs", [r64, big], lambda a: a.mov(r64, big)),
        ("push", [pr], lambda a: a.push(pr)),
        ("pop", [pr], lambda a: a.pop(pr)),
        ("jmp", [jm], lambda a: a.jmp_ind(jm)),
        ("jmp", [pr], lambda a: a.jmp_ind(pr)),
        ("call", [pr], lambda a: a.call_ind(pr)),
        ("cqo", [], lambda a: a.cqo()),
        ("cdq", [], lambda a: a.cdq()),
        ("ret", [], lambda a: a.ret()),
        ("nop", [], lambda a: a.nop()),
        ("ud2", [], lambda a: a.ud2()),
        ("jmp", [0x1234_5678], lambda a: a.jmp(0x1234_5678)),
        ("call", [0x1000], lambda a: a.call(0x1000)),
    ]
    for cc in range(16):
        out.append((f"set{CC.NAMES[cc]}", [r8], lambda a, c=cc: a.setcc(c, r8)))
        out.append((f"j{CC.NAMES[cc]}", [0x0FFF_0000], lambda a, c=cc: a.jcc(c, 0x0FFF_0000)))
    return out


@pytest.mark.parametrize("seed", range(8))
def test_assembler_matches_capstone(seed: int) -> None:
    """Every instruction form, random operands: capstone decodes exactly one instruction of the
    intended mnemonic and operands."""
    rng = random.Random(seed)
    md = _cs()
    n = 0
    for mnem, ops, emit in _forms(rng):
        a = Asm(0x1000)
        emit(a)
        code = bytes(a.code)
        got = list(md.disasm(code, 0x1000))
        where = f"seed {seed}: {mnem} {ops}: {code.hex()}"
        assert len(got) == 1 and got[0].size == len(code), where
        ins = got[0]
        where += f": capstone says {ins.mnemonic} {ins.op_str}"
        assert ins.mnemonic == mnem, where
        expect, actual = _expect(ops), _cs_operands(ins)
        assert len(expect) == len(actual), where
        for e, x in zip(expect, actual, strict=True):
            if e[0] == "imm" and x[0] == "imm":  # capstone masks to the immediate's own width
                assert int(e[1]) & ((1 << 8 * int(x[2])) - 1) == x[1], where  # type: ignore[call-overload]
            else:
                assert e == x, where
        n += 1
    assert n > 300


def test_assembler_text() -> None:
    """A few forms spelled out as capstone prints them."""
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    cases: list[tuple[Callable[[Asm], object], str]] = [
        (lambda a: a.add(x86.RAX, x86.qword(x86.RBX, 0x48)), "add rax, qword ptr [rbx + 0x48]"),
        (
            lambda a: a.mov(x86.R12, x86.qword(x86.RBX, 0x10, x86.R13, 8)),
            "mov r12, qword ptr [rbx + r13*8 + 0x10]",
        ),
        (lambda a: a.mov(x86.qword(x86.R13, 0), x86.RAX), "mov qword ptr [r13], rax"),
        (lambda a: a.mov(x86.RCX, x86.qword(x86.R12, -8)), "mov rcx, qword ptr [r12 - 8]"),
        (lambda a: a.movsx(x86.RCX, x86.byte(x86.RAX)), "movsx rcx, byte ptr [rax]"),
        (lambda a: a.movzx(x86.ECX, x86.word(x86.RAX)), "movzx ecx, word ptr [rax]"),
        (lambda a: a.mov(x86.byte(x86.RAX), Reg(6, 8)), "mov byte ptr [rax], sil"),
        (lambda a: a.shift("sar", x86.RAX, x86.CL), "sar rax, cl"),
        (lambda a: a.idiv(x86.RCX), "idiv rcx"),
        (
            lambda a: a.jmp_ind(x86.qword(x86.RBX, 0x200, x86.RDX)),
            "jmp qword ptr [rbx + rdx + 0x200]",
        ),
        (lambda a: a.lea(x86.RAX, Mem(x86.R12, disp=3)), "lea rax, [r12 + 3]"),
        (lambda a: a.jmp(0x1000), "jmp 0x1000"),
        (lambda a: a.jcc(CC.NE, 0x2000), "jne 0x2000"),
        (lambda a: a.call(0x1234), "call 0x1234"),
    ]
    for emit, text in cases:
        a = Asm(0x1000)
        emit(a)
        (ins,) = md.disasm(bytes(a.code), 0x1000)
        assert f"{ins.mnemonic} {ins.op_str}" == text
        assert ins.size == len(a.code)


def test_assembler_labels_and_errors() -> None:
    a = Asm(0)
    lab = a.label()
    a.jcc(CC.E, lab, short=True)
    a.jmp(lab)
    a.nop()
    a.bind(lab)
    a.ret()
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    assert [(i.mnemonic, i.op_str) for i in md.disasm(bytes(a.code), 0)] == [
        ("je", "8"), ("jmp", "8"), ("nop", ""), ("ret", "")]  # fmt: skip
    with pytest.raises(x86.AsmError):
        a.mov(x86.qword(x86.RAX), 1 << 40)
    with pytest.raises(x86.AsmError):
        a.mov(x86.RAX, x86.EAX)
    with pytest.raises(x86.AsmError):
        a.lea(x86.RAX, Mem(x86.RAX, x86.RSP))
    far = a.label()
    a.jmp(far, short=True)
    a.code += bytes(200)
    with pytest.raises(x86.AsmError):
        a.bind(far)


# ---- 1b. translations disassemble cleanly ------------------------------------------------------


def every_op_word(rng: random.Random) -> list[int]:
    """One random encoding of every instruction the decoder knows (32-bit forms)."""
    r = lambda: rng.randrange(32)  # noqa: E731
    words = [encode(op, r(), r(), r()) for op in ALU_OPS]
    words += [encode(op, r(), r(), imm=rng.randrange(-2048, 2048)) for op in I_OPS]
    words += [
        encode(op, r(), r(), imm=rng.randrange(64 if op[-1] == "i" else 32)) for op in SHIFT_OPS
    ]
    words += [encode(op, 0, r(), r(), rng.randrange(-2048, 2048)) for op in STORE_OPS]
    words += [encode(op, 0, r(), r(), 2 * rng.randrange(-2048, 2048)) for op in BRANCH_OPS]
    words += [encode(op, r(), imm=upper20(rng.getrandbits(32))) for op in ("lui", "auipc")]
    words += [encode("jal", r(), imm=2 * rng.randrange(-(1 << 19), 1 << 19))]
    words += [encode("jalr", r(), r(), imm=rng.randrange(-2048, 2048))]
    csrs = [0xC00, 0xC01, 0xC02, 0x300]
    words += [encode(op, r(), r(), imm=rng.choice(csrs)) for op in CSR_OPS]
    lrsc = [f"{n}.{w}" for n in ("lr", "sc") for w in "wd"]
    words += [encode(op, r(), r(), 0 if op[:2] == "lr" else r()) for op in (*lrsc, *AMO_OPS)]
    words += [encode(op) for op in FIXED_OPS]
    return words


@pytest.mark.parametrize("seed", range(6))
def test_translations_disassemble(seed: int) -> None:
    rng = random.Random(seed)
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    words = every_op_word(rng)
    ops = set()
    for word in [*words, *(rand_compressed(rng) for _ in range(20))]:
        i: Insn = decode(word)
        ops.add(i.op)
        code = word.to_bytes(i.size, "little") + encode("ecall").to_bytes(4, "little")
        cpu, mem, kernel = make_guest(code, [0] * 31, b"")
        tr = NativeTranslator(cpu, mem, kernel)
        blk = tr.block(CODE)
        assert blk is not None
        host = tr.code_bytes(blk)
        got = sum(ins.size for ins in md.disasm(host, blk.entry))
        assert got == len(host), f"seed {seed}: {i}: undecodable x86 at +{got}: {host.hex()}"
        assert blk.pcmap[0] == (blk.body, CODE, 0)
        if i.op not in ENDS_BLOCK:
            assert blk.ninsns == 2
            assert blk.guest_at(blk.pcmap[-1][0]) == (CODE + i.size, 1)  # the ecall
    assert len(ops) >= 88


# ---- 2. differential: native against the interpreter -------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_random_programs_lockstep(seed: int) -> None:
    rng = random.Random(1000 + seed)
    code = random_program(rng).code()
    pair = random_pair(rng, code)
    outcome = pair.lockstep()
    assert outcome[0] in ("exit", "signal"), f"seed {1000 + seed}"
    assert pair.ik.syscalls == pair.nk.syscalls


@pytest.mark.parametrize("seed", range(12))
def test_random_programs_run(seed: int) -> None:
    """Chained execution, in slices of ``run(limit)`` and then to the end."""
    rng = random.Random(2000 + seed)
    code = random_program(rng, body=80, iterations=5).code()
    pair = random_pair(rng, code)
    for _ in range(3):
        outcome = pair.run_both(rng.randrange(1, 200))
        if outcome[0] != "ok":
            break
    else:
        outcome = pair.run_both()
    assert outcome[0] in ("exit", "signal"), f"seed {2000 + seed}"
    st = pair.native.stats
    assert st["blocks"] > 0


@pytest.mark.parametrize("seed", range(3))
def test_code_buffer_full(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """A code buffer with room for one block: flushed on every translation, including while
    following an exit whose jump would be patched (patching it then would corrupt the new
    code: without that check this test dies of SIGILL)."""
    from models.xlate import native

    monkeypatch.setattr(native, "CODE_BYTES", native._BLOCK_ROOM + 256)
    rng = random.Random(3000 + seed)
    pair = random_pair(rng, random_program(rng, body=60, iterations=3).code())
    outcome = pair.run_both()
    assert outcome[0] in ("exit", "signal")
    assert pair.native.stats["flushes"] > 3


def _hand(words: list[int], regs: dict[int, int] | None = None, data: bytes = b"") -> Pair:
    r = [0] * 31
    for k, v in (regs or {}).items():
        r[k - 1] = v
    return Pair(b"".join(w.to_bytes(4, "little") for w in words), r,
                data.ljust(DATA_BYTES, b"\x5a"))  # fmt: skip


EXIT = [*li(17, 93), encode("ecall")]


def test_division_corner_cases() -> None:
    corner = [0, 1, MASK64, INT64_MIN, INT64_MIN + 1, 0x8000_0000, 0xFFFF_FFFF_8000_0000,
              0xFFFF_FFFF, 7, MASK64 - 6]  # fmt: skip
    ops = ["div", "divu", "rem", "remu", "divw", "divuw", "remw", "remuw", "mul", "mulh",
           "mulhsu", "mulhu", "mulw"]  # fmt: skip
    words = []
    regs = {}
    for k, v in enumerate(corner):
        regs[1 + k] = v
    rd = 11
    for op in ops:
        for a in range(1, 1 + len(corner)):
            for b in range(1, 1 + len(corner)):
                words.append(encode(op, rd, a, b))
                words.append(encode("sd", 0, 30, rd, 8 * (rd - 11)))
                rd = 11 + (rd - 10) % 19
    pair = _hand([*li(30, DATA), *words, *EXIT], regs)
    assert pair.lockstep() == ("exit", regs[10] & 0xFF)


def test_shifts_by_large_amounts() -> None:
    amounts = [0, 1, 31, 32, 33, 63, 64, 65, 127, MASK64]
    regs = {1: 0x8123_4567_89AB_CDEF, 2: 0x7FFF_FFFF_8000_0001, 3: MASK64}
    words = []
    mix = [encode("xor", 21, 21, 20), encode("add", 21, 21, 21)]  # fold x20 into x21
    for k, s in enumerate(amounts):
        regs[4 + k] = s
    for op in ("sll", "srl", "sra", "sllw", "srlw", "sraw"):
        for src in (1, 2, 3):
            for k in range(len(amounts)):
                words += [encode(op, 20, src, 4 + k), *mix]
    for op in SHIFT_OPS:
        for src in (1, 2, 3):
            for s in range(64 if op[-1] == "i" else 32):
                words += [encode(op, 20, src, imm=s), *mix]
    pair = _hand([*words, *EXIT], regs)
    pair.lockstep()


def test_every_load_store_width() -> None:
    """Every width, aligned, misaligned and crossing each page boundary, signed and not."""
    words = [*li(30, DATA)]
    rd = 1
    for page_off in (0, 0x1000 - 8, 0x1FFF - 3, 0x2000 - 1, 0x37F9):
        for delta in range(8):
            off = page_off + delta
            words += li(31, DATA + off)
            for op in LOAD_OPS:
                words.append(encode(op, rd, 31, imm=0))
                rd = rd % 28 + 1
            for op in STORE_OPS:
                words.append(encode(op, 0, 31, rd, 1))
                words.append(encode("ld", rd, 31, imm=-1))
                rd = rd % 28 + 1
    data = bytes((i * 37 + 11) & 0xFF for i in range(DATA_BYTES))
    pair = _hand([*words, *EXIT], data=data)
    pair.lockstep()
    pair2 = _hand([*words, *EXIT], data=data)
    pair2.run_both()


def test_faults_are_precise() -> None:
    """A load from an unmapped address: SIGSEGV at its pc with instret counting the ones
    before, after a TLB hit on the same block's earlier access."""
    words = [*li(31, DATA), encode("ld", 5, 31, imm=8), encode("addi", 6, 6, imm=1),
             *li(31, 0x4000_0000), encode("addi", 7, 7, imm=1), encode("lw", 5, 31, imm=0),
             *EXIT]  # fmt: skip
    pair = _hand(words)
    kind, (sig, pc, _) = pair.lockstep()  # type: ignore[misc]
    assert (kind, sig) == ("signal", 11)
    assert pc == CODE + 4 * (len(words) - len(EXIT) - 1)
    pair = _hand(words)
    kind, _v = pair.run_both()
    assert kind == "signal"
    # an illegal instruction and a fetch fault mid-block
    for tail in ([0xFFFF_FFFF], [*li(5, 0x5000_0000), encode("jalr", 0, 5, imm=0)],
                 [encode("csrrw", 5, 6, imm=0xC00)], [encode("ebreak")]):  # fmt: skip
        pair = _hand([encode("addi", 1, 1, imm=1), *tail, *EXIT])
        assert pair.lockstep()[0] == "signal"
        pair = _hand([encode("addi", 1, 1, imm=1), *tail, *EXIT])
        assert pair.run_both()[0] == "signal"


def test_self_modifying_code() -> None:
    """A loop that patches an instruction of its own (already translated) block, then
    ``fence.i``: later iterations run the new instruction."""
    new = encode("addi", 10, 10, imm=100)
    p = Prog()
    p.w(*li(31, new), *li(30, CODE), *li(8, 3))
    p.label("top")
    p.w(encode("addi", 10, 10, imm=1))  # becomes `new` after the first iteration
    p.w(encode("addi", 11, 11, imm=1))
    p.w(encode("addi", 8, 8, imm=-1))
    p.branch("beq", 8, 0, "out")
    p.w(0)  # the sw, below: needs the label's offset
    p.w(encode("fence.i"))
    p.branch("jal", 0, 0, "top")
    p.label("out")
    p.w(*EXIT)
    code = bytearray(p.code())
    at = p.labels["out"] - 12
    code[at : at + 4] = encode("sw", 0, 30, 31, p.labels["top"]).to_bytes(4, "little")
    for mode in ("lockstep", "run"):
        pair = Pair(bytes(code), [0] * 31, bytes(DATA_BYTES))
        pair.lockstep() if mode == "lockstep" else pair.run_both()
        assert pair.icpu.x[10] == 1 + 100 + 100
    assert pair.native.stats["flushes"] >= 2


def test_store_to_next_instruction_same_block() -> None:
    """Stores replacing the very next instruction, already translated in the same block, with
    no ``fence.i`` (the interpreter fetches afresh, so must we). The second store comes after
    the first one made its page writable in the softmmu TLB and the block was translated again:
    it must not hit a stale native write-TLB entry."""
    words = [
        *li(29, encode("addi", 12, 12, imm=7)),  # words 0-1
        *li(28, CODE + 4 * 6),  # words 2-3
        encode("sw", 0, 28, 29, 0),  # word 4
        encode("addi", 13, 13, imm=1),  # word 5
        encode("addi", 12, 12, imm=1),  # word 6: becomes addi 12, 12, 7 before it runs
        *li(29, encode("addi", 14, 14, imm=9)),  # words 7-8
        encode("sw", 0, 28, 29, 4 * 4),  # word 9: patches word 10
        encode("addi", 14, 14, imm=1),  # word 10
        *EXIT,
    ]
    for mode in ("lockstep", "run"):
        pair = _hand(words)
        pair.lockstep() if mode == "lockstep" else pair.run_both()
        assert (pair.ncpu.x[12], pair.ncpu.x[14]) == (7, 9)


def test_atomics() -> None:
    """Every AMO on both widths with corner values, LR/SC succeeding and failing, an AMO on
    translated code (it must go through the code-write path), then a misaligned AMO: SIGBUS."""
    corner = [0, 1, MASK64, INT64_MIN, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_8000_0000]
    regs = {1 + k: v for k, v in enumerate(corner)}
    words = [*li(30, DATA + 0x100)]
    for op in AMO_OPS:  # every AMO, both widths
        for k in range(len(corner)):
            for j in range(0, len(corner), 3):
                words += [encode("sd", 0, 30, 1 + k, 0), encode(op, 20, 30, 1 + j),
                          encode("ld", 21, 30, imm=0), encode("add", 22, 22, 20),
                          encode("xor", 22, 22, 21)]  # fmt: skip
    for w in "wd":
        lr, sc = f"lr.{w}", f"sc.{w}"
        words += [encode(lr, 20, 30), encode(sc, 21, 30, 3), encode("ld", 22, 30, imm=0),
                  encode(sc, 23, 30, 4),  # no reservation left: fails
                  encode(lr, 20, 30), *li(29, DATA + 0x108), encode(sc, 24, 29, 5),
                  encode(sc, 25, 30, 6)]  # fmt: skip
    at = 4 * (len(words) + 5)  # the instruction after the amoswap below: becomes addi x26, x26, 9
    words += [*li(29, CODE + at), *li(28, encode("addi", 26, 26, imm=9)),
              encode("amoswap.w", 27, 29, 28), encode("addi", 26, 26, imm=1)]  # fmt: skip
    assert 4 * (len(words) - 1) == at
    words += [*li(29, DATA + 0x104), encode("amoadd.d", 20, 29, 1), *EXIT]
    for mode in ("lockstep", "run"):
        pair = _hand(words, regs)
        outcome = pair.lockstep() if mode == "lockstep" else pair.run_both()
        assert outcome[0] == "signal" and outcome[1][0] == 7  # type: ignore[index]
        assert pair.ncpu.x[26] == 9


def test_ecall_write_and_exit() -> None:
    words = [*li(17, 64), *li(10, 1), *li(11, DATA), *li(12, 6), encode("ecall"),
             *li(10, 42), *EXIT]  # fmt: skip
    pair = _hand(words, data=b"hello\n")
    assert pair.lockstep() == ("exit", 42)
    out: list[bytes] = []
    pair = _hand(words, data=b"hello\n")
    pair.nk.stdout = out.append
    assert pair.run_both() == ("exit", 42)
    assert out == [b"hello\n"]


def test_budget_and_chaining() -> None:
    """A hot loop chains to itself; ``run(limit)`` stops within one block of the limit."""
    words = [*li(5, 10000), encode("addi", 6, 6, imm=3), encode("addi", 5, 5, imm=-1),
             encode("bne", 0, 5, 0, -8), *EXIT]  # fmt: skip
    pair = _hand(words)
    pair.native.run(5 + 3 * 300)  # the first block has 5 instructions, the loop 3
    assert pair.ncpu.instret == 5 + 3 * 300  # a limit on a block boundary: exactly
    pair.native.run(1000)
    assert 1905 <= pair.ncpu.instret < 1905 + 3  # else: to the end of the block
    pair.interp.run(pair.ncpu.instret)
    pair.check("after limit")
    assert pair.run_both() == ("exit", 0)
    st = pair.native.stats
    assert st["static"] <= 3 and st["budget"] == 2, st


def test_broken_emission_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The differential check fails when the emitted code is wrong (here: ``sub`` as ``add``)."""
    from models.xlate import native

    monkeypatch.setitem(native._ALU3, "sub", "add")
    words = [*li(1, 5), *li(2, 3), encode("sub", 3, 1, 2), *EXIT]
    pair = _hand(words)
    with pytest.raises(AssertionError, match="x3"):
        pair.lockstep()


def test_exit_kinds_exercised() -> None:
    rng = random.Random(7)
    pair = random_pair(rng, random_program(rng, body=120, iterations=4).code())
    pair.run_both()
    st = pair.native.stats
    assert all(st[k] > 0 for k in KIND_NAMES if k != "budget"), st
