"""RV64IMAC + Zicsr + Zifencei: instruction decoding, compressed forms expanded.

:func:`decode` turns one instruction (16 or 32 bits) into an :class:`Insn`: the base-ISA operation
it performs (a compressed instruction becomes its 32-bit equivalent), its register numbers and its
sign-extended immediate. Every tier and the random instruction generator share it; the semantics
live in the tiers (``interp.py`` is the reference).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "Insn",
    "decode",
    "IllegalInstruction",
    "MASK64",
    "sext",
    "BRANCHES",
    "LOADS",
    "STORES",
    "COUNTERS",
    "ENDS_BLOCK",
]

MASK64 = (1 << 64) - 1

COUNTERS = {0xC00: "cycle", 0xC01: "time", 0xC02: "instret"}
"""The user-mode counter CSRs (Zicntr), read-only; any other CSR is an illegal instruction."""


class IllegalInstruction(Exception):
    """The word at a PC is not an RV64IMAC instruction."""

    def __init__(self, word: int, why: str = "") -> None:
        super().__init__(f"illegal instruction {word:#x}{': ' + why if why else ''}")
        self.word = word


class Insn(NamedTuple):
    """A decoded instruction.

    Members
    -------
    op : str
        Base-ISA mnemonic (``addi``, ``lw``, ``amoadd.d``, ``csrrs``, ...).
    rd, rs1, rs2 : int
        Register numbers (0 when unused).
    imm : int
        Sign-extended immediate; the CSR number for ``csrr*``; the zero-extended ``uimm`` in ``rs1``
        for ``csrr*i``; the shift amount for shifts; ``aq``/``rl`` ignored.
    size : int
        2 (compressed) or 4 bytes.
    """

    op: str
    rd: int = 0
    rs1: int = 0
    rs2: int = 0
    imm: int = 0
    size: int = 4


BRANCHES = frozenset({"beq", "bne", "blt", "bge", "bltu", "bgeu"})
LOADS = {"lb": (1, True), "lh": (2, True), "lw": (4, True), "ld": (8, True),
         "lbu": (1, False), "lhu": (2, False), "lwu": (4, False)}  # fmt: skip
STORES = {"sb": 1, "sh": 2, "sw": 4, "sd": 8}
ENDS_BLOCK = BRANCHES | {"jal", "jalr", "ecall", "ebreak", "fence.i"}


def sext(value: int, bits: int) -> int:
    """``value``'s low ``bits`` bits as a signed integer."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _bits(w: int, hi: int, lo: int) -> int:
    return (w >> lo) & ((1 << (hi - lo + 1)) - 1)


_OP = {  # (funct7, funct3) for OP and OP-32
    (0, 0): "add", (0x20, 0): "sub", (0, 1): "sll", (0, 2): "slt", (0, 3): "sltu",
    (0, 4): "xor", (0, 5): "srl", (0x20, 5): "sra", (0, 6): "or", (0, 7): "and",
    (1, 0): "mul", (1, 1): "mulh", (1, 2): "mulhsu", (1, 3): "mulhu",
    (1, 4): "div", (1, 5): "divu", (1, 6): "rem", (1, 7): "remu",
}  # fmt: skip
_OP32 = {
    (0, 0): "addw", (0x20, 0): "subw", (0, 1): "sllw", (0, 5): "srlw", (0x20, 5): "sraw",
    (1, 0): "mulw", (1, 4): "divw", (1, 5): "divuw", (1, 6): "remw", (1, 7): "remuw",
}  # fmt: skip
_AMO = {
    0x02: "lr", 0x03: "sc", 0x01: "amoswap", 0x00: "amoadd", 0x04: "amoxor", 0x0C: "amoand",
    0x08: "amoor", 0x10: "amomin", 0x14: "amomax", 0x18: "amominu", 0x1C: "amomaxu",
}  # fmt: skip
_LOAD3 = ("lb", "lh", "lw", "ld", "lbu", "lhu", "lwu")
_STORE3 = ("sb", "sh", "sw", "sd")
_BRANCH3 = {0: "beq", 1: "bne", 4: "blt", 5: "bge", 6: "bltu", 7: "bgeu"}
_IMM3 = {0: "addi", 2: "slti", 3: "sltiu", 4: "xori", 6: "ori", 7: "andi"}
_CSR3 = {1: "csrrw", 2: "csrrs", 3: "csrrc", 5: "csrrwi", 6: "csrrsi", 7: "csrrci"}


def decode(word: int) -> Insn:
    """Decode the instruction whose (little-endian) bits are ``word``.

    ``word`` may carry the next halfword above a compressed instruction: only the low 16 bits are
    looked at then.

    Raises
    ------
    IllegalInstruction
        Not an RV64IMAC + Zicsr + Zifencei instruction (reserved encodings included).
    """
    if word & 3 != 3:
        return _decode_c(word & 0xFFFF)
    word &= 0xFFFF_FFFF
    opc = word & 0x7F
    rd, f3, rs1, rs2, f7 = _bits(word, 11, 7), _bits(word, 14, 12), _bits(word, 19, 15), \
        _bits(word, 24, 20), word >> 25  # fmt: skip
    i_imm = sext(word >> 20, 12)
    if opc == 0x37:
        return Insn("lui", rd, imm=sext(word & 0xFFFFF000, 32))
    if opc == 0x17:
        return Insn("auipc", rd, imm=sext(word & 0xFFFFF000, 32))
    if opc == 0x6F:
        imm = (_bits(word, 31, 31) << 20 | _bits(word, 19, 12) << 12 | _bits(word, 20, 20) << 11
               | _bits(word, 30, 21) << 1)  # fmt: skip
        return Insn("jal", rd, imm=sext(imm, 21))
    if opc == 0x67 and f3 == 0:
        return Insn("jalr", rd, rs1, imm=i_imm)
    if opc == 0x63 and f3 in _BRANCH3:
        imm = (_bits(word, 31, 31) << 12 | _bits(word, 7, 7) << 11 | _bits(word, 30, 25) << 5
               | _bits(word, 11, 8) << 1)  # fmt: skip
        return Insn(_BRANCH3[f3], 0, rs1, rs2, sext(imm, 13))
    if opc == 0x03 and f3 < 7:
        return Insn(_LOAD3[f3], rd, rs1, imm=i_imm)
    if opc == 0x23 and f3 < 4:
        return Insn(_STORE3[f3], 0, rs1, rs2, sext(f7 << 5 | rd, 12))
    if opc == 0x13:
        if f3 in _IMM3:
            return Insn(_IMM3[f3], rd, rs1, imm=i_imm)
        sh, hi = _bits(word, 25, 20), word >> 26
        if f3 == 1 and hi == 0:
            return Insn("slli", rd, rs1, imm=sh)
        if f3 == 5 and hi in (0, 0x10):
            return Insn("srai" if hi else "srli", rd, rs1, imm=sh)
    if opc == 0x1B:
        if f3 == 0:
            return Insn("addiw", rd, rs1, imm=i_imm)
        if f3 == 1 and f7 == 0:
            return Insn("slliw", rd, rs1, imm=rs2)
        if f3 == 5 and f7 in (0, 0x20):
            return Insn("sraiw" if f7 else "srliw", rd, rs1, imm=rs2)
    if opc == 0x33 and (f7, f3) in _OP:
        return Insn(_OP[f7, f3], rd, rs1, rs2)
    if opc == 0x3B and (f7, f3) in _OP32:
        return Insn(_OP32[f7, f3], rd, rs1, rs2)
    if opc == 0x0F:
        if f3 == 0:
            return Insn("fence")
        if f3 == 1:
            return Insn("fence.i")
    if opc == 0x73:
        if word == 0x00000073:
            return Insn("ecall")
        if word == 0x00100073:
            return Insn("ebreak")
        if f3 in _CSR3:
            return Insn(_CSR3[f3], rd, rs1, imm=word >> 20)
    if opc == 0x2F and f3 in (2, 3) and (f7 >> 2) in _AMO:
        name = _AMO[f7 >> 2]
        if name == "lr" and rs2:
            raise IllegalInstruction(word, "lr with rs2 != 0")
        return Insn(f"{name}.{'w' if f3 == 2 else 'd'}", rd, rs1, rs2)
    raise IllegalInstruction(word)


def _c_reg(v: int) -> int:
    return 8 + (v & 7)


def _decode_c(h: int) -> Insn:
    """Expand a compressed instruction (RV64C, no floating point) to its base form."""
    if h == 0:
        raise IllegalInstruction(h, "all-zero halfword")
    q, f3 = h & 3, h >> 13
    rdp, rs2p = _c_reg(h >> 2), _c_reg(h >> 7)
    r = _bits(h, 11, 7)
    r2 = _bits(h, 6, 2)
    ci6 = sext(_bits(h, 12, 12) << 5 | _bits(h, 6, 2), 6)
    if q == 0:
        if f3 == 0:  # c.addi4spn
            imm = (_bits(h, 10, 7) << 6 | _bits(h, 12, 11) << 4 | _bits(h, 5, 5) << 3
                   | _bits(h, 6, 6) << 2)  # fmt: skip
            if imm == 0:
                raise IllegalInstruction(h, "c.addi4spn with zero immediate")
            return Insn("addi", rdp, 2, imm=imm, size=2)
        uw = _bits(h, 12, 10) << 3 | _bits(h, 6, 6) << 2 | _bits(h, 5, 5) << 6  # c.lw / c.sw
        ud = _bits(h, 12, 10) << 3 | _bits(h, 6, 5) << 6  # c.ld / c.sd
        if f3 == 2:
            return Insn("lw", rdp, rs2p, imm=uw, size=2)
        if f3 == 3:
            return Insn("ld", rdp, rs2p, imm=ud, size=2)
        if f3 == 6:
            return Insn("sw", 0, rs2p, rdp, uw, 2)
        if f3 == 7:
            return Insn("sd", 0, rs2p, rdp, ud, 2)
        raise IllegalInstruction(h, "floating-point or reserved compressed load/store")
    if q == 1:
        if f3 == 0:
            return Insn("addi", r, r, imm=ci6, size=2)  # c.nop / c.addi
        if f3 == 1:
            if r == 0:
                raise IllegalInstruction(h, "c.addiw with rd = 0")
            return Insn("addiw", r, r, imm=ci6, size=2)
        if f3 == 2:
            return Insn("addi", r, 0, imm=ci6, size=2)  # c.li
        if f3 == 3:
            if r == 2:  # c.addi16sp
                imm = sext(_bits(h, 12, 12) << 9 | _bits(h, 4, 3) << 7 | _bits(h, 5, 5) << 6
                           | _bits(h, 2, 2) << 5 | _bits(h, 6, 6) << 4, 10)  # fmt: skip
                if imm == 0:
                    raise IllegalInstruction(h, "c.addi16sp with zero immediate")
                return Insn("addi", 2, 2, imm=imm, size=2)
            if ci6 == 0:
                raise IllegalInstruction(h, "c.lui with zero immediate")
            return Insn("lui", r, imm=ci6 << 12, size=2)
        if f3 == 4:
            f2 = _bits(h, 11, 10)
            sh = _bits(h, 12, 12) << 5 | _bits(h, 6, 2)
            if f2 == 0:
                return Insn("srli", rs2p, rs2p, imm=sh, size=2)
            if f2 == 1:
                return Insn("srai", rs2p, rs2p, imm=sh, size=2)
            if f2 == 2:
                return Insn("andi", rs2p, rs2p, imm=ci6, size=2)
            op = (("sub", "xor", "or", "and"), ("subw", "addw", None, None))[_bits(h, 12, 12)][
                _bits(h, 6, 5)
            ]
            if op is None:
                raise IllegalInstruction(h, "reserved compressed arithmetic")
            return Insn(op, rs2p, rs2p, rdp, size=2)
        if f3 == 5:  # c.j
            imm = (_bits(h, 12, 12) << 11 | _bits(h, 8, 8) << 10 | _bits(h, 10, 9) << 8
                   | _bits(h, 6, 6) << 7 | _bits(h, 7, 7) << 6 | _bits(h, 2, 2) << 5
                   | _bits(h, 11, 11) << 4 | _bits(h, 5, 3) << 1)  # fmt: skip
            return Insn("jal", 0, imm=sext(imm, 12), size=2)
        imm = (_bits(h, 12, 12) << 8 | _bits(h, 6, 5) << 6 | _bits(h, 2, 2) << 5
               | _bits(h, 11, 10) << 3 | _bits(h, 4, 3) << 1)  # fmt: skip
        return Insn("beq" if f3 == 6 else "bne", 0, rs2p, 0, sext(imm, 9), 2)
    if q == 2:
        if f3 == 0:
            return Insn("slli", r, r, imm=_bits(h, 12, 12) << 5 | r2, size=2)
        if f3 == 2:
            if r == 0:
                raise IllegalInstruction(h, "c.lwsp with rd = 0")
            imm = _bits(h, 12, 12) << 5 | _bits(h, 6, 4) << 2 | _bits(h, 3, 2) << 6
            return Insn("lw", r, 2, imm=imm, size=2)
        if f3 == 3:
            if r == 0:
                raise IllegalInstruction(h, "c.ldsp with rd = 0")
            imm = _bits(h, 12, 12) << 5 | _bits(h, 6, 5) << 3 | _bits(h, 4, 2) << 6
            return Insn("ld", r, 2, imm=imm, size=2)
        if f3 == 4:
            if _bits(h, 12, 12) == 0:
                if r2 == 0:
                    if r == 0:
                        raise IllegalInstruction(h, "c.jr with rs1 = 0")
                    return Insn("jalr", 0, r, size=2)
                return Insn("add", r, 0, r2, size=2)  # c.mv
            if r2 == 0:
                if r == 0:
                    return Insn("ebreak", size=2)
                return Insn("jalr", 1, r, size=2)
            return Insn("add", r, r, r2, size=2)
        if f3 == 6:
            return Insn("sw", 0, 2, r2, _bits(h, 12, 9) << 2 | _bits(h, 8, 7) << 6, 2)
        if f3 == 7:
            return Insn("sd", 0, 2, r2, _bits(h, 12, 10) << 3 | _bits(h, 9, 7) << 6, 2)
    raise IllegalInstruction(h, "floating-point or reserved compressed instruction")
