"""Seeded random RV64IMAC programs for differential testing (:mod:`models.xlate.lockstep`).

:func:`random_program` builds an :class:`~models.xlate.elf.Image` directly, no toolchain: a text
segment of random but valid code and a data segment (a pool of initial register values, a table
of edge values operands are sometimes loaded from, and a scratch area straddling a page
boundary). The code exercises every ALU, immediate, word and M operation, ``lui``/``auipc``,
loads and stores of every width (misaligned and page-crossing ones included), AMOs and LR/SC,
counter CSR reads, forward branches and jumps, bounded backward loops, calls and returns through
``jal``/``jalr``/``c.jalr``, ``fence``/``fence.i``, the ``brk``, ``read`` and ``write`` system
calls and a final ``exit`` whose status depends on the registers.
A good share of instructions is emitted in their compressed (RVC) form.

Every emitted instruction is checked by decoding it again with :func:`~models.xlate.isa.decode`:
it must give exactly the intended :class:`~models.xlate.isa.Insn`.

A program is a list of *units*, each self-contained (it sets up the registers it relies on, its
branches go forward to the start of a later unit or stay inside it), so :func:`shrink` can drop
any of them and still get a valid, terminating program.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from .elf import Image, Segment
from .isa import COUNTERS, LOADS, STORES, IllegalInstruction, Insn, decode

__all__ = [
    "ALU_OPS", "AMO_OPS", "BRANCH_OPS", "CSR_OPS", "DATA_BASE", "DATA_BYTES", "IMM_OPS",
    "LOAD_OPS", "REG_NAMES", "SHIFT_OPS", "STDIN", "STORE_OPS", "TEXT_BASE", "Ins", "Program",
    "Unit", "assemble", "compress", "disasm", "encode", "expected_insn", "format_insn",
    "generate", "listing", "random_program", "reproducer", "shrink",
]  # fmt: skip

TEXT_BASE = 0x10000
DATA_BASE = 0x18000
"""The data segment: ``lui`` of it fits ``c.lui``; the text must end below it."""
DATA_BYTES = 0x2000
_POOL = DATA_BASE
"""Initial register values, 8 bytes for each ``x1..x31`` (slot ``k`` for ``xk``)."""
_EDGES = DATA_BASE + 0x100
"""A table of 32 edge values (:data:`_EDGE_VALUES`), never stored to."""
_SCRATCH = DATA_BASE + 0x200
_DATA_END = DATA_BASE + DATA_BYTES
_EDGE = DATA_BASE + 0x1000
"""A page boundary inside the scratch area, for page-crossing accesses."""
STDIN = bytes(range(7, 7 + 3 * 64, 3))
"""What the lockstep tests give a random program's ``read(0, ...)``."""
DEFAULT_BLOCKS = 48

REG_NAMES = (
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4",
    "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
    "t5", "t6",
)  # fmt: skip
"""ABI names of ``x0..x31``."""

_M64 = (1 << 64) - 1

# ---- the encoder ---------------------------------------------------------------------------------

_R = {  # op: (opcode, funct3, funct7)
    "add": (0x33, 0, 0), "sub": (0x33, 0, 0x20), "sll": (0x33, 1, 0), "slt": (0x33, 2, 0),
    "sltu": (0x33, 3, 0), "xor": (0x33, 4, 0), "srl": (0x33, 5, 0), "sra": (0x33, 5, 0x20),
    "or": (0x33, 6, 0), "and": (0x33, 7, 0), "mul": (0x33, 0, 1), "mulh": (0x33, 1, 1),
    "mulhsu": (0x33, 2, 1), "mulhu": (0x33, 3, 1), "div": (0x33, 4, 1), "divu": (0x33, 5, 1),
    "rem": (0x33, 6, 1), "remu": (0x33, 7, 1),
    "addw": (0x3B, 0, 0), "subw": (0x3B, 0, 0x20), "sllw": (0x3B, 1, 0), "srlw": (0x3B, 5, 0),
    "sraw": (0x3B, 5, 0x20), "mulw": (0x3B, 0, 1), "divw": (0x3B, 4, 1), "divuw": (0x3B, 5, 1),
    "remw": (0x3B, 6, 1), "remuw": (0x3B, 7, 1),
}  # fmt: skip
_I = {  # op: (opcode, funct3); shifts carry their funct6/funct7 in the immediate's high bits
    "addi": (0x13, 0), "slti": (0x13, 2), "sltiu": (0x13, 3), "xori": (0x13, 4),
    "ori": (0x13, 6), "andi": (0x13, 7), "addiw": (0x1B, 0), "jalr": (0x67, 0),
    "lb": (0x03, 0), "lh": (0x03, 1), "lw": (0x03, 2), "ld": (0x03, 3), "lbu": (0x03, 4),
    "lhu": (0x03, 5), "lwu": (0x03, 6),
}  # fmt: skip
_SHIFT = {  # op: (opcode, funct3, high bits of the immediate, shift-amount bits)
    "slli": (0x13, 1, 0, 6), "srli": (0x13, 5, 0, 6), "srai": (0x13, 5, 0x400, 6),
    "slliw": (0x1B, 1, 0, 5), "srliw": (0x1B, 5, 0, 5), "sraiw": (0x1B, 5, 0x400, 5),
}  # fmt: skip
_S = {"sb": 0, "sh": 1, "sw": 2, "sd": 3}
_B = {"beq": 0, "bne": 1, "blt": 4, "bge": 5, "bltu": 6, "bgeu": 7}
_CSR = {"csrrw": 1, "csrrs": 2, "csrrc": 3, "csrrwi": 5, "csrrsi": 6, "csrrci": 7}
_AMO5 = {"lr": 0x02, "sc": 0x03, "amoswap": 0x01, "amoadd": 0x00, "amoxor": 0x04,
         "amoand": 0x0C, "amoor": 0x08, "amomin": 0x10, "amomax": 0x14, "amominu": 0x18,
         "amomaxu": 0x1C}  # fmt: skip
ALU_OPS = tuple(_R)
IMM_OPS = ("addi", "slti", "sltiu", "xori", "ori", "andi", "addiw", *_SHIFT)
AMO_OPS = tuple(f"{n}.{w}" for n in _AMO5 if n not in ("lr", "sc") for w in "wd")
SHIFT_OPS = tuple(_SHIFT)
LOAD_OPS = tuple(op for op, (opc, _) in _I.items() if opc == 0x03)
STORE_OPS = tuple(_S)
BRANCH_OPS = tuple(_B)
CSR_OPS = tuple(_CSR)


def _fits(v: int, bits: int) -> bool:
    return -(1 << (bits - 1)) <= v < 1 << (bits - 1)


def _b(v: int, hi: int, lo: int) -> int:
    return (v >> lo) & ((1 << (hi - lo + 1)) - 1)


def encode(op: str, rd: int = 0, rs1: int = 0, rs2: int = 0, imm: int = 0, aqrl: int = 0) -> int:
    """The 32-bit encoding of base instruction ``op`` (the fields as :class:`Insn` holds them).

    Raises
    ------
    ValueError
        An unknown operation or an immediate out of range.
    """
    if op in _R:
        opc, f3, f7 = _R[op]
        return f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opc
    if op in _I:
        if not _fits(imm, 12):
            raise ValueError(f"{op}: immediate {imm} out of range")
        opc, f3 = _I[op]
        return (imm & 0xFFF) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opc
    if op in _SHIFT:
        opc, f3, hi, bits = _SHIFT[op]
        if not 0 <= imm < 1 << bits:
            raise ValueError(f"{op}: shift amount {imm} out of range")
        return (hi | imm) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opc
    if op in _S:
        if not _fits(imm, 12):
            raise ValueError(f"{op}: offset {imm} out of range")
        return (_b(imm, 11, 5) << 25 | rs2 << 20 | rs1 << 15 | _S[op] << 12 | _b(imm, 4, 0) << 7
                | 0x23)  # fmt: skip
    if op in _B:
        if not _fits(imm, 13) or imm & 1:
            raise ValueError(f"{op}: offset {imm} out of range")
        return (_b(imm, 12, 12) << 31 | _b(imm, 10, 5) << 25 | rs2 << 20 | rs1 << 15
                | _B[op] << 12 | _b(imm, 4, 1) << 8 | _b(imm, 11, 11) << 7 | 0x63)  # fmt: skip
    if op in ("lui", "auipc"):
        if imm & 0xFFF or not _fits(imm, 32):
            raise ValueError(f"{op}: immediate {imm:#x} out of range")
        return (imm & 0xFFFFF000) | rd << 7 | (0x37 if op == "lui" else 0x17)
    if op == "jal":
        if not _fits(imm, 21) or imm & 1:
            raise ValueError(f"jal: offset {imm} out of range")
        return (_b(imm, 20, 20) << 31 | _b(imm, 10, 1) << 21 | _b(imm, 11, 11) << 20
                | _b(imm, 19, 12) << 12 | rd << 7 | 0x6F)  # fmt: skip
    if op in _CSR:
        return (imm & 0xFFF) << 20 | rs1 << 15 | _CSR[op] << 12 | rd << 7 | 0x73
    name, _, width = op.partition(".")
    if name in _AMO5 and width in ("w", "d"):
        return (_AMO5[name] << 27 | (aqrl & 3) << 25 | rs2 << 20 | rs1 << 15
                | (2 if width == "w" else 3) << 12 | rd << 7 | 0x2F)  # fmt: skip
    fixed = {"ecall": 0x73, "ebreak": 0x00100073, "fence": 0x0FF0000F, "fence.i": 0x0000100F}
    if op in fixed:
        return fixed[op]
    raise ValueError(f"cannot encode {op!r}")


def _cr(r: int) -> int | None:
    """The 3-bit field of a register compressed forms can name (x8..x15), else None."""
    return r - 8 if 8 <= r <= 15 else None


def compress(op: str, rd: int = 0, rs1: int = 0, rs2: int = 0, imm: int = 0) -> int | None:
    """The 16-bit RVC encoding that expands to exactly this base instruction, or None.

    HINT encodings (``rd = x0`` and the like) are never produced, except ``c.nop``.
    """
    rdp, rs1p, rs2p = _cr(rd), _cr(rs1), _cr(rs2)

    def ci(f3: int, q: int, r: int, v: int) -> int:  # CI format, 6-bit immediate
        return f3 << 13 | _b(v, 5, 5) << 12 | r << 7 | _b(v, 4, 0) << 2 | q

    if op == "addi":
        if rd == rs1 == imm == 0:
            return 0x0001  # c.nop
        if rd == rs1 == 2 and imm and imm % 16 == 0 and _fits(imm, 10):  # c.addi16sp
            return (0x6101 | _b(imm, 9, 9) << 12 | _b(imm, 4, 4) << 6 | _b(imm, 6, 6) << 5
                    | _b(imm, 8, 7) << 3 | _b(imm, 5, 5) << 2)  # fmt: skip
        if rd and rd == rs1 and imm and _fits(imm, 6):
            return ci(0, 1, rd, imm)  # c.addi
        if rd and rs1 == 0 and _fits(imm, 6):
            return ci(2, 1, rd, imm)  # c.li
        if rdp is not None and rs1 == 2 and 0 < imm < 1024 and imm % 4 == 0:  # c.addi4spn
            return (_b(imm, 5, 4) << 11 | _b(imm, 9, 6) << 7 | _b(imm, 2, 2) << 6
                    | _b(imm, 3, 3) << 5 | rdp << 2)  # fmt: skip
        return None
    if op == "addiw" and rd and rd == rs1 and _fits(imm, 6):
        return ci(1, 1, rd, imm)  # c.addiw
    if op == "lui" and rd not in (0, 2) and imm and imm & 0xFFF == 0 and _fits(imm >> 12, 6):
        return ci(3, 1, rd, imm >> 12)  # c.lui
    if op == "slli" and rd and rd == rs1 and 0 < imm < 64:
        return ci(0, 2, rd, imm)  # c.slli
    if op in ("srli", "srai", "andi") and rdp is not None and rd == rs1:
        f2 = ("srli", "srai", "andi").index(op)
        if (op == "andi" and _fits(imm, 6)) or (op != "andi" and 0 < imm < 64):
            return 0x8001 | _b(imm, 5, 5) << 12 | f2 << 10 | rdp << 7 | _b(imm, 4, 0) << 2
        return None
    ca = {"sub": (0, 0), "xor": (0, 1), "or": (0, 2), "and": (0, 3), "subw": (1, 0),
          "addw": (1, 1)}  # fmt: skip
    if op in ca and rdp is not None and rd == rs1 and rs2p is not None:
        hi, f2 = ca[op]
        return 0x8C01 | hi << 12 | rdp << 7 | f2 << 5 | rs2p << 2
    if op == "add" and rd and rs2:
        if rs1 == 0:
            return 0x8002 | rd << 7 | rs2 << 2  # c.mv
        if rs1 == rd:
            return 0x9002 | rd << 7 | rs2 << 2  # c.add
        return None
    if op == "jalr" and imm == 0 and rs1 and rd in (0, 1):
        return (0x8002 if rd == 0 else 0x9002) | rs1 << 7  # c.jr / c.jalr
    if op == "jal" and rd == 0 and _fits(imm, 12) and not imm & 1:  # c.j
        return (0xA001 | _b(imm, 11, 11) << 12 | _b(imm, 4, 4) << 11 | _b(imm, 9, 8) << 9
                | _b(imm, 10, 10) << 8 | _b(imm, 6, 6) << 7 | _b(imm, 7, 7) << 6
                | _b(imm, 3, 1) << 3 | _b(imm, 5, 5) << 2)  # fmt: skip
    if op in ("beq", "bne") and rs1p is not None and rs2 == 0 and _fits(imm, 9) and not imm & 1:
        return ((0xC001 if op == "beq" else 0xE001) | _b(imm, 8, 8) << 12 | _b(imm, 4, 3) << 10
                | rs1p << 7 | _b(imm, 7, 6) << 5 | _b(imm, 2, 1) << 3
                | _b(imm, 5, 5) << 2)  # fmt: skip
    if op in ("lw", "ld", "sw", "sd"):
        size = 4 if op[1] == "w" else 8
        load = op[0] == "l"
        reg = rd if load else rs2
        if rs1 == 2 and (reg or not load) and imm >= 0 and imm % size == 0:  # sp-relative
            hi5 = _b(imm, 5, 5) << 12
            if op == "lw" and imm < 256:  # c.lwsp
                return 0x4002 | hi5 | reg << 7 | _b(imm, 4, 2) << 4 | _b(imm, 7, 6) << 2
            if op == "ld" and imm < 512:  # c.ldsp
                return 0x6002 | hi5 | reg << 7 | _b(imm, 4, 3) << 5 | _b(imm, 8, 6) << 2
            if op == "sw" and imm < 256:  # c.swsp
                return 0xC002 | _b(imm, 5, 2) << 9 | _b(imm, 7, 6) << 7 | reg << 2
            if op == "sd" and imm < 512:  # c.sdsp
                return 0xE002 | _b(imm, 5, 3) << 10 | _b(imm, 8, 6) << 7 | reg << 2
        regp = _cr(reg)
        if rs1p is None or regp is None or imm < 0 or imm % size or imm >= 32 * size:
            return None
        f3 = {"lw": 2, "ld": 3, "sw": 6, "sd": 7}[op]
        if size == 4:
            bits = _b(imm, 5, 3) << 10 | _b(imm, 2, 2) << 6 | _b(imm, 6, 6) << 5
        else:
            bits = _b(imm, 5, 3) << 10 | _b(imm, 7, 6) << 5
        return f3 << 13 | bits | rs1p << 7 | regp << 2
    return None


def expected_insn(op: str, rd: int, rs1: int, rs2: int, imm: int, size: int) -> Insn:
    """The :class:`Insn` :func:`decode` gives for an instruction we emit (its conventions)."""
    if op in _S or op in _B:
        rd = 0
    if op in ("lui", "auipc", "jal") or op in _I or op in _SHIFT or op in _CSR:
        rs2 = 0
    if op in ("lui", "auipc", "jal"):
        rs1 = 0
    if op in _R or op.startswith(("amo", "lr", "sc")):
        imm = 0
    if op in ("ecall", "ebreak", "fence", "fence.i"):
        rd = rs1 = rs2 = imm = 0
    return Insn(op, rd, rs1, rs2, imm, size)


def format_insn(i: Insn, pc: int | None = None) -> str:
    """Assembly text of a decoded instruction (``pc`` turns branch offsets into targets)."""
    n = REG_NAMES
    op = i.op
    rel = (lambda off: f"{pc + off:#x}") if pc is not None else (lambda off: f"pc{off:+d}")
    if op in LOADS or op == "jalr":
        return f"{op} {n[i.rd]}, {i.imm}({n[i.rs1]})"
    if op in STORES:
        return f"{op} {n[i.rs2]}, {i.imm}({n[i.rs1]})"
    if op in _B:
        return f"{op} {n[i.rs1]}, {n[i.rs2]}, {rel(i.imm)}"
    if op == "jal":
        return f"jal {n[i.rd]}, {rel(i.imm)}"
    if op in ("lui", "auipc"):
        return f"{op} {n[i.rd]}, {(i.imm >> 12) & 0xFFFFF:#x}"
    if op in _R:
        return f"{op} {n[i.rd]}, {n[i.rs1]}, {n[i.rs2]}"
    if op in _I or op in _SHIFT:
        return f"{op} {n[i.rd]}, {n[i.rs1]}, {i.imm}"
    if op in _CSR:
        csr = COUNTERS.get(i.imm, f"{i.imm:#x}")
        src = str(i.rs1) if op.endswith("i") else n[i.rs1]
        return f"{op} {n[i.rd]}, {csr}, {src}"
    if op.startswith("lr"):
        return f"{op} {n[i.rd]}, ({n[i.rs1]})"
    if op.startswith(("sc", "amo")):
        return f"{op} {n[i.rd]}, {n[i.rs2]}, ({n[i.rs1]})"
    return op


def disasm(word: int, pc: int | None = None) -> str:
    """``word`` (the raw instruction bits) decoded and formatted, or why it is illegal."""
    try:
        return format_insn(decode(word), pc)
    except IllegalInstruction as e:
        return f"<{e}>"


# ---- programs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ins:
    """One instruction to emit.

    Members
    -------
    op, rd, rs1, rs2, imm
        As :class:`~models.xlate.isa.Insn` holds them after decoding.
    c : bool
        Emit the compressed form (when the final offsets still allow one).
    to : str or None
        A label: ``imm`` becomes its address minus this instruction's (branches, ``jal``), or
        the matching part of that distance: ``part`` ``hi`` for ``auipc``, ``lo`` for an
        ``addi``/``jalr`` right after that ``auipc`` (plus ``imm``).
    aqrl : int
        The AMO ordering bits (not part of :class:`Insn`).
    """

    op: str
    rd: int = 0
    rs1: int = 0
    rs2: int = 0
    imm: int = 0
    c: bool = False
    to: str | None = None
    part: str = ""
    aqrl: int = 0


Item = Ins | str
"""An instruction, or a label (a string) naming the address of what follows."""


@dataclass
class Unit:
    """A self-contained piece of a program: main-line code and out-of-line code (a function)."""

    uid: int
    kind: str
    body: list[Item]
    func: list[Item] = field(default_factory=list)


@dataclass
class Program:
    """A random program before assembly: its units (any of them can be dropped), the epilogue
    (the final ``exit``) and the initial data segment."""

    seed: int
    units: list[Unit]
    epilogue: list[Item]
    data: bytes

    def with_units(self, units: Sequence[Unit]) -> Program:
        return replace(self, units=list(units))


_EDGE_VALUES = (
    0, 1, 2, 3, _M64, _M64 - 1, 1 << 63, (1 << 63) - 1, (1 << 63) + 1, 0x7FFF_FFFF, 0x8000_0000,
    0xFFFF_FFFF, 0xFFFF_FFFF_8000_0000, 0xFFFF_FFFF_7FFF_FFFF, 1 << 32, 31, 32, 63, 64,
    0x5555_5555_5555_5555, 0xAAAA_AAAA_AAAA_AAAA, 0x8000, 0xFFFF, 0x80, 0xFF,
    0xFFFF_FFFF_0000_0000, 0x8000_0001, 0x7F, 0xFFFF_FFFF_FFFF_FF80, 0x8000_0000_FFFF_FFFF,
    0x1_FFFF_FFFF, 0x7FFF,
)  # fmt: skip
assert len(_EDGE_VALUES) == 32
_SIMPLE = ("alu", "alu", "imm", "imm", "calu", "upper", "load", "store", "amo", "lrsc", "csr")
_KINDS = {  # unit kind: weight
    "alu": 14, "imm": 12, "calu": 8, "upper": 3, "load": 9, "store": 9, "spmem": 3, "amo": 4,
    "lrsc": 3, "csr": 3, "branch": 8, "jump": 3, "ijump": 2, "loop": 4, "call": 4, "fence": 1,
    "brk": 1, "write": 1, "read": 1,
}  # fmt: skip


class _Gen:
    """Draws units from one seeded random generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.uid = 0

    # -- operands --

    def reg(self, avoid: frozenset[int] = frozenset(), zero: float = 0.04) -> int:
        rng = self.rng
        if 0 not in avoid and rng.random() < zero:
            return 0
        while True:
            r = rng.randrange(8, 16) if rng.random() < 0.4 else rng.randrange(1, 32)
            if r not in avoid:
                return r

    def value(self) -> int:
        rng = self.rng
        p = rng.random()
        if p < 0.4:
            return rng.choice(_EDGE_VALUES)
        if p < 0.7:
            return rng.getrandbits(64)
        if p < 0.85:
            return rng.randint(-100, 100) & _M64
        return (rng.getrandbits(32) ^ 0x8000_0000) - 0x8000_0000 & _M64

    def imm12(self) -> int:
        rng = self.rng
        p = rng.random()
        if p < 0.3:
            return rng.choice((0, 1, -1, 2047, -2048, 2, -2))
        if p < 0.6:
            return rng.randint(-32, 31)
        return rng.randint(-2048, 2047)

    def c(self, p: float = 0.6) -> bool:
        return self.rng.random() < p

    def li(self, rd: int, value: int) -> list[Item]:
        """``rd = value`` for a value below 2**31 (data addresses): lui + addi, or addi."""
        assert 0 <= value < 1 << 31
        if _fits(value, 12):
            return [Ins("addi", rd, 0, imm=value, c=self.c())]
        hi = (value + 0x800) >> 12
        lo = value - (hi << 12)
        out: list[Item] = [Ins("lui", rd, imm=(hi << 12), c=self.c())]
        if lo:
            out.append(Ins("addi", rd, rd, imm=lo, c=self.c()))
        return out

    def address(self, size: int, aligned: bool) -> int:
        rng = self.rng
        if aligned:
            return rng.randrange(_SCRATCH, _DATA_END - 8, size)
        if rng.random() < 0.3:  # crossing the page boundary
            return rng.randint(_EDGE - size + 1, _EDGE - 1) if size > 1 else _EDGE - 1
        return rng.randrange(_SCRATCH, _DATA_END - 8)

    # -- units --

    def unit(self, kind: str) -> Unit:
        self.uid += 1
        u = Unit(self.uid, kind, [])
        getattr(self, f"_{kind}")(u, frozenset())
        return u

    def edge(self, u: Unit, r: int, avoid: frozenset[int]) -> None:
        """Sometimes load an edge value (0, -1, the most negative, ...) into ``r`` first."""
        if r and r not in avoid and self.rng.random() < 0.3:
            hi = (_EDGES + 0x800) >> 12
            off = _EDGES + 8 * self.rng.randrange(32) - (hi << 12)
            u.body += [
                Ins("lui", r, imm=hi << 12, c=self.c()),
                Ins("ld", r, r, imm=off, c=self.c()),
            ]

    def _alu(self, u: Unit, avoid: frozenset[int]) -> None:
        rng = self.rng
        op = rng.choice(ALU_OPS)
        if self.c(0.35):  # operands some compressed form takes
            rd = rng.randrange(8, 16)
            while rd in avoid:
                rd = rng.randrange(8, 16)
            rs1, rs2 = rd, rng.randrange(8, 16)
        else:
            rs1 = rd = self.reg(avoid)
            if self.c(0.7):
                rs1 = self.reg()
            rs2 = self.reg()
        self.edge(u, rs1, avoid)
        self.edge(u, rs2, avoid | {rs1})
        u.body.append(Ins(op, rd, rs1, rs2, c=self.c()))

    def _imm(self, u: Unit, avoid: frozenset[int]) -> None:
        rng = self.rng
        op = rng.choice(IMM_OPS)
        rd = self.reg(avoid)
        rs1 = rd if self.c(0.4) else self.reg()
        if op in _SHIFT:
            bits = _SHIFT[op][3]
            imm = rng.choice((0, 1, (1 << bits) - 1, 1 << (bits - 1), rng.randrange(1 << bits)))
        else:
            imm = self.imm12()
        self.edge(u, rs1, avoid)
        u.body.append(Ins(op, rd, rs1, imm=imm, c=self.c()))

    def _calu(self, u: Unit, avoid: frozenset[int]) -> None:
        """Operations in the shape of a compressed form."""
        rng = self.rng
        form = rng.choice(("addi", "addiw", "li", "lui", "slli", "srli", "srai", "andi", "mv",
                           "add", "addi4spn", "addi16sp", "nop"))  # fmt: skip
        r = self.reg(avoid | {0}, zero=0)
        rp = rng.choice([x for x in range(8, 16) if x not in avoid] or [r])
        imm6 = rng.choice([v for v in range(-32, 32) if v])
        if form == "addi16sp" and 2 in avoid:
            form = "nop"
        ins = {
            "addi": Ins("addi", r, r, imm=imm6),
            "addiw": Ins("addiw", r, r, imm=imm6),
            "li": Ins("addi", r, 0, imm=imm6 if self.c() else 0),
            "lui": Ins("lui", self.reg(avoid | {0, 2}, zero=0), imm=imm6 << 12),
            "slli": Ins("slli", r, r, imm=rng.randrange(1, 64)),
            "srli": Ins("srli", rp, rp, imm=rng.randrange(1, 64)),
            "srai": Ins("srai", rp, rp, imm=rng.randrange(1, 64)),
            "andi": Ins("andi", rp, rp, imm=imm6),
            "mv": Ins("add", r, 0, self.reg(zero=0)),
            "add": Ins("add", r, r, self.reg(zero=0)),
            "addi4spn": Ins("addi", rp, 2, imm=4 * rng.randrange(1, 256)),
            "addi16sp": Ins("addi", 2, 2, imm=16 * rng.choice([v for v in range(-32, 32) if v])),
            "nop": Ins("addi"),
        }[form]
        u.body.append(replace(ins, c=self.c(0.9)))

    def _upper(self, u: Unit, avoid: frozenset[int]) -> None:
        rng = self.rng
        op = rng.choice(("lui", "auipc"))
        imm = rng.choice((0, 0x80000, 0xFFFFF, 0x7FFFF, 1, rng.randrange(1 << 20)))
        u.body.append(Ins(op, self.reg(avoid), imm=((imm << 12) ^ (1 << 31)) - (1 << 31),
                          c=self.c()))  # fmt: skip

    def _mem(self, u: Unit, avoid: frozenset[int], store: bool) -> None:
        rng = self.rng
        op = rng.choice(tuple(STORES) if store else tuple(LOADS))
        size = STORES[op] if store else LOADS[op][0]
        aligned = rng.random() < 0.7
        data = self.reg(frozenset() if store else avoid)
        if op in ("lw", "ld", "sw", "sd") and self.c(0.45):  # c.lw, c.ld, c.sw, c.sd
            base = rng.choice([x for x in range(8, 16) if x not in avoid])
            data = rng.choice([x for x in range(8, 16) if store or x not in avoid])
            imm = size * rng.randrange(32)
        else:
            base = self.reg(avoid | {0})
            imm = self.imm12()
        addr = self.address(size, aligned)
        u.body += self.li(base, addr - imm)
        if store:
            u.body.append(Ins(op, 0, base, data, imm, c=self.c()))
        else:
            u.body.append(Ins(op, data, base, 0, imm, c=self.c()))

    def _load(self, u: Unit, avoid: frozenset[int]) -> None:
        self._mem(u, avoid, False)

    def _store(self, u: Unit, avoid: frozenset[int]) -> None:
        self._mem(u, avoid, True)

    def _spmem(self, u: Unit, avoid: frozenset[int]) -> None:
        """sp-relative compressed loads and stores (c.lwsp, c.ldsp, c.swsp, c.sdsp)."""
        rng = self.rng
        sp = rng.randrange(_SCRATCH + 0x700, _DATA_END - 0x700, rng.choice((1, 4, 8)))
        u.body += self.li(2, sp)
        for _ in range(rng.randint(1, 4)):
            op = rng.choice(("lw", "ld", "sw", "sd", "addi16sp"))
            if op == "addi16sp":
                d = 16 * rng.choice([v for v in range(-32, 32) if v])
                if _SCRATCH <= sp + d <= _DATA_END - 0x200:  # the accesses stay in the data
                    u.body.append(Ins("addi", 2, 2, imm=d, c=True))
                    sp += d
                continue
            size = 4 if op[1] == "w" else 8
            imm = size * rng.randrange(64)
            r = self.reg(avoid | {0, 2}, zero=0)
            if op[0] == "l":
                u.body.append(Ins(op, r, 2, imm=imm, c=True))
            else:
                u.body.append(Ins(op, 0, 2, r, imm, c=True))

    def _amo(self, u: Unit, avoid: frozenset[int]) -> None:
        rng = self.rng
        op = rng.choice(AMO_OPS)
        size = 4 if op.endswith(".w") else 8
        base = self.reg(avoid | {0})
        u.body += self.li(base, self.address(size, True))
        u.body.append(Ins(op, self.reg(avoid), base, self.reg(), aqrl=rng.randrange(4)))

    def _lrsc(self, u: Unit, avoid: frozenset[int]) -> None:
        rng = self.rng
        w = rng.choice("wd")
        size = 4 if w == "w" else 8
        base = self.reg(avoid | {0})
        keep = avoid | {base}
        u.body += self.li(base, self.address(size, True))
        if rng.random() < 0.9:
            u.body.append(Ins(f"lr.{w}", self.reg(keep), base, aqrl=rng.randrange(4)))
            for _ in range(rng.randint(0, 2)):
                u.body.append(Ins(rng.choice(ALU_OPS[:10]), self.reg(keep), self.reg(),
                                  self.reg()))  # fmt: skip
        if rng.random() < 0.15:  # the SC to another address fails (and drops the reservation)
            u.body += self.li(base, self.address(size, True))
        u.body.append(Ins(f"sc.{w}", self.reg(avoid), base, self.reg(), aqrl=rng.randrange(4)))

    def _csr(self, u: Unit, avoid: frozenset[int]) -> None:
        rng = self.rng
        op = rng.choice(("csrrs", "csrrs", "csrrc", "csrrsi", "csrrci"))
        u.body.append(Ins(op, self.reg(avoid), 0, imm=rng.choice(tuple(COUNTERS))))

    def _target(self, u: Unit) -> str:
        return f"u{u.uid + self.rng.randint(1, 3)}"

    def _branch(self, u: Unit, avoid: frozenset[int]) -> None:
        rng = self.rng
        op = rng.choice(tuple(_B))
        rs1 = self.reg()
        rs2 = rs1 if rng.random() < 0.1 else self.reg(zero=0.25)
        if self.c(0.3):  # the shape of c.beqz / c.bnez
            op, rs1, rs2 = rng.choice(("beq", "bne")), rng.randrange(8, 16), 0
        u.body.append(Ins(op, 0, rs1, rs2, to=self._target(u), c=self.c()))

    def _jump(self, u: Unit, avoid: frozenset[int]) -> None:
        rd = 0 if self.c(0.6) else self.reg()
        u.body.append(Ins("jal", rd, to=self._target(u), c=self.c()))

    def _ijump(self, u: Unit, avoid: frozenset[int]) -> None:
        """auipc + jalr forward, sometimes to an odd address (jalr clears bit 0)."""
        rng = self.rng
        rt = self.reg(zero=0)
        to = self._target(u)
        u.body += [
            Ins("auipc", rt, to=to, part="hi"),
            Ins("jalr", self.reg(), rt, imm=rng.choice((0, 0, 1)), to=to, part="lo"),
        ]

    def _loop(self, u: Unit, avoid: frozenset[int]) -> None:
        rng = self.rng
        rc = self.reg(frozenset({0, 2}), zero=0)
        label = f"l{u.uid}"
        u.body += [Ins("addi", rc, 0, imm=rng.randint(1, 5), c=self.c()), label]
        for _ in range(rng.randint(1, 3)):
            getattr(self, f"_{rng.choice(_SIMPLE)}")(u, frozenset({rc}))
        u.body.append(Ins("addi", rc, rc, imm=-1, c=self.c()))
        if rng.random() < 0.7:
            u.body.append(Ins("bne", 0, rc, 0, to=label, c=self.c()))
        else:
            u.body.append(Ins("blt", 0, 0, rc, to=label))

    def _call(self, u: Unit, avoid: frozenset[int]) -> None:
        rng = self.rng
        fn = f"f{u.uid}"
        form = rng.choice(("jal", "jalr", "cjalr"))
        link = 1 if form == "cjalr" else rng.choice((1, 1, 5))
        if form == "jal":
            u.body.append(Ins("jal", link, to=fn))
        else:
            rt = self.reg(zero=0)
            u.body.append(Ins("auipc", rt, to=fn, part="hi"))
            if form == "jalr":
                u.body.append(Ins("jalr", link, rt, to=fn, part="lo"))
            else:
                u.body += [Ins("addi", rt, rt, to=fn, part="lo"), Ins("jalr", 1, rt, c=True)]
        body = Unit(u.uid, "function", [fn])
        for _ in range(rng.randint(1, 3)):
            getattr(self, f"_{rng.choice(_SIMPLE)}")(body, frozenset({link}))
        body.body.append(Ins("jalr", 0, link, c=self.c(0.7)))
        u.func = body.body

    def _fence(self, u: Unit, avoid: frozenset[int]) -> None:
        u.body.append(Ins(self.rng.choice(("fence", "fence.i"))))

    def _syscall(self, u: Unit, num: int, args: Sequence[int]) -> None:
        for r, v in zip((10, 11, 12), args, strict=False):
            u.body += self.li(r, v)
        u.body += [Ins("addi", 17, 0, imm=num, c=self.c()), Ins("ecall")]

    def _brk(self, u: Unit, avoid: frozenset[int]) -> None:
        """Query the break, grow the heap by 1..3 pages, touch its last bytes."""
        rng = self.rng
        self._syscall(u, 214, [0])
        rt = self.reg(frozenset({0, 10, 17}), zero=0)
        u.body += [Ins("lui", rt, imm=rng.randint(1, 3) << 12, c=self.c()),
                   Ins("add", 10, 10, rt, c=self.c()), Ins("ecall")]  # fmt: skip
        u.body.append(Ins("sd", 0, 10, self.reg(), -8))
        u.body.append(Ins("lw", self.reg(frozenset({10})), 10, 0, rng.randrange(-2048, -4, 4)))

    def _write(self, u: Unit, avoid: frozenset[int]) -> None:
        rng = self.rng
        self._syscall(u, 64, [rng.choice((1, 2)), rng.randrange(_SCRATCH, _EDGE + 0x100),
                              rng.randint(0, 64)])  # fmt: skip

    def _read(self, u: Unit, avoid: frozenset[int]) -> None:
        rng = self.rng
        self._syscall(u, 63, [0, rng.randrange(_SCRATCH, _DATA_END - 0x40), rng.randint(1, 24)])


def generate(seed: int, n_blocks: int = DEFAULT_BLOCKS) -> Program:
    """The random program of ``seed``: registers loaded from the data pool, ``n_blocks`` random
    units, a ``write`` of part of the data, then ``exit`` with a status made of registers."""
    g = _Gen(seed)
    rng = g.rng
    pool = [0] + [g.value() for _ in range(31)]
    data = bytearray(b"".join(v.to_bytes(8, "little") for v in [*pool, *_EDGE_VALUES]))
    data += rng.randbytes(DATA_BYTES - len(data))
    units: list[Unit] = []
    for r in range(1, 32):  # each register on its own: any may be dropped
        g.uid += 1
        hi = (_POOL + 0x800) >> 12
        body: list[Item] = [
            Ins("lui", r, imm=hi << 12, c=g.c()),
            Ins("ld", r, r, imm=_POOL + 8 * r - (hi << 12), c=g.c()),
        ]
        units.append(Unit(g.uid, "init", body))
    kinds, weights = zip(*_KINDS.items(), strict=True)
    for _ in range(n_blocks):
        units.append(g.unit(rng.choices(kinds, weights)[0]))
    g.uid += 1
    final = Unit(g.uid, "write", [])
    g._syscall(final, 64, [1, rng.randrange(_SCRATCH, _DATA_END - 0x100), rng.randint(1, 64)])
    units.append(final)
    epilogue: list[Item] = ["end", Ins(rng.choice(("xor", "add", "sub")), 10, g.reg(), g.reg())]
    for _ in range(rng.randint(1, 3)):
        epilogue.append(Ins(rng.choice(("xor", "add", "or", "mul")), 10, 10, g.reg()))
    epilogue += [Ins("addi", 17, 0, imm=rng.choice((93, 94))), Ins("ecall")]
    return Program(seed, units, epilogue, bytes(data))


# ---- assembly ------------------------------------------------------------------------------------


def _layout(prog: Program) -> list[Item]:
    """The program's items in address order, unit labels placed, dropped targets redirected."""
    items: list[Item] = []
    present = [u.uid for u in prog.units]
    for u in prog.units:
        items.append(f"u{u.uid}")
        items += u.body
    items += prog.epilogue
    for u in prog.units:
        items += u.func

    # A branch to a dropped unit goes to the next one still there (or to the end).
    def target(label: str) -> str:
        if not label.startswith("u"):
            return label
        uid = int(label[1:])
        return next((f"u{p}" for p in present if p >= uid), "end")

    return [x if isinstance(x, str) or x.to is None else replace(x, to=target(x.to))
            for x in items]  # fmt: skip


def _encode_item(x: Ins, pc: int, labels: dict[str, int], compressed: bool) -> tuple[int, int]:
    """(word, size) of ``x`` at ``pc``, checked by decoding it again."""
    imm = x.imm
    if x.to is not None:
        dist = labels[x.to] - pc
        if x.part == "hi":
            imm = ((dist + 0x800) >> 12) << 12
        elif x.part == "lo":
            dist += 4  # relative to the auipc just before
            imm = dist - (((dist + 0x800) >> 12) << 12)
            imm += x.imm if _fits(imm + x.imm, 12) else 0
        else:
            imm = dist
    word = compress(x.op, x.rd, x.rs1, x.rs2, imm) if compressed else None
    size = 2 if word is not None else 4
    if word is None:
        word = encode(x.op, x.rd, x.rs1, x.rs2, imm, x.aqrl)
    want = expected_insn(x.op, x.rd, x.rs1, x.rs2, imm, size)
    got = decode(word)
    if got != want:
        raise AssertionError(f"encoder bug: {want} encoded as {word:#x}, which decodes as {got}")
    return word, size


def assemble(prog: Program) -> tuple[Image, dict[str, int]]:
    """The executable of ``prog`` and the addresses of its labels.

    Raises
    ------
    ValueError
        The code does not fit below :data:`DATA_BASE`.
    """
    items = _layout(prog)
    wide: set[int] = set()  # items whose compressed form turned out out of range
    while True:
        labels: dict[str, int] = {}
        pc = TEXT_BASE
        sizes = []
        for k, x in enumerate(items):
            if isinstance(x, str):
                labels[x] = pc
                sizes.append(0)
                continue
            # Sizes of label-relative items may depend on the layout: assume the chosen form.
            size = 2 if x.c and k not in wide and _compressible(x) else 4
            sizes.append(size)
            pc += size
        if pc > DATA_BASE:
            raise ValueError(f"{pc - TEXT_BASE} bytes of code do not fit below {DATA_BASE:#x}")
        code = bytearray()
        pc = TEXT_BASE
        redo = False
        for k, (x, size) in enumerate(zip(items, sizes, strict=True)):
            if isinstance(x, str):
                continue
            word, got = _encode_item(x, pc, labels, size == 2)
            if got != size:
                wide.add(k)
                redo = True
                break
            code += word.to_bytes(size, "little")
            pc += size
        if not redo:
            break
    image = Image(
        path=f"randgen:{prog.seed}", entry=TEXT_BASE,
        segments=[Segment(TEXT_BASE, len(code), bytes(code), True, False, True),
                  Segment(DATA_BASE, DATA_BYTES, prog.data, True, True, False)],
        phdrs=b"", phoff_vaddr=0, phnum=0, symbols=dict(labels),
    )  # fmt: skip
    return image, labels


def _compressible(x: Ins) -> bool:
    """Whether ``x`` has a compressed form (for a label-relative one: a short enough jump)."""
    if x.to is not None:
        return x.part == "" and compress(x.op, x.rd, x.rs1, x.rs2, 0) is not None
    return compress(x.op, x.rd, x.rs1, x.rs2, x.imm) is not None


def random_program(seed: int, n_blocks: int = DEFAULT_BLOCKS) -> Image:
    """The executable of :func:`generate` ``(seed, n_blocks)``: deterministic by seed."""
    return assemble(generate(seed, n_blocks))[0]


def listing(image: Image) -> str:
    """A disassembly of ``image``'s executable segments: address, raw bits, instruction, with
    the labels from its symbol table."""
    at: dict[int, list[str]] = {}
    for name, addr in image.symbols.items():
        at.setdefault(addr, []).append(name)
    lines = []
    for seg in image.segments:
        if not seg.x:
            continue
        pc, end = seg.vaddr, seg.vaddr + len(seg.data)
        while pc < end:
            for name in sorted(at.get(pc, ())):
                lines.append(f"{name}:")
            off = pc - seg.vaddr
            word = int.from_bytes(seg.data[off : off + 4].ljust(4, b"\0"), "little")
            size = 4 if word & 3 == 3 else 2
            raw = f"{word:08x}" if size == 4 else f"    {word & 0xFFFF:04x}"
            lines.append(f"  {pc:8x}:  {raw}  {disasm(word, pc)}")
            pc += size
    return "\n".join(lines)


def reproducer(seed: int, n_blocks: int = DEFAULT_BLOCKS, tier: str = "interp") -> str:
    """How to re-run the lockstep check of random program ``seed``, and its listing."""
    return (
        f"random program seed={seed} n_blocks={n_blocks} tier={tier}\n"
        f"re-run: python -c 'from models.xlate.lockstep import check_random; "
        f"print(check_random({seed}, {n_blocks}, tier={tier!r}))'\n"
        f"    or: SEED={seed} python -m pytest tests/test_xlate_lockstep.py\n"
        f"{listing(random_program(seed, n_blocks))}\n"
    )


def shrink(seed: int, fails: Callable[[Image], bool], n_blocks: int = DEFAULT_BLOCKS,
           max_tries: int = 400) -> Image:  # fmt: skip
    """A smaller program than :func:`random_program` ``(seed, n_blocks)`` that still ``fails``.

    Delta debugging over the program's units (each register's initialisation is one, so is each
    random block, loop or call): drop chunks of halving size while ``fails`` holds, at most
    ``max_tries`` candidates tried. The final ``exit`` always stays.

    Raises
    ------
    ValueError
        The program of ``seed`` does not fail to begin with.
    """
    prog = generate(seed, n_blocks)
    if not fails(assemble(prog)[0]):
        raise ValueError(f"random program {seed} does not fail")
    units = list(prog.units)
    tries = 0
    chunk = max(1, len(units) // 2)
    while tries < max_tries:
        removed = False
        i = 0
        while i < len(units) and tries < max_tries:
            cand = units[:i] + units[i + chunk :]
            tries += 1
            if fails(assemble(prog.with_units(cand))[0]):
                units = cand
                removed = True
            else:
                i += chunk
        if chunk == 1 and not removed:
            break
        if not removed:
            chunk = max(1, chunk // 2)
    return assemble(prog.with_units(units))[0]
