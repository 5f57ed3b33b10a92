"""The ``interp`` tier: fetch, decode and execute one instruction at a time. The reference
semantics every other tier is compared with."""

from __future__ import annotations

from vmassist.formats.mmu import AccessKind

from .isa import COUNTERS, ENDS_BLOCK, LOADS, MASK64, STORES, IllegalInstruction, Insn, decode
from .linux import SIGBUS, SIGILL, SIGSEGV, SIGTRAP, Cpu, GuestSignal, Linux
from .memory import AddressSpace, SegFault

__all__ = ["Interpreter", "execute", "divs", "rems", "divw", "remw", "divuw", "remuw"]

_SIGN = 1 << 63


def _s(v: int) -> int:
    return v - (1 << 64) if v & _SIGN else v


def _w(v: int) -> int:
    """Sign-extend the low 32 bits to 64 (unsigned representation)."""
    v &= 0xFFFF_FFFF
    return v | 0xFFFF_FFFF_0000_0000 if v & 0x8000_0000 else v


# Division, shared with the block tier (which calls these from its generated code): operands
# and results are unsigned 64-bit patterns. Signed division rounds toward zero; by zero it gives
# all ones (the remainder: the dividend); the overflow INT_MIN / -1 needs no case of its own,
# as the quotient 2**63 masked to 64 bits is INT_MIN again (and the remainder is 0).


def divs(a: int, b: int) -> int:
    if b == 0:
        return MASK64
    a, b = _s(a), _s(b)
    q = abs(a) // abs(b)
    return (-q if (a < 0) != (b < 0) else q) & MASK64


def rems(a: int, b: int) -> int:
    if b == 0:
        return a
    a, b = _s(a), _s(b)
    r = abs(a) % abs(b)
    return (-r if a < 0 else r) & MASK64


def divw(a: int, b: int) -> int:
    return _w(divs(_w(a), _w(b)))


def remw(a: int, b: int) -> int:
    return _w(rems(_w(a), _w(b)))


def divuw(a: int, b: int) -> int:
    b &= 0xFFFF_FFFF
    return _w((a & 0xFFFF_FFFF) // b) if b else MASK64


def remuw(a: int, b: int) -> int:
    b &= 0xFFFF_FFFF
    return _w((a & 0xFFFF_FFFF) % b) if b else _w(a)


_ALU = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b,
    "sll": lambda a, b: a << (b & 63), "srl": lambda a, b: a >> (b & 63),
    "sra": lambda a, b: _s(a) >> (b & 63),
    "slt": lambda a, b: int(_s(a) < _s(b)), "sltu": lambda a, b: int(a < b),
    "xor": lambda a, b: a ^ b, "or": lambda a, b: a | b, "and": lambda a, b: a & b,
    "mul": lambda a, b: a * b,
    "mulh": lambda a, b: (_s(a) * _s(b)) >> 64,
    "mulhsu": lambda a, b: (_s(a) * b) >> 64,
    "mulhu": lambda a, b: (a * b) >> 64,
    "div": divs, "divu": lambda a, b: a // b if b else MASK64, "rem": rems,
    "remu": lambda a, b: a % b if b else a,
}  # fmt: skip
_IMM = {"addi": "add", "slti": "slt", "sltiu": "sltu", "xori": "xor", "ori": "or",
        "andi": "and", "slli": "sll", "srli": "srl", "srai": "sra"}  # fmt: skip


def _s32(v: int) -> int:
    v &= 0xFFFF_FFFF
    return v - (1 << 32) if v & 0x8000_0000 else v


_ALUW = {
    "addw": lambda a, b: a + b, "subw": lambda a, b: a - b,
    "sllw": lambda a, b: a << (b & 31), "srlw": lambda a, b: (a & 0xFFFF_FFFF) >> (b & 31),
    "sraw": lambda a, b: _s32(a) >> (b & 31), "mulw": lambda a, b: a * b,
    "divw": divw, "divuw": divuw, "remw": remw, "remuw": remuw,
}  # fmt: skip
_IMMW = {"addiw": "addw", "slliw": "sllw", "srliw": "srlw", "sraiw": "sraw"}

_AMO = {
    "amoswap": lambda m, r: r, "amoadd": lambda m, r: m + r, "amoxor": lambda m, r: m ^ r,
    "amoand": lambda m, r: m & r, "amoor": lambda m, r: m | r,
}  # fmt: skip
_BR = {
    "beq": lambda a, b: a == b, "bne": lambda a, b: a != b,
    "blt": lambda a, b: _s(a) < _s(b), "bge": lambda a, b: _s(a) >= _s(b),
    "bltu": lambda a, b: a < b, "bgeu": lambda a, b: a >= b,
}  # fmt: skip


def _amo_minmax(name: str, m: int, r: int, bits: int) -> int:
    def sgn(v: int) -> int:
        v &= (1 << bits) - 1
        return v - (1 << bits) if v >> (bits - 1) else v

    if name in ("amomin", "amomax"):
        a, b = sgn(m), sgn(r)
    else:
        a, b = m & ((1 << bits) - 1), r & ((1 << bits) - 1)
    return m if (a < b) == (name in ("amomin", "amominu")) or a == b else r


def execute(i: Insn, cpu: Cpu, mem: AddressSpace, kernel: Linux) -> bool:
    """Execute ``i`` at ``cpu.pc``; True when code may have changed under the caller (a store to
    translated code, fence.i). Raises :class:`GuestSignal` for faults, ``GuestExit`` for exit."""
    x, op, pc = cpu.x, i.op, cpu.pc
    nxt = pc + i.size
    changed = False
    rd = None
    val = 0
    if op in _ALU:
        val = _ALU[op](x[i.rs1], x[i.rs2])
        rd = i.rd
    elif op in _IMM:
        val = _ALU[_IMM[op]](x[i.rs1], i.imm & MASK64)
        rd = i.rd
    elif op in _ALUW:
        val = _w(_ALUW[op](x[i.rs1], x[i.rs2]))
        rd = i.rd
    elif op in _IMMW:
        val = _w(_ALUW[_IMMW[op]](x[i.rs1], i.imm & MASK64))
        rd = i.rd
    elif op in LOADS:
        size, signed = LOADS[op]
        val = mem.load((x[i.rs1] + i.imm) & MASK64, size, signed)
        rd = i.rd
    elif op in STORES:
        changed = mem.store((x[i.rs1] + i.imm) & MASK64, STORES[op], x[i.rs2])
    elif op in _BR:
        if _BR[op](x[i.rs1], x[i.rs2]):
            nxt = pc + i.imm
    elif op == "lui":
        val, rd = i.imm, i.rd
    elif op == "auipc":
        val, rd = pc + i.imm, i.rd
    elif op == "jal":
        val, rd = nxt, i.rd
        nxt = pc + i.imm
    elif op == "jalr":
        target = (x[i.rs1] + i.imm) & MASK64 & ~1
        val, rd = nxt, i.rd
        nxt = target
    elif op[:2] in ("lr", "sc") or op.startswith("amo"):
        name, width = op.split(".")
        size = 4 if width == "w" else 8
        addr = x[i.rs1]
        if addr & (size - 1):
            raise GuestSignal(SIGBUS, pc, f"misaligned {op} at {addr:#x}")
        if name == "lr":
            val, rd = mem.load(addr, size, True), i.rd
            cpu.resv = addr
        elif name == "sc":
            ok = cpu.resv == addr
            cpu.resv = None
            if ok:
                changed = mem.store(addr, size, x[i.rs2])
            val, rd = int(not ok), i.rd
        else:
            old = mem.load(addr, size, True)
            r = x[i.rs2]
            new = _AMO[name](old, r) if name in _AMO else _amo_minmax(name, old, r, 8 * size)
            changed = mem.store(addr, size, new)
            val, rd = old, i.rd
    elif op.startswith("csr"):
        name = COUNTERS.get(i.imm)
        writes = op in ("csrrw", "csrrwi") or i.rs1 != 0
        if name is None or writes:
            raise GuestSignal(SIGILL, pc, f"{op} of CSR {i.imm:#x}")
        val, rd = cpu.counter(name), i.rd
    elif op == "ecall":
        cpu.pc = pc
        kernel.syscall(cpu, mem)
    elif op == "ebreak":
        raise GuestSignal(SIGTRAP, pc, "ebreak")
    elif op == "fence":
        pass
    elif op == "fence.i":
        changed = True
    else:  # pragma: no cover - decode() only returns the ops above
        raise AssertionError(op)
    if rd:
        x[rd] = val & MASK64
    cpu.pc = nxt & MASK64
    cpu.instret += 1
    return changed


class Interpreter:
    """Runs the guest one instruction at a time.

    Parameters
    ----------
    cpu, mem, kernel
        The guest's state, its address space, its Linux.
    """

    name = "interp"

    def __init__(self, cpu: Cpu, mem: AddressSpace, kernel: Linux) -> None:
        self.cpu, self.mem, self.kernel = cpu, mem, kernel

    def step(self) -> Insn:
        """Execute one instruction; the decoded instruction."""
        cpu = self.cpu
        try:
            i = decode(self.mem.fetch(cpu.pc))
            execute(i, cpu, self.mem, self.kernel)
        except SegFault as e:
            kind = "fetch" if e.kind == AccessKind.FETCH else "access"
            raise GuestSignal(SIGSEGV, cpu.pc, f"{kind} fault: {e}") from None
        except IllegalInstruction as e:
            raise GuestSignal(SIGILL, cpu.pc, str(e)) from None
        return i

    def step_block(self) -> int:
        """Execute up to and including the next control transfer, ecall or fence.i; the number of
        instructions executed."""
        n = 0
        while True:
            n += 1
            if self.step().op in ENDS_BLOCK:
                return n

    def run(self, limit: int | None = None) -> None:
        """Run until the guest exits (``GuestExit``) or dies (:class:`GuestSignal`), or until
        ``limit`` instructions have retired (then return)."""
        cpu = self.cpu
        end = None if limit is None else cpu.instret + limit
        while end is None or cpu.instret < end:
            self.step()
