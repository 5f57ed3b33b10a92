"""The ``block`` tier: guest basic blocks translated to Python source, compiled, cached by PC and
chained.

A block runs from its PC to the first control transfer, ``ecall``, ``ebreak`` or ``fence.i``
(or :data:`MAX_INSNS`, or the end of its page). Its source keeps the guest registers it uses in
local variables, writing back the ones it changed when it leaves, normally or by an exception.
Loads and stores go through the softmmu TLB inline; a miss, an access crossing a page, or a
store to a page holding translated code takes :class:`~models.xlate.memory.AddressSpace`'s slow
path. When that store hit translated code, every block on the page is dropped and the block
leaves right after the store, so the next instruction is translated afresh (fence.i drops every
block). A fault is made precise from the source line it was raised on: each line belongs to one
guest instruction (the host-PC to guest-PC map of a Python tier).

Chaining: each block remembers the block each successor PC led to last time (``links``), so the
dispatcher follows a link instead of looking the PC up; dropping blocks clears every link.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from vmassist.formats.mmu import AccessKind

from .interp import divs, divuw, divw, execute, rems, remuw, remw
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
from .linux import SIGILL, SIGSEGV, SIGTRAP, Cpu, GuestSignal, Linux
from .memory import PAGE_BYTES, AddressSpace, SegFault

__all__ = ["BlockTranslator", "MAX_INSNS", "translate_source"]

MAX_INSNS = 64
_PAGE = ~(PAGE_BYTES - 1)
_SIGN = 1 << 63


_S32 = "((({} & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000)"
_W = "(((({}) & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000 & M)"
_SGN = "(({} ^ S) - S)"
# Two-operand forms: {a} is rs1, {b} is rs2 or the immediate (unsigned 64-bit), both expressions.
_EXPR = {
    "add": "({a} + {b}) & M", "sub": "({a} - {b}) & M", "and": "{a} & {b}", "or": "{a} | {b}",
    "xor": "{a} ^ {b}", "sll": "({a} << ({b} & 63)) & M", "srl": "{a} >> ({b} & 63)",
    "sra": "(" + _SGN.format("{a}") + " >> ({b} & 63)) & M",
    "slt": "int(({a} ^ S) < ({b} ^ S))", "sltu": "int({a} < {b})",
    "mul": "({a} * {b}) & M",
    "mulh": "(" + _SGN.format("{a}") + " * " + _SGN.format("{b}") + " >> 64) & M",
    "mulhsu": "(" + _SGN.format("{a}") + " * {b} >> 64) & M",
    "mulhu": "({a} * {b}) >> 64",
    "div": "divs({a}, {b})", "divu": "({a} // {b} if {b} else M)",
    "rem": "rems({a}, {b})", "remu": "({a} % {b} if {b} else {a})",
    "addw": _W.format("{a} + {b}"), "subw": _W.format("{a} - {b}"),
    "sllw": _W.format("{a} << ({b} & 31)"), "srlw": _W.format("({a} & 0xFFFFFFFF) >> ({b} & 31)"),
    "sraw": _W.format(_S32.format("{a}") + " >> ({b} & 31)"), "mulw": _W.format("{a} * {b}"),
    "divw": "divw({a}, {b})", "divuw": "divuw({a}, {b})", "remw": "remw({a}, {b})",
    "remuw": "remuw({a}, {b})",
}  # fmt: skip
_IMM = {"addi": "add", "slti": "slt", "sltiu": "sltu", "xori": "xor", "ori": "or",
        "andi": "and", "slli": "sll", "srli": "srl", "srai": "sra", "addiw": "addw",
        "slliw": "sllw", "srliw": "srlw", "sraiw": "sraw"}  # fmt: skip
_BRANCH = {"beq": "{a} == {b}", "bne": "{a} != {b}", "blt": "({a} ^ S) < ({b} ^ S)",
           "bge": "({a} ^ S) >= ({b} ^ S)", "bltu": "{a} < {b}", "bgeu": "{a} >= {b}"}  # fmt: skip
_UNPACK = {1: "UB", 2: "UH", 4: "UI", 8: "UQ"}
_PACK = {1: "PB", 2: "PH", 4: "PI", 8: "PQ"}
_SIZE_MASK = {1: "0xFF", 2: "0xFFFF", 4: "0xFFFFFFFF", 8: "M"}
_SIGNBIT = {1: "0x80", 2: "0x8000", 4: "0x80000000"}

_NAMESPACE: dict[str, object] = {
    "M": MASK64, "S": _SIGN, "divs": divs, "rems": rems, "divw": divw, "remw": remw,
    "divuw": divuw, "remuw": remuw, "execute": execute, "GuestSignal": GuestSignal,
    "SIGILL": SIGILL, "SIGTRAP": SIGTRAP,
    "UB": struct.Struct("<B").unpack_from, "UH": struct.Struct("<H").unpack_from,
    "UI": struct.Struct("<I").unpack_from, "UQ": struct.Struct("<Q").unpack_from,
    "PB": struct.Struct("<B").pack_into, "PH": struct.Struct("<H").pack_into,
    "PI": struct.Struct("<I").pack_into, "PQ": struct.Struct("<Q").pack_into,
}  # fmt: skip


@dataclass
class Block:
    """A translated block: its function, the PC of each instruction, the source line each one's
    code starts on, and the successor links."""

    pc: int
    fn: Callable[..., int]
    pcs: list[int]
    lines: list[int]
    pages: frozenset[int]
    insns: list[Insn]
    source: str
    links: dict[int, Block] = field(default_factory=dict)

    def index_at_line(self, line: int) -> int:
        """The instruction whose code holds source line ``line``."""
        k = 0
        for i, first in enumerate(self.lines):
            if first <= line:
                k = i
        return k


def _fetch_block(mem: AddressSpace, pc: int) -> tuple[list[Insn], list[int], str | None]:
    """Decode the block at ``pc``: instructions, their PCs, and why decoding stopped early (an
    illegal or unfetchable instruction ends the block before it; None otherwise)."""
    insns: list[Insn] = []
    pcs: list[int] = []
    page = pc & _PAGE
    a = pc
    while len(insns) < MAX_INSNS and (a & _PAGE) == page:
        try:
            i = decode(mem.fetch(a))
        except (IllegalInstruction, SegFault) as e:
            if not insns:
                return [], [a], str(e)
            break
        insns.append(i)
        pcs.append(a)
        a += i.size
        if i.op in ENDS_BLOCK:
            break
    return insns, pcs, None


def translate_source(insns: list[Insn], pcs: list[int]) -> tuple[str, list[int]]:
    """Python source of the block function ``blk(cpu)`` and the line each instruction's code
    starts on. The function finds the registers, the softmmu TLB, the RAM, the address space,
    the kernel and the decoded instructions in its default arguments (fast locals)."""
    used = sorted({r for i in insns for r in (i.rd, i.rs1, i.rs2) if r})
    written = sorted({i.rd for i in insns if i.rd})
    body: list[str] = []
    lines: list[int] = []
    n = len(insns)
    wb_all = "; ".join(f"x[{r}] = r{r}" for r in written) or "pass"
    reload = "; ".join(f"r{r} = x[{r}]" for r in used) or "pass"

    def reg(r: int) -> str:
        return f"r{r}" if r else "0"

    def leave(k: int, nxt: str) -> list[str]:
        """Leave after instruction ``k`` (fully executed), going to ``nxt``."""
        return [wb_all, f"cpu.instret = n0 + {k + 1}", f"return {nxt}"]

    def fallback(k: int, i: Insn, pc: int) -> list[str]:
        """Run instruction ``k`` through the interpreter (AMOs, CSRs, ...)."""
        return [
            wb_all,
            f"cpu.pc = {pc}; cpu.instret = n0 + {k}",
            f"ch = execute(I[{k}], cpu, mem, kern)",
            reload,
            "if ch:",
            f"    return {pc + i.size}",
        ]

    ended = False
    for k, (i, pc) in enumerate(zip(insns, pcs, strict=True)):
        lines.append(len(body))
        op, a, b = i.op, reg(i.rs1), reg(i.rs2)
        nxt = pc + i.size
        rd = f"r{i.rd}" if i.rd else None
        code: list[str] = []
        if op in _EXPR:
            if rd:
                code.append(f"{rd} = " + _EXPR[op].format(a=a, b=b))
        elif op in _IMM:
            if rd:
                code.append(f"{rd} = " + _EXPR[_IMM[op]].format(a=a, b=str(i.imm & MASK64)))
        elif op == "lui":
            if rd:
                code.append(f"{rd} = {i.imm & MASK64}")
        elif op == "auipc":
            if rd:
                code.append(f"{rd} = {(pc + i.imm) & MASK64}")
        elif op in LOADS:
            size, signed = LOADS[op]
            code += [
                f"a = ({a} + {i.imm}) & M",
                "p = tr.get(a >> 12)",
                f"if p is None or (a & 4095) > {PAGE_BYTES - size}:",
                f"    v = mem.load(a, {size}, {signed}) & M",
                "else:",
                f"    v = {_UNPACK[size]}(ram, p | (a & 4095))[0]",
            ]
            if signed and size < 8:
                code[-1] += f"; v = ((v ^ {_SIGNBIT[size]}) - {_SIGNBIT[size]}) & M"
            if rd:
                code.append(f"{rd} = v")
        elif op in STORES:
            size = STORES[op]
            code += [
                f"a = ({a} + {i.imm}) & M",
                "p = tw.get(a >> 12)",
                f"if p is None or (a & 4095) > {PAGE_BYTES - size}:",
                f"    if mem.store(a, {size}, {b}):",
                *("        " + s for s in leave(k, str(nxt))),
                "else:",
                f"    {_PACK[size]}(ram, p | (a & 4095), {b} & {_SIZE_MASK[size]})",
            ]
        elif op in BRANCHES:
            cond = _BRANCH[op].format(a=a, b=b)
            code += leave(k, f"{(pc + i.imm) & MASK64} if {cond} else {nxt}")
            ended = True
        elif op == "jal":
            if rd:
                code.append(f"{rd} = {nxt}")
            code += leave(k, str((pc + i.imm) & MASK64))
            ended = True
        elif op == "jalr":
            code.append(f"t = ({a} + {i.imm}) & {MASK64 & ~1}")
            if rd:
                code.append(f"{rd} = {nxt}")
            code += leave(k, "t")
            ended = True
        elif op.startswith("csr") and i.imm in COUNTERS and op not in ("csrrw", "csrrwi") \
                and i.rs1 == 0:  # fmt: skip
            if rd:
                v = f"n0 + {k}"
                code.append(f"{rd} = ({v}) // 100" if COUNTERS[i.imm] == "time" else f"{rd} = {v}")
        elif op == "ecall":
            code += [wb_all, f"cpu.pc = {pc}; cpu.instret = n0 + {k}", "kern.syscall(cpu, mem)",
                     f"cpu.instret = n0 + {k + 1}", f"return {nxt}"]  # fmt: skip
            ended = True
        elif op == "ebreak":
            code += [wb_all, f"cpu.pc = {pc}; cpu.instret = n0 + {k}",
                     f"raise GuestSignal(SIGTRAP, {pc}, 'ebreak')"]  # fmt: skip
            ended = True
        elif op == "fence":
            code.append("pass")
        elif op == "fence.i":
            code += [wb_all, f"cpu.instret = n0 + {k + 1}", "mem.on_code_write(-1)",
                     f"return {nxt}"]  # fmt: skip
            ended = True
        else:  # AMO, LR/SC, other CSRs: the interpreter
            code += fallback(k, i, pc)
        body += code or ["pass"]
    if not ended:
        body += [wb_all, f"cpu.instret = n0 + {n}", f"return {pcs[-1] + insns[-1].size}"]
    head = [
        "def blk(cpu, x=X, tr=TR, tw=TW, ram=RAM, mem=MEM, kern=KERN, I=INSNS):",
        "    n0 = cpu.instret",
        *(f"    r{r} = x[{r}]" for r in used),
        "    try:",
    ]
    src = head + ["        " + s for s in body]
    src += ["    except BaseException:", f"        {wb_all}", "        raise"]
    first = len(head) + 1  # source lines are 1-based
    return "\n".join(src) + "\n", [first + ln for ln in lines]


class BlockTranslator:
    """The ``block`` tier.

    Members
    -------
    blocks : dict of int to Block
        The code cache, by guest PC.
    translated, invalidations : int
        Blocks translated; times blocks were dropped for self-modifying code or fence.i.
    """

    name = "block"

    def __init__(self, cpu: Cpu, mem: AddressSpace, kernel: Linux) -> None:
        self.cpu, self.mem, self.kernel = cpu, mem, kernel
        self.blocks: dict[int, Block] = {}
        self.by_page: dict[int, set[int]] = {}
        self.translated = 0
        self.invalidations = 0
        mem.on_code_write = self._code_written

    def _code_written(self, vpn: int) -> None:
        """Drop the blocks of page ``vpn`` (all of them for -1: fence.i), and every link."""
        self.invalidations += 1
        if vpn < 0:
            self.blocks.clear()
            self.by_page.clear()
            self.mem.code_pages.clear()
            return
        for pc in self.by_page.pop(vpn, ()):
            self.blocks.pop(pc, None)
        for b in self.blocks.values():
            b.links.clear()

    def _translate(self, pc: int) -> Block:
        insns, pcs, why = _fetch_block(self.mem, pc)
        if not insns:
            assert why is not None
            raise GuestSignal(SIGILL if "illegal" in why else SIGSEGV, pc, why)
        src, lines = translate_source(insns, pcs)
        mem = self.mem
        ns = dict(_NAMESPACE, X=self.cpu.x, TR=mem.tlb_r, TW=mem.tlb_w, RAM=mem.ram, MEM=mem,
                  KERN=self.kernel, INSNS=insns)  # fmt: skip
        exec(compile(src, f"<block {pc:#x}>", "exec"), ns)
        end = pcs[-1] + insns[-1].size - 1
        pages = frozenset({pc >> 12, end >> 12})
        for p in pages:
            self.mem.mark_code(p)
            self.by_page.setdefault(p, set()).add(pc)
        blk = Block(pc, ns["blk"], pcs, lines, pages, insns, src)  # type: ignore[arg-type]
        self.blocks[pc] = blk
        self.translated += 1
        return blk

    def _lookup(self, pc: int) -> Block:
        blk = self.blocks.get(pc)
        return blk if blk is not None else self._translate(pc)

    def _fault(self, blk: Block, start: int, e: SegFault) -> GuestSignal:
        """The signal for fault ``e`` raised in ``blk`` (entered with ``start`` instructions
        retired), the CPU made precise: the PC and instret of the faulting instruction."""
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code is not blk.fn.__code__:
            tb = tb.tb_next
        k = blk.index_at_line(tb.tb_lineno) if tb is not None else 0
        self.cpu.pc = blk.pcs[k]
        self.cpu.instret = start + k
        kind = "fetch" if e.kind == AccessKind.FETCH else "access"
        return GuestSignal(SIGSEGV, self.cpu.pc, f"{kind} fault: {e}")

    def step_block(self) -> int:
        cpu = self.cpu
        start = cpu.instret
        blk = self._lookup(cpu.pc)
        try:
            cpu.pc = blk.fn(cpu)
        except SegFault as e:
            raise self._fault(blk, start, e) from None
        return cpu.instret - start

    def run(self, limit: int | None = None) -> None:
        cpu = self.cpu
        end = (1 << 62) if limit is None else cpu.instret + limit
        blocks = self.blocks
        blk = self._lookup(cpu.pc)
        start = cpu.instret
        try:
            while start < end:
                pc = blk.fn(cpu)
                start = cpu.instret
                nb = blk.links.get(pc)
                if nb is None:
                    nb = blocks.get(pc)
                    if nb is None:
                        cpu.pc = pc
                        nb = self._translate(pc)
                    if blocks.get(blk.pc) is blk:
                        blk.links[pc] = nb
                blk = nb
        except SegFault as e:
            raise self._fault(blk, start, e) from None
        cpu.pc = blk.pc
