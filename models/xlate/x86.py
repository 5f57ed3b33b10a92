"""A small x86-64 assembler: the instruction forms the ``native`` tier emits, nothing more.

Operands are :class:`Reg` (a register number 0..15 and a width), :class:`Mem` (base, index, scale,
displacement and the access width) and Python ints (immediates). :class:`Asm` appends the encoding
of each instruction to a byte buffer; jumps take a :class:`Label` (bound later in the same buffer)
or an absolute host address (the buffer knows where it will be placed), and return the offset of
their ``rel32`` field so a translator can re-point them (block chaining).

Only what the translator needs is encoded, and every form is checked against capstone in
``tests/test_xlate_native.py``.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

__all__ = [
    "Reg", "Mem", "Label", "Asm", "AsmError", "CC",
    "RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI",
    "R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15",
    "EAX", "ECX", "EDX", "EBX", "ESI", "EDI", "R8D", "R9D", "R10D", "R11D",
    "AX", "CX", "DX", "AL", "CL", "DL", "BL",
    "qword", "dword", "word", "byte",
]  # fmt: skip


class AsmError(ValueError):
    """An operand combination x86-64 cannot encode (or this assembler does not)."""


class Reg(NamedTuple):
    """A general-purpose register: ``num`` 0..15 (rax..r15) used ``bits`` wide (8, 16, 32, 64).

    8-bit registers 4..7 are ``spl``, ``bpl``, ``sil``, ``dil`` (always with a REX prefix: this
    assembler never encodes ``ah``..``bh``)."""

    num: int
    bits: int = 64

    def w(self, bits: int) -> Reg:
        """The same register, ``bits`` wide."""
        return Reg(self.num, bits)

    @property
    def name(self) -> str:
        return reg_name(self)


_NAMES64 = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi")


def reg_name(r: Reg) -> str:
    """The register's assembler name (``rax``, ``r8d``, ``sil``, ...)."""
    n, bits = r.num, r.bits
    if n >= 8:
        return f"r{n}" + {64: "", 32: "d", 16: "w", 8: "b"}[bits]
    base = _NAMES64[n][1:]
    if bits == 64:
        return "r" + base
    if bits == 32:
        return "e" + base
    if bits == 16:
        return base
    return {"ax": "al", "cx": "cl", "dx": "dl", "bx": "bl"}.get(base, base + "l")


class Mem(NamedTuple):
    """A memory operand ``[base + index*scale + disp]`` accessed ``bits`` wide.

    ``base`` None means no base register (an absolute 32-bit address, sign-extended)."""

    base: Reg | None
    index: Reg | None = None
    scale: int = 1
    disp: int = 0
    bits: int = 64


RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI = (Reg(i) for i in range(8))
R8, R9, R10, R11, R12, R13, R14, R15 = (Reg(i) for i in range(8, 16))
EAX, ECX, EDX, EBX, ESI, EDI = (Reg(i, 32) for i in (0, 1, 2, 3, 6, 7))
R8D, R9D, R10D, R11D = (Reg(i, 32) for i in range(8, 12))
AX, CX, DX = (Reg(i, 16) for i in range(3))
AL, CL, DL, BL = (Reg(i, 8) for i in range(4))


def qword(base: Reg | None, disp: int = 0, index: Reg | None = None, scale: int = 1) -> Mem:
    """A 64-bit memory operand."""
    return Mem(base, index, scale, disp, 64)


def dword(base: Reg | None, disp: int = 0, index: Reg | None = None, scale: int = 1) -> Mem:
    """A 32-bit memory operand."""
    return Mem(base, index, scale, disp, 32)


def word(base: Reg | None, disp: int = 0, index: Reg | None = None, scale: int = 1) -> Mem:
    """A 16-bit memory operand."""
    return Mem(base, index, scale, disp, 16)


def byte(base: Reg | None, disp: int = 0, index: Reg | None = None, scale: int = 1) -> Mem:
    """An 8-bit memory operand."""
    return Mem(base, index, scale, disp, 8)


class CC:
    """x86 condition codes (the low nibble of ``jcc`` / ``setcc`` / ``cmovcc``)."""

    O, NO, B, AE, E, NE, BE, A, S, NS, P, NP, L, GE, LE, G = range(16)
    NAMES = ("o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le",
             "g")  # fmt: skip


class Label:
    """A position in an :class:`Asm` buffer, bound once; jumps to it may precede the binding."""

    __slots__ = ("fixups", "pos")

    def __init__(self) -> None:
        self.pos: int | None = None
        self.fixups: list[tuple[int, int]] = []  # (offset of the rel field, its size)


_ALU = {"add": 0, "or": 1, "adc": 2, "sbb": 3, "and": 4, "sub": 5, "xor": 6, "cmp": 7}
_SHIFT = {"rol": 0, "ror": 1, "shl": 4, "shr": 5, "sar": 7}
_UNARY = {"not": 2, "neg": 3, "mul": 4, "imul1": 5, "div": 6, "idiv": 7}


def _fits8(v: int) -> bool:
    return -128 <= v <= 127


def _fits32(v: int) -> bool:
    return -(1 << 31) <= v < (1 << 31)


class Asm:
    """An x86-64 instruction buffer to be placed at host address ``base``.

    Parameters
    ----------
    base : int
        Where the code will run (absolute jump and call targets are made relative to it).

    Members
    -------
    code : bytearray
    """

    def __init__(self, base: int = 0) -> None:
        self.base = base
        self.code = bytearray()

    # ---- encoding core -------------------------------------------------------------------------

    @property
    def pos(self) -> int:
        """Offset of the next instruction."""
        return len(self.code)

    @property
    def addr(self) -> int:
        """Host address of the next instruction."""
        return self.base + len(self.code)

    def _rm(
        self,
        opcode: bytes,
        reg: int,
        rm: Reg | Mem,
        *,
        bits: int,
        imm: bytes = b"",
        byte_regs: tuple[Reg, ...] = (),
        no_w: bool = False,
    ) -> None:
        """Emit ``[66] [REX] opcode ModRM [SIB] [disp] imm`` with ``reg`` in ModRM.reg."""
        out = self.code
        if bits == 16:
            out.append(0x66)
        rex = 0x08 if bits == 64 and not no_w else 0
        if reg & 8:
            rex |= 0x04
        if any(r.bits == 8 and 4 <= r.num < 8 for r in byte_regs):
            rex |= 0x40
        if isinstance(rm, Reg):
            if rm.num & 8:
                rex |= 0x01
            if rex:
                out.append(0x40 | rex)
            out += opcode
            out.append(0xC0 | (reg & 7) << 3 | (rm.num & 7))
            out += imm
            return
        base, index, scale, disp = rm.base, rm.index, rm.scale, rm.disp
        if scale not in (1, 2, 4, 8):
            raise AsmError(f"scale {scale}")
        if not _fits32(disp):
            raise AsmError(f"displacement {disp:#x} does not fit 32 bits")
        if index is not None:
            if index.num == 4:
                raise AsmError("rsp cannot be an index")
            if index.num & 8:
                rex |= 0x02
        if base is not None and base.num & 8:
            rex |= 0x01
        if rex:
            out.append(0x40 | rex)
        out += opcode
        r3 = (reg & 7) << 3
        ss = {1: 0, 2: 1, 4: 2, 8: 3}[scale] << 6
        if base is None:  # [index*scale + disp32] or [disp32]
            out.append(0x04 | r3)
            out.append(ss | ((index.num & 7) if index is not None else 4) << 3 | 5)
            out += struct.pack("<i", disp)
            out += imm
            return
        if disp == 0 and base.num & 7 != 5:
            mod, dbytes = 0x00, b""
        elif _fits8(disp):
            mod, dbytes = 0x40, struct.pack("<b", disp)
        else:
            mod, dbytes = 0x80, struct.pack("<i", disp)
        if index is None and base.num & 7 != 4:
            out.append(mod | r3 | (base.num & 7))
        else:
            out.append(mod | r3 | 4)
            out.append(ss | ((index.num & 7) if index is not None else 4) << 3 | (base.num & 7))
        out += dbytes
        out += imm

    @staticmethod
    def _bits(a: Reg | Mem, b: Reg | Mem | int | None = None) -> int:
        bits = a.bits
        if isinstance(b, (Reg, Mem)) and b.bits != bits:
            raise AsmError(f"operand sizes differ: {bits} and {b.bits}")
        return bits

    @staticmethod
    def _regs8(*ops: object) -> tuple[Reg, ...]:
        return tuple(o for o in ops if isinstance(o, Reg) and o.bits == 8)

    # ---- data movement -------------------------------------------------------------------------

    def mov(self, dst: Reg | Mem, src: Reg | Mem | int) -> None:
        """``mov``; an immediate to a 64-bit register that does not fit a sign-extended imm32
        becomes ``movabs`` (and one that fits 32 unsigned bits a zero-extending ``mov r32``)."""
        bits = self._bits(dst, src)
        if isinstance(src, int):
            if isinstance(dst, Reg) and bits == 64 and not _fits32(src):
                src &= (1 << 64) - 1
                if src < (1 << 32):
                    self._mov_r32_imm(dst, src)
                    return
                if dst.num & 8:
                    self.code.append(0x49)
                else:
                    self.code.append(0x48)
                self.code.append(0xB8 | (dst.num & 7))
                self.code += struct.pack("<Q", src)
                return
            if bits == 8:
                self._rm(b"\xc6", 0, dst, bits=8, imm=struct.pack("<B", src & 0xFF),
                         byte_regs=self._regs8(dst))  # fmt: skip
                return
            if bits == 16:
                self._rm(b"\xc7", 0, dst, bits=16, imm=struct.pack("<H", src & 0xFFFF))
                return
            if bits == 32:
                if isinstance(dst, Reg):
                    self._mov_r32_imm(dst, src & 0xFFFF_FFFF)
                    return
                self._rm(b"\xc7", 0, dst, bits=32, imm=struct.pack("<I", src & 0xFFFF_FFFF))
                return
            if not _fits32(src):
                raise AsmError(f"mov to memory of {src:#x}: not a sign-extended imm32")
            self._rm(b"\xc7", 0, dst, bits=64, imm=struct.pack("<i", src))
            return
        if isinstance(src, Reg):
            op = b"\x88" if bits == 8 else b"\x89"
            self._rm(op, src.num, dst, bits=bits, byte_regs=self._regs8(dst, src))
            return
        if isinstance(dst, Mem):
            raise AsmError("mov memory to memory")
        op = b"\x8a" if bits == 8 else b"\x8b"
        self._rm(op, dst.num, src, bits=bits, byte_regs=self._regs8(dst))

    def _mov_r32_imm(self, dst: Reg, imm: int) -> None:
        if dst.num & 8:
            self.code.append(0x41)
        self.code.append(0xB8 | (dst.num & 7))
        self.code += struct.pack("<I", imm)

    def movzx(self, dst: Reg, src: Reg | Mem) -> None:
        """Zero-extend an 8- or 16-bit source."""
        op = {8: b"\x0f\xb6", 16: b"\x0f\xb7"}[src.bits]
        self._rm(op, dst.num, src, bits=dst.bits, byte_regs=self._regs8(src))

    def movsx(self, dst: Reg, src: Reg | Mem) -> None:
        """Sign-extend an 8-, 16- or (to 64) 32-bit source (``movsxd``)."""
        if src.bits == 32:
            if dst.bits != 64:
                raise AsmError("movsxd needs a 64-bit destination")
            self._rm(b"\x63", dst.num, src, bits=64)
            return
        op = {8: b"\x0f\xbe", 16: b"\x0f\xbf"}[src.bits]
        self._rm(op, dst.num, src, bits=dst.bits, byte_regs=self._regs8(src))

    def lea(self, dst: Reg, src: Mem) -> None:
        """Load effective address (``src.bits`` is ignored)."""
        if dst.bits not in (32, 64):
            raise AsmError("lea needs a 32- or 64-bit destination")
        self._rm(b"\x8d", dst.num, src, bits=dst.bits)

    def push(self, r: Reg) -> None:
        if r.num & 8:
            self.code.append(0x41)
        self.code.append(0x50 | (r.num & 7))

    def pop(self, r: Reg) -> None:
        if r.num & 8:
            self.code.append(0x41)
        self.code.append(0x58 | (r.num & 7))

    # ---- arithmetic ----------------------------------------------------------------------------

    def alu(self, name: str, dst: Reg | Mem, src: Reg | Mem | int) -> None:
        """``add or adc sbb and sub xor cmp`` in any of their reg/mem/imm forms."""
        n = _ALU[name]
        bits = self._bits(dst, src)
        if isinstance(src, int):
            if bits == 8:
                self._rm(b"\x80", n, dst, bits=8, imm=struct.pack("<B", src & 0xFF),
                         byte_regs=self._regs8(dst))  # fmt: skip
            elif _fits8(src):
                self._rm(b"\x83", n, dst, bits=bits, imm=struct.pack("<b", src))
            elif bits == 16:
                self._rm(b"\x81", n, dst, bits=16, imm=struct.pack("<H", src & 0xFFFF))
            elif bits == 32:
                self._rm(b"\x81", n, dst, bits=32, imm=struct.pack("<I", src & 0xFFFF_FFFF))
            else:
                if not _fits32(src):
                    raise AsmError(f"{name} of {src:#x}: not a sign-extended imm32")
                self._rm(b"\x81", n, dst, bits=64, imm=struct.pack("<i", src))
            return
        if isinstance(src, Reg):
            self._rm(bytes([8 * n + (0 if bits == 8 else 1)]), src.num, dst, bits=bits,
                     byte_regs=self._regs8(dst, src))  # fmt: skip
            return
        if isinstance(dst, Mem):
            raise AsmError(f"{name} memory to memory")
        self._rm(bytes([8 * n + (2 if bits == 8 else 3)]), dst.num, src, bits=bits,
                 byte_regs=self._regs8(dst))  # fmt: skip

    def add(self, dst: Reg | Mem, src: Reg | Mem | int) -> None:
        self.alu("add", dst, src)

    def sub(self, dst: Reg | Mem, src: Reg | Mem | int) -> None:
        self.alu("sub", dst, src)

    def and_(self, dst: Reg | Mem, src: Reg | Mem | int) -> None:
        self.alu("and", dst, src)

    def or_(self, dst: Reg | Mem, src: Reg | Mem | int) -> None:
        self.alu("or", dst, src)

    def xor(self, dst: Reg | Mem, src: Reg | Mem | int) -> None:
        self.alu("xor", dst, src)

    def cmp(self, dst: Reg | Mem, src: Reg | Mem | int) -> None:
        self.alu("cmp", dst, src)

    def test(self, dst: Reg | Mem, src: Reg | int) -> None:
        bits = self._bits(dst, src)
        if isinstance(src, int):
            if bits == 8:
                self._rm(b"\xf6", 0, dst, bits=8, imm=struct.pack("<B", src & 0xFF),
                         byte_regs=self._regs8(dst))  # fmt: skip
            elif bits == 16:
                self._rm(b"\xf7", 0, dst, bits=16, imm=struct.pack("<H", src & 0xFFFF))
            else:
                if bits == 64 and not _fits32(src):
                    raise AsmError(f"test of {src:#x}: not a sign-extended imm32")
                self._rm(b"\xf7", 0, dst, bits=bits,
                         imm=struct.pack("<I", src & 0xFFFF_FFFF))  # fmt: skip
            return
        self._rm(b"\x84" if bits == 8 else b"\x85", src.num, dst, bits=bits,
                 byte_regs=self._regs8(dst, src))  # fmt: skip

    def shift(self, name: str, dst: Reg | Mem, count: int | Reg) -> None:
        """``rol ror shl shr sar`` by an immediate or by ``cl``."""
        n = _SHIFT[name]
        bits = dst.bits
        r8 = self._regs8(dst)
        eight = bits == 8
        if isinstance(count, Reg):
            if count.num != 1 or count.bits != 8:
                raise AsmError("variable shifts count in cl")
            self._rm(b"\xd2" if eight else b"\xd3", n, dst, bits=bits, byte_regs=r8)
        elif count == 1:
            self._rm(b"\xd0" if eight else b"\xd1", n, dst, bits=bits, byte_regs=r8)
        else:
            self._rm(b"\xc0" if eight else b"\xc1", n, dst, bits=bits,
                     imm=bytes([count & 0xFF]), byte_regs=r8)  # fmt: skip

    def shl(self, dst: Reg | Mem, count: int | Reg) -> None:
        self.shift("shl", dst, count)

    def shr(self, dst: Reg | Mem, count: int | Reg) -> None:
        self.shift("shr", dst, count)

    def sar(self, dst: Reg | Mem, count: int | Reg) -> None:
        self.shift("sar", dst, count)

    def imul(self, dst: Reg, src: Reg | Mem, imm: int | None = None) -> None:
        """Two-operand ``imul dst, src`` or three-operand ``imul dst, src, imm``."""
        bits = self._bits(dst, src)
        if imm is None:
            self._rm(b"\x0f\xaf", dst.num, src, bits=bits)
        elif _fits8(imm):
            self._rm(b"\x6b", dst.num, src, bits=bits, imm=struct.pack("<b", imm))
        elif bits == 16:
            self._rm(b"\x69", dst.num, src, bits=16, imm=struct.pack("<H", imm & 0xFFFF))
        else:
            if not _fits32(imm):
                raise AsmError(f"imul by {imm:#x}: not an imm32")
            self._rm(b"\x69", dst.num, src, bits=bits, imm=struct.pack("<i", imm))

    def unary(self, name: str, src: Reg | Mem) -> None:
        """``not neg`` in place; ``mul imul1 div idiv`` on ``rdx:rax`` (``edx:eax``)."""
        bits = src.bits
        self._rm(b"\xf6" if bits == 8 else b"\xf7", _UNARY[name], src, bits=bits,
                 byte_regs=self._regs8(src))  # fmt: skip

    def neg(self, src: Reg | Mem) -> None:
        self.unary("neg", src)

    def not_(self, src: Reg | Mem) -> None:
        self.unary("not", src)

    def mul(self, src: Reg | Mem) -> None:
        """Unsigned ``rdx:rax = rax * src``."""
        self.unary("mul", src)

    def imul1(self, src: Reg | Mem) -> None:
        """Signed ``rdx:rax = rax * src``."""
        self.unary("imul1", src)

    def div(self, src: Reg | Mem) -> None:
        self.unary("div", src)

    def idiv(self, src: Reg | Mem) -> None:
        self.unary("idiv", src)

    def cqo(self) -> None:
        """Sign-extend ``rax`` into ``rdx``."""
        self.code += b"\x48\x99"

    def cdq(self) -> None:
        """Sign-extend ``eax`` into ``edx``."""
        self.code.append(0x99)

    def setcc(self, cc: int, dst: Reg | Mem) -> None:
        if dst.bits != 8:
            raise AsmError("setcc writes a byte")
        self._rm(bytes([0x0F, 0x90 | cc]), 0, dst, bits=8, byte_regs=self._regs8(dst))

    def cmov(self, cc: int, dst: Reg, src: Reg | Mem) -> None:
        self._rm(bytes([0x0F, 0x40 | cc]), dst.num, src, bits=self._bits(dst, src))

    # ---- control flow --------------------------------------------------------------------------

    def label(self) -> Label:
        """A new unbound label."""
        return Label()

    def bind(self, lab: Label) -> None:
        """Bind ``lab`` here and resolve the jumps emitted to it so far."""
        if lab.pos is not None:
            raise AsmError("label bound twice")
        lab.pos = self.pos
        for at, size in lab.fixups:
            self._put_rel(at, size, lab.pos)
        lab.fixups.clear()

    def _put_rel(self, at: int, size: int, target: int) -> None:
        rel = target - (at + size)
        if size == 1:
            if not _fits8(rel):
                raise AsmError(f"short jump of {rel} bytes")
            self.code[at] = rel & 0xFF
        else:
            self.code[at : at + 4] = struct.pack("<i", rel)

    def _rel(self, target: Label | int, size: int) -> int:
        """Append a ``size``-byte relative field to ``target`` (a label, or a host address);
        its offset."""
        at = self.pos
        self.code += bytes(size)
        if isinstance(target, Label):
            if target.pos is None:
                target.fixups.append((at, size))
            else:
                self._put_rel(at, size, target.pos)
        else:
            rel = target - (self.base + at + size)
            if not _fits32(rel):
                raise AsmError(f"target {target:#x} out of rel32 range")
            self.code[at : at + 4] = struct.pack("<i", rel)
        return at

    def jmp(self, target: Label | int, *, short: bool = False) -> int:
        """``jmp rel32`` (``rel8`` if ``short``, labels only); the offset of the rel field."""
        if short:
            self.code.append(0xEB)
            return self._rel(target, 1)
        self.code.append(0xE9)
        return self._rel(target, 4)

    def jcc(self, cc: int, target: Label | int, *, short: bool = False) -> int:
        """``jcc rel32`` (``rel8`` if ``short``); the offset of the rel field."""
        if short:
            self.code.append(0x70 | cc)
            return self._rel(target, 1)
        self.code += bytes([0x0F, 0x80 | cc])
        return self._rel(target, 4)

    def call(self, target: Label | int) -> int:
        """``call rel32``; the offset of the rel field."""
        self.code.append(0xE8)
        return self._rel(target, 4)

    def jmp_ind(self, src: Reg | Mem) -> None:
        """``jmp r/m64``."""
        self._rm(b"\xff", 4, src, bits=64, no_w=True)

    def call_ind(self, src: Reg | Mem) -> None:
        """``call r/m64``."""
        self._rm(b"\xff", 2, src, bits=64, no_w=True)

    def ret(self) -> None:
        self.code.append(0xC3)

    def nop(self) -> None:
        self.code.append(0x90)

    def ud2(self) -> None:
        self.code += b"\x0f\x0b"
