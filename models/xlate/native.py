"""The ``native`` tier: guest basic blocks translated to x86-64 machine code and run in place.

Each guest block (up to a branch, ``jal``, ``jalr``, ``ecall``, ``ebreak``, ``fence.i``,
:data:`MAX_INSNS` instructions or the end of its page) becomes host code, assembled with
:mod:`models.xlate.x86` into an executable buffer and entered through ctypes with a pointer to a
:class:`Context`: the guest registers, the native softmmu TLBs and the jump cache.

Host registers while guest code runs:

``rbx``
    The context, biased by :data:`BIAS` so every ``x[i]`` is a ``disp8`` away.
``r12``
    ``instret`` at the start of the current block (each block adds its length at its exits).
``r13``
    The instruction budget: a block is only entered while ``r12 < r13``.
``rax rcx rdx rsi``
    Scratch.

Leaving native code: every exit is a ``call`` to one trampoline that saves the return address
(and ``rax``, the guest address of a memory access) and returns to Python; the return address
identifies the exit in :attr:`NativeTranslator._exits` (its kind, guest pc, the instruction's index
in its block, where to resume). Exits:

``budget``
    A block entry found ``r12 >= r13`` (``run(limit)`` is done, or ``step_block``'s one block).
``static``
    A direct jump or branch to a block not yet translated: Python translates it and patches the
    ``jmp``/``jcc rel32`` to go straight there next time (chaining).
``dynamic``
    ``jalr`` missed the jump cache (guest pc -> host code, looked up inline): Python fills it.
``slow``
    A load, store, LR/SC or AMO missed the native TLB, crosses a page, is a misaligned atomic, or
    writes a page holding translated code (such pages are never in the write TLB, as for
    :attr:`AddressSpace.tlb_w`). If the softmmu TLB (``mem.tlb_r``/``mem.tlb_w``) knows the page,
    Python copies its entry in and native code runs the instruction again. Otherwise Python runs
    that one instruction with the interpreter (precise pc and instret; faults are raised exactly
    as the interpreter does: the guest state is synced first), fills the native TLB from the
    softmmu's and resumes native code right after the instruction.
``helper``
    ``ecall``, ``ebreak``, ``fence.i``, CSR writes and unknown CSRs: likewise run by the
    interpreter. (Counter reads are inline: ``instret`` is ``r12`` + the instruction's index.)

A store to translated code (``mem.on_code_write``) or ``fence.i`` flushes the whole code cache
(blocks, chains, jump cache) and execution resumes at the next guest instruction, re-translated.
"""

from __future__ import annotations

import bisect
import ctypes
import mmap
import struct
from dataclasses import dataclass, field

from .interp import Interpreter
from .isa import (
    BRANCHES,
    COUNTERS,
    ENDS_BLOCK,
    LOADS,
    MASK64,
    STORES,
    IllegalInstruction,
    Insn,
    decode,
)
from .linux import Cpu, Linux
from .memory import PAGE_BYTES, AddressSpace, SegFault
from .x86 import (
    CC,
    CL,
    CX,
    EAX,
    ECX,
    EDX,
    R12,
    R13,
    RAX,
    RBX,
    RCX,
    RDI,
    RDX,
    RSI,
    Asm,
    Label,
    Mem,
    Reg,
    byte,
    dword,
    qword,
    word,
)

__all__ = ["NativeTranslator", "Context", "Block", "MAX_INSNS", "TLB_ENTRIES", "JC_ENTRIES"]

MAX_INSNS = 64
"""Longest block, in guest instructions."""
TLB_ENTRIES = 1 << 16
"""Entries of each direct-mapped native TLB (read, write), indexed by guest page number: as many
as the default guest RAM has pages, so big working sets do not thrash (as QEMU's TLBs grow)."""
JC_ENTRIES = 4096
"""Entries of the jump cache (guest pc -> host code of its block), indexed by ``pc >> 1``."""
CODE_BYTES = 16 << 20
"""The executable buffer; full, it is flushed."""
_BLOCK_ROOM = 64 << 10
"""Free space a translation needs (a generous bound on one block's code)."""
_EMPTY = 1
"""Tag of an empty TLB / jump-cache entry: never a page address nor an instruction address."""
_FOREVER = 1 << 63


class TlbEntry(ctypes.Structure):
    """One native TLB entry: the guest page address and ``host address - guest address``."""

    _fields_ = [("tag", ctypes.c_uint64), ("addend", ctypes.c_uint64)]


class JcEntry(ctypes.Structure):
    """One jump-cache entry: a guest pc and the host address of its block."""

    _fields_ = [("pc", ctypes.c_uint64), ("host", ctypes.c_uint64)]


class Context(ctypes.Structure):
    """What native code reads and writes (through ``rbx``).

    Members
    -------
    pc : int
        The guest pc, written by native code on a ``dynamic`` exit only.
    instret : int
        ``r12`` in and out (see the module docstring).
    end : int
        The instruction budget (``r13``).
    entry : int
        Host address native code starts at.
    exit_host : int
        Return address of the exit stub that left native code.
    addr : int
        ``rax`` at the exit: the guest address of a ``slow`` access.
    ram : int
        Host address of ``mem.ram`` (for debugging: the TLB addends include it).
    resv : int
        The LR/SC reservation (:attr:`Cpu.resv`; :data:`_EMPTY` for none).
    x : array of 32 uint64
        The guest registers (``x[0]`` is 0 and never written).
    tlb_r, tlb_w : arrays of :class:`TlbEntry`
    jcache : array of :class:`JcEntry`
    """

    _fields_ = [
        ("pc", ctypes.c_uint64),
        ("instret", ctypes.c_uint64),
        ("end", ctypes.c_uint64),
        ("entry", ctypes.c_uint64),
        ("exit_host", ctypes.c_uint64),
        ("addr", ctypes.c_uint64),
        ("ram", ctypes.c_uint64),
        ("resv", ctypes.c_uint64),
        ("x", ctypes.c_uint64 * 32),
        ("tlb_r", TlbEntry * TLB_ENTRIES),
        ("tlb_w", TlbEntry * TLB_ENTRIES),
        ("jcache", JcEntry * JC_ENTRIES),
    ]


BIAS = Context.x.offset + 128
"""``rbx`` = context address + BIAS: ``x[i]`` is at ``rbx + 8*i - 128``."""


def _field(name: str) -> int:
    return getattr(Context, name).offset - BIAS


_PC, _INSTRET, _END, _ENTRY, _EXIT, _ADDR, _RESV = (
    _field(n) for n in ("pc", "instret", "end", "entry", "exit_host", "addr", "resv")
)
_TLB_R, _TLB_W, _JC = _field("tlb_r"), _field("tlb_w"), _field("jcache")


def X(r: int) -> Mem:
    """Guest register ``r`` in the context (64 bits)."""
    return qword(RBX, 8 * r - 128)


def XW(r: int) -> Mem:
    """The low 32 bits of guest register ``r``."""
    return dword(RBX, 8 * r - 128)


# Exit kinds.
BUDGET, STATIC, DYNAMIC, SLOW, HELPER = range(5)
KIND_NAMES = ("budget", "static", "dynamic", "slow", "helper")


@dataclass(frozen=True)
class Exit:
    """What one exit stub means.

    Members
    -------
    kind : int
        :data:`BUDGET`, :data:`STATIC`, :data:`DYNAMIC`, :data:`SLOW` or :data:`HELPER`.
    pc : int
        The guest pc to continue at (``budget``, ``static``), or of the instruction Python must
        run (``slow``, ``helper``).
    idx : int
        That instruction's index in its block (instret = ``r12 + idx`` before it).
    resume : int
        Host address to continue at after Python ran the instruction (0: the block ends there).
    site : int
        Host address of the ``rel32`` to patch when the target is translated (``static``).
    retry : int
        Host address of the instruction's own code (``slow``): where to run it again once its
        TLB entries are filled, when the softmmu already knows the page.
    op : str
        The instruction (``slow``).
    """

    kind: int
    pc: int
    idx: int = 0
    resume: int = 0
    site: int = 0
    retry: int = 0
    op: str = ""


@dataclass
class Block:
    """A translated block.

    Members
    -------
    pc : int
        Its first guest instruction.
    entry : int
        Host address of its code (the budget check first).
    body : int
        Host address just after the budget check (``step_block`` enters here).
    end : int
        Host address after its last byte (exit stubs included).
    ninsns : int
    pcmap : list of (int, int, int)
        ``(host address, guest pc, index)`` where each guest instruction's code starts.
    """

    pc: int
    entry: int
    body: int
    end: int
    ninsns: int
    pcmap: list[tuple[int, int, int]] = field(default_factory=list)

    def guest_at(self, host: int) -> tuple[int, int]:
        """``(guest pc, index)`` of the instruction whose code holds host address ``host``."""
        k = bisect.bisect_right(self.pcmap, (host, MASK64, 0)) - 1
        if k < 0 or host >= self.end:
            raise ValueError(f"host address {host:#x} is not in the block at {self.pc:#x}")
        return self.pcmap[k][1], self.pcmap[k][2]


_BCC = {"beq": CC.E, "bne": CC.NE, "blt": CC.L, "bge": CC.GE, "bltu": CC.B, "bgeu": CC.AE}
_ALU3 = {"add": "add", "sub": "sub", "and": "and", "or": "or", "xor": "xor"}
_ALUI = {"addi": "add", "andi": "and", "ori": "or", "xori": "xor"}
_SHIFTS = {"sll": "shl", "srl": "shr", "sra": "sar", "sllw": "shl", "srlw": "shr", "sraw": "sar",
           "slli": "shl", "srli": "shr", "srai": "sar", "slliw": "shl", "srliw": "shr",
           "sraiw": "sar"}  # fmt: skip
_DIVS = {"div", "divu", "rem", "remu", "divw", "divuw", "remw", "remuw"}
_AMO_ALU = {"amoadd": "add", "amoxor": "xor", "amoand": "and", "amoor": "or"}
_AMO_PICK_OLD = {"amomin": CC.L, "amomax": CC.G, "amominu": CC.B, "amomaxu": CC.A}


def access_size(op: str) -> int:
    """Bytes a load, store, LR/SC or AMO accesses."""
    if op in LOADS:
        return LOADS[op][0]
    if op in STORES:
        return STORES[op]
    return 4 if op.endswith(".w") else 8


def _mem_w(bits: int, base: Reg) -> Mem:
    return {8: byte, 16: word, 32: dword, 64: qword}[bits](base)


class _Emitter:
    """Assembles one block; collects its exit stubs."""

    def __init__(self, tr: NativeTranslator, base: int, pc0: int) -> None:
        self.tr = tr
        self.a = Asm(base)
        self.pc0 = pc0
        self.stubs: list[tuple[Label, Exit]] = []
        self.exits: dict[int, Exit] = {}  # inline exits: return address -> meaning
        self.entry = self.a.label()

    def stub(self, ex: Exit) -> Label:
        """A label for an out-of-line exit stub (emitted by :meth:`finish`)."""
        lab = self.a.label()
        self.stubs.append((lab, ex))
        return lab

    def inline_exit(self, ex: Exit, resumable: bool) -> None:
        """Leave for Python right here; resume (if ``resumable``) just after."""
        a = self.a
        a.call(self.tr._t_exit)
        ret = a.addr
        self.exits[ret] = Exit(ex.kind, ex.pc, ex.idx, ret if resumable else 0)

    def goto(self, target: int, cc: int | None = None) -> None:
        """``jmp``/``jcc`` to guest ``target``: chained if translated, else to a stub."""
        a = self.a
        if target == self.pc0:
            if cc is None:
                a.jmp(self.entry)
            else:
                a.jcc(cc, self.entry)
            return
        blk = self.tr._blocks.get(target)
        if blk is not None:
            if cc is None:
                a.jmp(blk.entry)
            else:
                a.jcc(cc, blk.entry)
            return
        lab = a.label()
        at = a.jmp(lab) if cc is None else a.jcc(cc, lab)
        self.stubs.append((lab, Exit(STATIC, target, site=a.base + at)))

    def finish(self) -> None:
        a = self.a
        for lab, ex in self.stubs:
            a.bind(lab)
            a.call(self.tr._t_exit)
            self.exits[a.addr] = ex

    # ---- one instruction -----------------------------------------------------------------------

    def insn(self, i: Insn, pc: int, idx: int, n: int) -> None:
        a, op, rd, rs1, rs2, imm = self.a, i.op, i.rd, i.rs1, i.rs2, i.imm
        nxt = (pc + i.size) & MASK64
        if op in _ALU3:
            if rd:
                a.mov(RAX, X(rs1))
                a.alu(_ALU3[op], RAX, X(rs2))
                a.mov(X(rd), RAX)
        elif op in _ALUI:
            if not rd:
                return
            if rs1 == 0:
                v = {"add": imm, "and": 0, "or": imm, "xor": imm}[_ALUI[op]]
                a.mov(X(rd), v)
                return
            a.mov(RAX, X(rs1))
            if imm or op == "andi":
                a.alu(_ALUI[op], RAX, imm)
            a.mov(X(rd), RAX)
        elif op in ("addw", "subw", "mulw", "addiw"):
            if rd:
                a.mov(EAX, XW(rs1))
                if op == "mulw":
                    a.imul(EAX, XW(rs2))
                elif op == "addiw":
                    if imm:
                        a.add(EAX, imm)
                else:
                    a.alu(op[:3], EAX, XW(rs2))
                a.movsx(RAX, EAX)
                a.mov(X(rd), RAX)
        elif op in _SHIFTS:
            if not rd:
                return
            w = op.endswith("w")
            r = EAX if w else RAX
            a.mov(r, XW(rs1) if w else X(rs1))
            if op[-1] == "i" or op[-2:] == "iw":
                if imm:
                    a.shift(_SHIFTS[op], r, imm)
            else:
                a.mov(ECX, XW(rs2))
                a.shift(_SHIFTS[op], r, CL)
            if w:
                a.movsx(RAX, EAX)
            a.mov(X(rd), RAX)
        elif op in ("slt", "sltu", "slti", "sltiu"):
            if rd:
                a.xor(ECX, ECX)
                a.mov(RAX, X(rs1))
                a.cmp(RAX, X(rs2) if op in ("slt", "sltu") else imm)
                a.setcc(CC.B if op in ("sltu", "sltiu") else CC.L, CL)
                a.mov(X(rd), RCX)
        elif op == "mul":
            if rd:
                a.mov(RAX, X(rs1))
                a.imul(RAX, X(rs2))
                a.mov(X(rd), RAX)
        elif op in ("mulh", "mulhu", "mulhsu"):
            if rd:
                a.mov(RAX, X(rs1))
                if op == "mulh":
                    a.imul1(X(rs2))
                else:
                    a.mul(X(rs2))
                if op == "mulhsu":  # high(a_s * b_u) = high(a_u * b_u) - (b if a < 0)
                    a.mov(RCX, X(rs1))
                    a.sar(RCX, 63)
                    a.and_(RCX, X(rs2))
                    a.sub(RDX, RCX)
                a.mov(X(rd), RDX)
        elif op in _DIVS:
            if rd:
                self.divide(op, rd, rs1, rs2)
        elif op == "lui":
            if rd:
                a.mov(X(rd), imm)
        elif op == "auipc":
            if rd:
                self.set_const(rd, (pc + imm) & MASK64)
        elif op in LOADS or op in STORES:
            self.access(i, pc, idx)
        elif op in BRANCHES:
            a.add(R12, n)
            a.mov(RAX, X(rs1))
            a.cmp(RAX, X(rs2))
            self.goto((pc + imm) & MASK64, _BCC[op])
            self.goto(nxt)
        elif op == "jal":
            if rd:
                self.set_const(rd, nxt)
            a.add(R12, n)
            self.goto((pc + imm) & MASK64)
        elif op == "jalr":
            a.mov(RAX, X(rs1))
            if imm:
                a.add(RAX, imm)
            a.and_(RAX, -2)
            if rd:
                self.set_const(rd, nxt)
            a.add(R12, n)
            a.mov(EDX, EAX)
            a.shl(EDX, 3)
            a.and_(EDX, (JC_ENTRIES - 1) << 4)
            a.cmp(RAX, qword(RBX, _JC, RDX))
            miss = a.label()
            a.jcc(CC.NE, miss, short=True)
            a.jmp_ind(qword(RBX, _JC + 8, RDX))
            a.bind(miss)
            a.mov(qword(RBX, _PC), RAX)
            self.inline_exit(Exit(DYNAMIC, 0), False)
        elif op == "fence":
            pass
        elif op.startswith("csr") and self.counter_read(i):
            if rd:
                a.lea(RAX, Mem(R12, disp=idx))  # instret before this instruction
                if COUNTERS[imm] == "time":
                    a.xor(EDX, EDX)
                    a.mov(ECX, 100)
                    a.div(RCX)
                a.mov(X(rd), RAX)
        elif op.startswith(("amo", "lr.", "sc.")):
            self.atomic(i, pc, idx)
        else:  # ecall, ebreak, fence.i, CSR writes and others: the interpreter runs them
            self.inline_exit(Exit(HELPER, pc, idx), op not in ENDS_BLOCK)

    @staticmethod
    def counter_read(i: Insn) -> bool:
        """A read of ``cycle``, ``time`` or ``instret`` with no write: inline."""
        return i.imm in COUNTERS and i.op not in ("csrrw", "csrrwi") and i.rs1 == 0

    def set_const(self, rd: int, v: int) -> None:
        a = self.a
        s = v - (1 << 64) if v >> 63 else v
        if -(1 << 31) <= s < (1 << 31):
            a.mov(X(rd), s)
        else:
            a.mov(RAX, v)
            a.mov(X(rd), RAX)

    def divide(self, op: str, rd: int, rs1: int, rs2: int) -> None:
        """RISC-V division: no trap; x / 0 = -1, x % 0 = x, MIN / -1 = MIN, MIN % -1 = 0 (checked
        before the x86 ``div``, which would raise #DE)."""
        a = self.a
        w = op.endswith("w")
        acc, cnt, hi = (EAX, ECX, EDX) if w else (RAX, RCX, RDX)
        rem = op.startswith("rem")
        signed = op in ("div", "rem", "divw", "remw")
        a.mov(acc, XW(rs1) if w else X(rs1))
        a.mov(cnt, XW(rs2) if w else X(rs2))
        zero, done = a.label(), a.label()
        a.test(cnt, cnt)
        a.jcc(CC.E, zero, short=True)
        if signed:
            do = a.label()
            a.cmp(cnt, -1)
            a.jcc(CC.NE, do, short=True)
            if rem:
                a.xor(EDX, EDX)
            else:
                a.neg(acc)  # wraps: MIN / -1 = MIN
            a.jmp(done, short=True)
            a.bind(do)
            if w:
                a.cdq()
            else:
                a.cqo()
            a.idiv(cnt)
        else:
            a.xor(EDX, EDX)
            a.div(cnt)
        a.jmp(done, short=True)
        a.bind(zero)
        if rem:
            a.mov(hi, acc)
        else:
            a.mov(acc, -1)
        a.bind(done)
        res = hi if rem else acc
        if w:
            a.movsx(RAX, res)
            res = RAX
        a.mov(X(rd), res)

    def atomic(self, i: Insn, pc: int, idx: int) -> None:
        """LR/SC and AMOs, inline when aligned and both TLBs hit (the interpreter's order: an
        AMO loads, then stores; SC only touches memory when the reservation matches); anything
        else (SIGBUS, a miss, a code page) leaves for Python."""
        a = self.a
        retry = a.addr
        name, width = i.op.split(".")
        w = width == "w"
        size = 4 if w else 8
        slow = a.label()
        a.mov(RAX, X(i.rs1))
        a.test(EAX, size - 1)
        a.jcc(CC.NE, slow)
        a.mov(EDX, EAX)
        a.shr(EDX, 8)
        a.and_(EDX, (TLB_ENTRIES - 1) << 4)
        a.mov(RCX, RAX)
        a.and_(RCX, -PAGE_BYTES)
        if name != "sc":
            a.cmp(RCX, qword(RBX, _TLB_R, RDX))
            a.jcc(CC.NE, slow)
        if name != "lr":
            a.cmp(RCX, qword(RBX, _TLB_W, RDX))
            a.jcc(CC.NE, slow)
        a.mov(RSI, RAX)  # the guest address
        a.add(RAX, qword(RBX, (_TLB_R if name == "lr" else _TLB_W) + 8, RDX))
        val = _mem_w(8 * size, RAX)
        if name == "sc":
            fail, done = a.label(), a.label()
            a.cmp(RSI, qword(RBX, _RESV))
            a.mov(qword(RBX, _RESV), _EMPTY)
            a.jcc(CC.NE, fail, short=True)
            a.mov(RCX, X(i.rs2))
            a.mov(val, ECX if w else RCX)
            a.xor(ECX, ECX)
            a.jmp(done, short=True)
            a.bind(fail)
            a.mov(ECX, 1)
            a.bind(done)
            if i.rd:
                a.mov(X(i.rd), RCX)
        else:
            if w:
                a.movsx(RDX, val)
            else:
                a.mov(RDX, val)
            if name == "lr":
                a.mov(qword(RBX, _RESV), RSI)
            else:
                a.mov(RCX, X(i.rs2))
                if name in _AMO_ALU:
                    a.alu(_AMO_ALU[name], RCX, RDX)
                elif name in _AMO_PICK_OLD:
                    if w:
                        a.cmp(EDX, ECX)
                        a.cmov(_AMO_PICK_OLD[name], ECX, EDX)
                    else:
                        a.cmp(RDX, RCX)
                        a.cmov(_AMO_PICK_OLD[name], RCX, RDX)
                a.mov(val, ECX if w else RCX)
            if i.rd:
                a.mov(X(i.rd), RDX)
        self.stubs.append((slow, Exit(SLOW, pc, idx, a.addr, retry=retry, op=i.op)))

    def access(self, i: Insn, pc: int, idx: int) -> None:
        """Inline TLB lookup and host access; a miss or page crossing leaves for Python."""
        a = self.a
        retry = a.addr
        load = i.op in LOADS
        size = LOADS[i.op][0] if load else STORES[i.op]
        tlb = _TLB_R if load else _TLB_W
        a.mov(RAX, X(i.rs1))
        if i.imm:
            a.add(RAX, i.imm)
        if size > 1:  # the page of the last byte must be the entry's: crossing misses
            a.lea(RCX, Mem(RAX, disp=size - 1))
        else:
            a.mov(RCX, RAX)
        a.mov(EDX, EAX)
        a.shr(EDX, 8)
        a.and_(EDX, (TLB_ENTRIES - 1) << 4)
        a.and_(RCX, -PAGE_BYTES)
        a.cmp(RCX, qword(RBX, tlb, RDX))
        slow = a.label()
        a.jcc(CC.NE, slow)
        a.add(RAX, qword(RBX, tlb + 8, RDX))
        if load:
            signed = LOADS[i.op][1]
            if i.rd:
                src = _mem_w(8 * size, RAX)
                if size == 8:
                    a.mov(RCX, src)
                elif signed:
                    a.movsx(RCX, src)
                elif size == 4:
                    a.mov(ECX, src)
                else:
                    a.movzx(ECX, src)
                a.mov(X(i.rd), RCX)
        else:
            a.mov(RCX, X(i.rs2))
            val = {1: CL, 2: CX, 4: ECX, 8: RCX}[size]
            a.mov(_mem_w(8 * size, RAX), val)
        self.stubs.append((slow, Exit(SLOW, pc, idx, a.addr, retry=retry, op=i.op)))


class NativeTranslator:
    """The ``native`` tier (see the module docstring).

    Parameters
    ----------
    cpu, mem, kernel
        The guest's state, its address space, its Linux.

    Members
    -------
    stats : dict of str to int
        Exits by kind; ``slow`` exits served by a native TLB refill alone; blocks translated,
        code-cache flushes, chains patched.
    """

    name = "native"

    @property
    def translated(self) -> int:
        """Blocks translated (as the block tier counts them)."""
        return self.stats["blocks"]

    @property
    def invalidations(self) -> int:
        """Times translated code was dropped (self-modifying code, fence.i, a full buffer)."""
        return self.stats["flushes"]

    def __init__(self, cpu: Cpu, mem: AddressSpace, kernel: Linux) -> None:
        self.cpu, self.mem, self.kernel = cpu, mem, kernel
        self._interp = Interpreter(cpu, mem, kernel)
        self.ctx = Context()
        self._ctx_addr = ctypes.addressof(self.ctx)
        self._ram_ref = ctypes.c_char.from_buffer(mem.ram)  # pins mem.ram while we point into it
        self._ram = ctypes.addressof(self._ram_ref)
        self.ctx.ram = self._ram
        empty = struct.pack("<QQ", _EMPTY, 0) * TLB_ENTRIES
        for t in (self.ctx.tlb_r, self.ctx.tlb_w):
            ctypes.memmove(ctypes.addressof(t), empty, len(empty))
        self._size = CODE_BYTES
        self._buf = mmap.mmap(
            -1, self._size, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
        )
        self._buf_ref = ctypes.c_char.from_buffer(self._buf)
        self.code_base = ctypes.addressof(self._buf_ref)
        self._blocks: dict[int, Block] = {}
        self._exits: dict[int, Exit] = {}
        self._pages: set[int] = set()
        self._dirty = False
        self._generation = 0  # flushes so far: a patch site is only valid in its generation
        self.stats = {k: 0 for k in (*KIND_NAMES, "refills", "blocks", "flushes", "chains")}
        self._emit_runtime()
        self._clear_jcache()
        mem.on_code_write = self._code_written

    # ---- the runtime: entry, exit trampoline ---------------------------------------------------

    def _emit_runtime(self) -> None:
        a = Asm(self.code_base)
        # uint64 enter(Context *ctx)
        for r in (RBX, R12, R13):
            a.push(r)
        a.lea(RBX, Mem(RDI, disp=BIAS))
        a.mov(R12, qword(RBX, _INSTRET))
        a.mov(R13, qword(RBX, _END))
        a.jmp_ind(qword(RBX, _ENTRY))
        # Every exit: ``call`` here from the stub.
        self._t_exit = a.addr
        a.mov(qword(RBX, _ADDR), RAX)
        a.pop(RAX)
        a.mov(qword(RBX, _EXIT), RAX)
        a.mov(qword(RBX, _INSTRET), R12)
        for r in (R13, R12, RBX):
            a.pop(r)
        a.ret()
        self._buf[: len(a.code)] = bytes(a.code)
        self._runtime_end = self._used = (len(a.code) + 63) & ~63
        self._fn = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p)(self.code_base)

    # ---- the code cache ------------------------------------------------------------------------

    def _clear_jcache(self) -> None:
        empty = struct.pack("<QQ", _EMPTY, 0) * JC_ENTRIES
        ctypes.memmove(ctypes.addressof(self.ctx.jcache), empty, len(empty))

    def flush(self) -> None:
        """Drop every translation (chains and jump cache with them)."""
        self._blocks.clear()
        self._exits.clear()
        self._used = self._runtime_end
        self._clear_jcache()
        for p in self._pages:
            self.mem.code_pages.discard(p)
        self._pages.clear()
        self._dirty = False
        self._generation += 1
        self.stats["flushes"] += 1

    def _code_written(self, vpn: int) -> None:
        self._dirty = True

    def block(self, pc: int) -> Block | None:
        """The translation of the block at ``pc`` (made now if needed); None when its first
        instruction cannot be fetched or decoded (the interpreter then raises the signal)."""
        blk = self._blocks.get(pc)
        if blk is not None:
            return blk
        insns: list[tuple[int, Insn]] = []
        p = pc
        while len(insns) < MAX_INSNS:
            try:
                i = decode(self.mem.fetch(p))
            except (SegFault, IllegalInstruction):
                break
            insns.append((p, i))
            p = (p + i.size) & MASK64
            if i.op in ENDS_BLOCK or (p ^ pc) >> 12:
                break
        if not insns:
            return None
        if self._size - self._used < _BLOCK_ROOM:
            self.flush()
        for vpn in range(pc >> 12, ((p - 1) >> 12) + 1):
            self.mem.mark_code(vpn)
            self._pages.add(vpn)
            e = self.ctx.tlb_w[vpn % TLB_ENTRIES]
            if e.tag == vpn << 12:
                e.tag = _EMPTY
        start = self.code_base + self._used
        em = _Emitter(self, start, pc)
        a = em.a
        a.bind(em.entry)
        a.cmp(R12, R13)
        a.jcc(CC.AE, em.stub(Exit(BUDGET, pc)))
        body = a.addr
        n = len(insns)
        pcmap = []
        for idx, (ipc, i) in enumerate(insns):
            pcmap.append((a.addr, ipc, idx))
            em.insn(i, ipc, idx, n)
        last = insns[-1][1]
        if last.op not in ENDS_BLOCK:
            a.add(R12, n)
            em.goto(p)
        em.finish()
        code = bytes(a.code)
        self._buf[self._used : self._used + len(code)] = code
        self._used = (self._used + len(code) + 15) & ~15
        blk = Block(pc, start, body, start + len(code), n, pcmap)
        self._blocks[pc] = blk
        self._exits.update(em.exits)
        self.stats["blocks"] += 1
        return blk

    def code_bytes(self, blk: Block) -> bytes:
        """The host code of ``blk``."""
        o = blk.entry - self.code_base
        return bytes(self._buf[o : o + blk.end - blk.entry])

    def _patch(self, site: int, target: int) -> None:
        o = site - self.code_base
        self._buf[o : o + 4] = struct.pack("<i", target - (site + 4))
        self.stats["chains"] += 1

    # ---- TLB -----------------------------------------------------------------------------------

    def _fill_tlb(self, vpn: int) -> None:
        """Copy ``vpn``'s entries of the softmmu TLB (``mem.tlb_r``, ``mem.tlb_w``) in."""
        tag = (vpn << 12) & MASK64
        k = vpn % TLB_ENTRIES
        page = self.mem.tlb_r.get(vpn)
        if page is not None:
            e = self.ctx.tlb_r[k]
            e.tag, e.addend = tag, (self._ram + page - tag) & MASK64
        page = self.mem.tlb_w.get(vpn)
        if page is not None and vpn not in self.mem.code_pages:
            e = self.ctx.tlb_w[k]
            e.tag, e.addend = tag, (self._ram + page - tag) & MASK64

    # ---- running -------------------------------------------------------------------------------

    def _native(self, entry: int, instret: int, end: int) -> Exit:
        """Run native code from ``entry``; the exit taken, with the CPU state copied back."""
        ctx, cpu = self.ctx, self.cpu
        ctx.x[:] = cpu.x
        ctx.entry, ctx.instret, ctx.end = entry, instret, end
        ctx.resv = _EMPTY if cpu.resv is None else cpu.resv
        ex = self._exits[self._fn(self._ctx_addr)]  # returns the exit stub's return address
        cpu.x[:] = ctx.x[:]
        cpu.resv = None if ctx.resv == _EMPTY else ctx.resv
        cpu.instret = ctx.instret + ex.idx
        self.stats[KIND_NAMES[ex.kind]] += 1
        return ex

    def _refill(self, ex: Exit) -> bool:
        """After a ``slow`` exit: fill the native TLB entries the access needs from the softmmu
        TLB; True if they now hit (native code can run the instruction itself)."""
        self.cpu.pc = ex.pc  # precise before the instruction, should run() stop here
        addr, op = self.ctx.addr, ex.op
        size = access_size(op)
        atomic = op[-2] == "."
        if (addr & 0xFFF) + size > PAGE_BYTES or (atomic and addr & (size - 1)):
            return False  # crossing a page, or a misaligned atomic (SIGBUS)
        vpn = addr >> 12
        self._fill_tlb(vpn)
        tag, k = (vpn << 12) & MASK64, vpn % TLB_ENTRIES
        reads = op not in STORES and not op.startswith("sc.")
        writes = op not in LOADS and not op.startswith("lr.")
        return (not reads or self.ctx.tlb_r[k].tag == tag) and (
            not writes or self.ctx.tlb_w[k].tag == tag
        )

    def _slow(self, ex: Exit) -> int:
        """Run the instruction of a ``slow``/``helper`` exit with the interpreter; where native
        code resumes (0: look the pc up)."""
        cpu = self.cpu
        cpu.pc = ex.pc
        i = self._interp.step()
        if ex.kind == SLOW:
            addr = self.ctx.addr
            size = access_size(i.op)
            for vpn in {addr >> 12, ((addr + size - 1) & MASK64) >> 12}:
                self._fill_tlb(vpn)
        if self._dirty or i.op == "fence.i":
            self.flush()
            return 0
        return ex.resume

    def _follow(self, ex: Exit) -> int:
        """After a ``static``/``dynamic`` exit: the target's host code (chaining it), 0 if it
        cannot be translated."""
        cpu = self.cpu
        if ex.kind == STATIC:
            cpu.pc = ex.pc
            gen = self._generation
            blk = self.block(ex.pc)
            if blk is None:
                return 0
            if gen == self._generation:  # else the jump's block was flushed to make room
                self._patch(ex.site, blk.entry)
            return blk.entry
        cpu.pc = pc = self.ctx.pc
        blk = self.block(pc)
        if blk is None:
            return 0
        e = self.ctx.jcache[(pc >> 1) % JC_ENTRIES]
        e.pc, e.host = pc, blk.entry
        return blk.entry

    def run(self, limit: int | None = None) -> None:
        """Run until the guest exits or dies, or ``limit`` more instructions retired (possibly
        overshooting to the end of a block)."""
        cpu = self.cpu
        end = _FOREVER if limit is None else cpu.instret + limit
        host, base = 0, cpu.instret
        while cpu.instret < end:
            if not host:
                blk = self.block(cpu.pc)
                if blk is None:
                    self._interp.step()  # raises the fetch fault or illegal instruction
                    continue
                host, base = blk.entry, cpu.instret
            ex = self._native(host, base, end)
            if ex.kind == BUDGET:
                cpu.pc = ex.pc
                return
            if ex.kind in (STATIC, DYNAMIC):
                host, base = self._follow(ex), cpu.instret
            elif ex.kind == SLOW and self._refill(ex):
                host, base = ex.retry, cpu.instret - ex.idx
                self.stats["refills"] += 1
            else:
                host = self._slow(ex)
                base = cpu.instret - ex.idx - 1

    def step_block(self) -> int:
        """Execute one block (no chaining out of it); the instructions retired."""
        cpu = self.cpu
        start = cpu.instret
        host, base = 0, cpu.instret
        while True:
            if not host:
                blk = self.block(cpu.pc)
                if blk is None:
                    self._interp.step()
                    return cpu.instret - start
                host, base = blk.body, cpu.instret
            ex = self._native(host, base, 0)
            if ex.kind == BUDGET:
                cpu.pc = ex.pc
                return cpu.instret - start
            if ex.kind in (STATIC, DYNAMIC):
                self._follow(ex)
                return cpu.instret - start
            if ex.kind == SLOW and self._refill(ex):
                host, base = ex.retry, cpu.instret - ex.idx
                self.stats["refills"] += 1
                continue
            host = self._slow(ex)
            base = cpu.instret - ex.idx - 1
            if not ex.resume:  # the block ended with that instruction
                return cpu.instret - start
            # host is 0 if the code cache was flushed mid-block: carry on in a fresh translation
