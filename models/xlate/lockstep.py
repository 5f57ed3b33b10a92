"""Lockstep differential testing of a tier against Unicorn's RISC-V engine.

:func:`check` mirrors a loaded guest (:class:`~models.xlate.machine.Machine`) into a Unicorn
instance (every area mapped page-granular, the pages the guest has touched copied, registers and
PC), then runs both a basic block at a time: the tier's ``step_block()`` retires ``n``
instructions, Unicorn executes the same ``n``, and all 31 registers, the PC and every byte
Unicorn stored during the block (a ``UC_HOOK_MEM_WRITE`` hook) are compared at the block
boundary. When the guest ends, a sweep compares every mapped page, which also catches stores
only the tier made.

What Unicorn is not left to do itself:

- ``ecall``: our Linux performs the system call; Unicorn stops before it, takes our ``a0`` and
  the bytes a ``read`` stored, and continues after it. ``exit``/``exit_group`` end the check.
- Counter CSR reads (``rdcycle``/``rdtime``/``rdinstret`` and the other read-only forms):
  Unicorn returns the host's cycle and instruction counters and traps on ``time`` (no timer
  device), so the reading instruction is skipped and ``rd`` set to the value the tier must give
  (:meth:`~models.xlate.linux.Cpu.counter` of the instructions retired before it).
- A fault ends the guest on our side (:class:`~models.xlate.linux.GuestSignal`); Unicorn must
  then fault on the same instruction.

Unicorn runs the guest in user mode (``ecall`` reports cause 8), allows misaligned loads and
stores (also across pages) and traps misaligned AMOs, as our Linux-user model does. Its SC also
compares the value the LR loaded (QEMU's cmpxchg); a store between LR and SC to the reserved
address is therefore a known difference, which :mod:`~models.xlate.randgen` never emits.

On a mismatch both sides are put back to the block's start (Unicorn: saved context and an undo
log of its stores; ours: a copy of the guest built from the saved registers and Unicorn's
restored memory) and stepped one instruction at a time, with the tier itself when it can step
(an :class:`~models.xlate.interp.Interpreter` or subclass) and with the reference interpreter
otherwise, to name the first instruction where they diverge: :class:`LockstepMismatch`.

Unicorn is imported lazily: :mod:`models.xlate` imports without it.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from models.vmm.paging import ref_translate
from vmassist.formats.mmu import AccessKind

from .interp import Interpreter
from .isa import COUNTERS, MASK64, STORES, IllegalInstruction, Insn, decode
from .linux import SIGILL, Cpu, GuestExit, GuestSignal, Linux
from .memory import PAGE_BYTES, RAM_HPA, AddressSpace, SegFault
from .randgen import REG_NAMES, format_insn

if TYPE_CHECKING:
    from .machine import Machine

__all__ = ["LockstepMismatch", "LockstepResult", "Peek", "UnicornMirror", "check", "check_random"]

_ZERO_PAGE = bytes(PAGE_BYTES)
_SYS_READ = 63
_NOWHERE = MASK64
"""The ``until`` address given to Unicorn: odd, so never an instruction's (``until=0`` would
stop a guest that jumps to 0 before the fault it must take there)."""


@dataclass
class LockstepResult:
    """What a lockstep run compared.

    Members
    -------
    blocks : int
        Blocks run and compared.
    instructions : int
        Instructions retired by both sides.
    syscalls : int
        System calls made (performed by our Linux, mirrored into Unicorn).
    status : int or None
        The guest's exit status (``128 + signal`` when it died of one); None when ``max_blocks``
        stopped the run first.
    signal : int or None
        The signal the guest died of, if it did.
    """

    blocks: int = 0
    instructions: int = 0
    syscalls: int = 0
    status: int | None = None
    signal: int | None = None


class LockstepMismatch(AssertionError):
    """The tier and Unicorn disagree.

    Members
    -------
    pc : int or None
        The first instruction whose results differ (None when the bisection could not single it
        out: only the tier's block as a whole diverges).
    word : int or None
        Its raw bits.
    insn : Insn or None
        It, decoded.
    block_pc : int
        Start of the block in which the difference showed.
    regs : list of (str, int or None, int or None)
        ``(name, ours, unicorn's)`` for every register (and ``pc``) that differs.
    memory : list of (int, bytes, bytes)
        ``(address, ours, unicorn's)`` for differing memory.
    report : str
        All of it, readable (also the exception's message).
    """

    def __init__(self, report: str, *, block_pc: int, pc: int | None = None,
                 word: int | None = None, insn: Insn | None = None,
                 regs: list[tuple[str, int | None, int | None]] | None = None,
                 memory: list[tuple[int, bytes, bytes]] | None = None) -> None:  # fmt: skip
        super().__init__(report)
        self.report = report
        self.block_pc = block_pc
        self.pc = pc
        self.word = word
        self.insn = insn
        self.regs = regs or []
        self.memory = memory or []


@dataclass
class _Start:
    """Our architectural state at a block's start."""

    pc: int
    x: list[int]
    instret: int
    resv: int | None

    @classmethod
    def of(cls, cpu: Cpu) -> _Start:
        return cls(cpu.pc, list(cpu.x), cpu.instret, cpu.resv)


@dataclass
class _Diff:
    regs: list[tuple[str, int | None, int | None]] = field(default_factory=list)
    memory: list[tuple[int, bytes, bytes]] = field(default_factory=list)
    why: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.regs or self.memory or self.why)


def _reg_name(r: int) -> str:
    return f"{REG_NAMES[r]} (x{r})"


@functools.lru_cache(maxsize=1 << 14)
def _decode(word: int) -> Insn | None:
    try:
        return decode(word)
    except IllegalInstruction:
        return None


def _unicorn_allows(i: Insn | None, ours: BaseException | None) -> bool:
    """Whether Unicorn executing ``i`` while ours died of ``ours`` is a known Unicorn quirk:
    it lets user mode access CSRs Linux user mode cannot (``mstatus``, ``fcsr``, ...)."""
    return (isinstance(ours, GuestSignal) and ours.signal == SIGILL and i is not None
            and i.op.startswith("csr"))  # fmt: skip


def _counter_read(i: Insn | None) -> bool:
    """A read of a counter CSR that our tiers answer (not a write: that is SIGILL)."""
    return (i is not None and i.op.startswith("csr") and i.imm in COUNTERS
            and i.op not in ("csrrw", "csrrwi") and i.rs1 == 0)  # fmt: skip


class Peek:
    """Reads our guest memory without side effects (no demand paging, no trace, no A/D bits):
    the pure reference walk of the guest tables, cached per page (pages are never unmapped)."""

    def __init__(self, mem: AddressSpace) -> None:
        self.mem = mem
        self.pages: dict[int, int] = {}

    def page(self, vpn: int) -> int | None:
        """Offset in ``ram`` of guest page ``vpn``, or None when it was never touched (zeros)."""
        off = self.pages.get(vpn)
        if off is None:
            m = self.mem
            t = ref_translate(m.tables, m.gcr3, m.eptp, vpn * PAGE_BYTES, AccessKind.READ, True)
            if not t.ok:
                return None
            off = self.pages[vpn] = (t.hpa - RAM_HPA) & ~(PAGE_BYTES - 1)
        return off

    def mapped(self) -> set[int]:
        """Addresses of the pages our guest has touched (all others read as zeros)."""
        return {gva for gva, _level, _entry in self.mem.guest.mappings()}

    def read(self, addr: int, n: int) -> bytes:
        out = bytearray()
        while n > 0:
            o = addr % PAGE_BYTES
            chunk = min(n, PAGE_BYTES - o)
            off = self.page(addr // PAGE_BYTES)
            out += _ZERO_PAGE[:chunk] if off is None else self.mem.ram[off + o : off + o + chunk]
            addr += chunk
            n -= chunk
        return bytes(out)


class UnicornMirror:
    """The Unicorn mirror of a guest address space and CPU.

    Parameters
    ----------
    hooks : bool
        Record writes (with an undo log) and stop at exceptions, as the lockstep checker needs.
        Without, Unicorn runs at full speed (the benchmark adds its own ``ecall`` hook).
    """

    def __init__(self, hooks: bool = True) -> None:
        import unicorn
        from unicorn import riscv_const as rc

        self.uc_mod = unicorn
        self.uc = unicorn.Uc(unicorn.UC_ARCH_RISCV, unicorn.UC_MODE_RISCV64)
        self.xregs = [getattr(rc, f"UC_RISCV_REG_X{i}") for i in range(32)]
        self.pc_reg = rc.UC_RISCV_REG_PC
        self.all_regs = [*self.xregs[1:], self.pc_reg]
        self.mapped: dict[int, int] = {}  # area start -> end mapped so far
        # Batch register reads without the binding's per-call argument building (it costs
        # more than the block being checked): fixed ctypes arrays, filled by one C call.
        n = len(self.all_regs)
        self._ids = (ctypes.c_int * n)(*self.all_regs)
        self._vals = (ctypes.c_uint64 * n)()
        base = ctypes.addressof(self._vals)
        self._ptrs = (ctypes.c_void_p * n)(*(base + 8 * k for k in range(n)))
        self._fast = hasattr(self.uc, "_do_reg_read_batch")
        # Where the instructions Unicorn must not execute are, per (block pc, length); dropped
        # when a store hits a page such a scan read.
        self.scans: dict[tuple[int, int], list[tuple[int, int, Insn]]] = {}
        self.code_pages: set[int] = set()
        self.writes: list[tuple[int, int]] = []
        self.undo: list[tuple[int, bytes]] = []
        self.intr: list[int] = []
        if hooks:
            self.uc.hook_add(unicorn.UC_HOOK_MEM_WRITE, self._on_write)
            self.uc.hook_add(unicorn.UC_HOOK_INTR, self._on_intr)

    def _on_write(self, uc: Any, access: int, addr: int, size: int, value: int, data: Any
                  ) -> None:  # fmt: skip
        self.writes.append((addr, size))
        self.code_written(addr, size)
        try:  # the hook runs before the store: keep the old bytes to undo the block
            self.undo.append((addr, bytes(uc.mem_read(addr, size))))
        except self.uc_mod.UcError:  # unmapped: the store faults and writes nothing
            pass

    def code_written(self, addr: int, size: int) -> None:
        pages = self.code_pages
        if pages and (addr // PAGE_BYTES in pages or (addr + size - 1) // PAGE_BYTES in pages):
            self.scans.clear()
            pages.clear()

    def specials(self, pc: int, count: int) -> list[tuple[int, int, Insn]]:
        """``(index, pc, insn)`` of the counter reads and ecalls among the ``count``
        straight-line instructions from ``pc``."""
        key = (pc, count)
        found = self.scans.get(key)
        if found is None:
            found = []
            p = pc
            for k in range(count):
                self.code_pages.add(p // PAGE_BYTES)
                i = _decode(self.fetch(p))
                if i is not None and (i.op == "ecall" or _counter_read(i)):
                    found.append((k, p, i))
                p += 4 if i is None else i.size
            self.code_pages.add((p - 1) // PAGE_BYTES)
            self.scans[key] = found
        return found

    def _on_intr(self, uc: Any, intno: int, data: Any) -> None:
        self.intr.append(intno)
        uc.emu_stop()

    def map(self, start: int, end: int, r: bool, w: bool, x: bool) -> None:
        u = self.uc_mod
        prot = (u.UC_PROT_READ if r else 0) | (u.UC_PROT_WRITE if w else 0) | (
            u.UC_PROT_EXEC if x else 0)  # fmt: skip
        self.uc.mem_map(start, end - start, prot)

    def sync(self, peek: Peek, copy: bool = False) -> None:
        """Map in Unicorn what the guest's areas cover (they grow with brk); with ``copy``, copy
        every page the guest has touched."""
        mem = peek.mem
        for a in mem.areas:
            done = self.mapped.get(a.start, a.start)
            if a.end <= done:
                continue
            self.map(done, a.end, a.r, a.w, a.x)
            self.mapped[a.start] = a.end
        for page in sorted(peek.mapped()) if copy else ():
            off = peek.page(page // PAGE_BYTES)
            if off is not None and mem.area(page) is not None:
                self.uc.mem_write(page, bytes(mem.ram[off : off + PAGE_BYTES]))

    def regs(self) -> list[int]:
        """``x1..x31`` then ``pc``."""
        if self._fast:
            status = self.uc._do_reg_read_batch(self._ids, self._ptrs, len(self.all_regs))
            if status == self.uc_mod.UC_ERR_OK:
                return list(self._vals)
        return list(self.uc.reg_read_batch(self.all_regs))

    def set_regs(self, x: list[int], pc: int) -> None:
        self.uc.reg_write_batch([*zip(self.xregs[1:], x[1:], strict=True), (self.pc_reg, pc)])

    def fetch(self, pc: int) -> int:
        """The (up to) 32 bits at ``pc``, 0 when unmapped."""
        for n in (4, 2):
            try:
                return int.from_bytes(self.uc.mem_read(pc, n), "little")
            except self.uc_mod.UcError:
                continue
        return 0

    def read(self, addr: int, n: int) -> bytes:
        try:
            return bytes(self.uc.mem_read(addr, n))
        except self.uc_mod.UcError:
            return b""

    def run(self, pc: int, count: int) -> str | None:
        """Execute ``count`` instructions from ``pc``; None, or the fault that stopped it."""
        if count <= 0:
            return None
        self.intr.clear()
        try:
            self.uc.emu_start(pc, _NOWHERE, count=count)
        except self.uc_mod.UcError as e:
            at = self.uc.reg_read(self.pc_reg)
            u = self.uc_mod
            if e.errno in (u.UC_ERR_FETCH_UNMAPPED, u.UC_ERR_FETCH_PROT) and at != pc:
                # Unicorn fetches the next instruction before it counts the last one as done:
                # a jump to an unfetchable address is reported as a fault (at the target). The
                # jump itself completed; the PC comparison shows whether it stopped early.
                return None
            return f"Unicorn error {e} at pc {at:#x}"
        if self.intr:
            return f"Unicorn exception (cause {self.intr[0]})"
        return None


class _Lockstep:
    def __init__(self, machine: Machine) -> None:
        self.m = machine
        self.cpu, self.mem, self.kernel = machine.cpu, machine.mem, machine.kernel
        self.engine = machine.engine
        self.peek = Peek(self.mem)
        self.u = UnicornMirror()
        self.res = LockstepResult()
        self.u.sync(self.peek, copy=True)
        self.u.set_regs(self.cpu.x, self.cpu.pc)

    # ---- memory --------------------------------------------------------------------------------

    @staticmethod
    def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
        out: list[list[int]] = []
        for a, n in sorted(ranges):
            if out and a <= out[-1][1]:
                out[-1][1] = max(out[-1][1], a + n)
            else:
                out.append([a, a + n])
        return [(a, e - a) for a, e in out]

    def _mem_diff(self, ranges: list[tuple[int, int]], ours: Any) -> list[tuple[int, bytes, bytes]]:
        """Differing bytes of ``ranges``: ``ours(addr, n)`` against Unicorn's."""
        out = []
        for a, n in self._merge(ranges):
            mine, theirs = ours(a, n), self.u.read(a, n)
            if mine != theirs:
                k = next((j for j in range(n) if j >= len(theirs) or mine[j] != theirs[j]), 0)
                out.append((a + k, mine[k : k + 8], theirs[k : k + 8]))
        return out

    def _sweep(self) -> list[tuple[int, bytes, bytes]]:
        """Every mapped page compared; the first differences."""
        out = []
        ours = self.peek.mapped()
        for a in self.mem.areas:
            end = self.u.mapped.get(a.start, a.start)
            if end <= a.start:
                continue
            theirs = self.u.read(a.start, end - a.start)
            for page in range(a.start, end, PAGE_BYTES):
                off = self.peek.page(page // PAGE_BYTES) if page in ours else None
                mine = _ZERO_PAGE if off is None else self.mem.ram[off : off + PAGE_BYTES]
                t = theirs[page - a.start : page - a.start + PAGE_BYTES]
                if mine != t:
                    k = next(j for j in range(PAGE_BYTES) if mine[j] != t[j])
                    out.append((page + k, bytes(mine[k : k + 8]), t[k : k + 8]))
                    if len(out) >= 8:
                        return out
        return out

    # ---- registers -----------------------------------------------------------------------------

    def _reg_diff(self, cpu: Cpu) -> list[tuple[str, int | None, int | None]]:
        theirs = self.u.regs()
        out: list[tuple[str, int | None, int | None]] = [
            (_reg_name(r), cpu.x[r], theirs[r - 1]) for r in range(1, 32)
            if cpu.x[r] != theirs[r - 1]
        ]  # fmt: skip
        if cpu.pc != theirs[31]:
            out.append(("pc", cpu.pc, theirs[31]))
        return out

    # ---- Unicorn's side of a block -------------------------------------------------------------

    def _special(self, i: Insn, pc: int, instret: int) -> None:
        """Do in Unicorn what it must not do itself: a counter read (``rd`` gets the value our
        tiers give after ``instret`` instructions) or an ecall (our Linux's results)."""
        uc = self.u.uc
        if i.op == "ecall":
            uc.reg_write(self.u.xregs[10], self.cpu.x[10])
            ret = self.cpu.x[10]
            if uc.reg_read(self.u.xregs[17]) == _SYS_READ and 0 < ret < 1 << 63:
                buf = uc.reg_read(self.u.xregs[11])
                self.u.undo.append((buf, self.u.read(buf, ret)))
                self.u.code_written(buf, ret)
                uc.mem_write(buf, self.peek.read(buf, ret))
            self.res.syscalls += 1
        elif i.rd:
            c = Cpu()
            c.instret = instret
            uc.reg_write(self.u.xregs[i.rd], c.counter(COUNTERS[i.imm]) & MASK64)
        uc.reg_write(self.u.pc_reg, pc + i.size)

    def _run_unicorn(self, pc: int, count: int, instret: int, ecall_ok: bool) -> str | None:
        """Unicorn executes ``count`` straight-line instructions from ``pc`` (a block), counter
        reads and the final ecall done for it; None, or the fault that stopped it."""
        k = 0
        for j, p, i in self.u.specials(pc, count):
            fault = self.u.run(pc, j - k)
            if fault:
                return fault
            if i.op == "ecall" and not (ecall_ok and j == count - 1):
                return f"an ecall at pc {p:#x} inside the block"
            self._special(i, p, instret + j)
            k, pc = j + 1, p + i.size
        return self.u.run(pc, count - k)

    # ---- the loop ------------------------------------------------------------------------------

    def run(self, max_blocks: int | None, sweep_every: int | None, end: int | None = None
            ) -> LockstepResult:  # fmt: skip
        res, cpu, u = self.res, self.cpu, self.u
        while (max_blocks is None or res.blocks < max_blocks) and (
            end is None or cpu.instret < end
        ):
            self.u.sync(self.peek)
            start = _Start.of(cpu)
            ctx = u.uc.context_save()
            u.writes.clear()
            u.undo.clear()
            ended: GuestExit | GuestSignal | None = None
            try:
                n = self.engine.step_block()
            except (GuestExit, GuestSignal) as e:
                ended = e
                n = cpu.instret - start.instret
            fault = self._run_unicorn(start.pc, n, start.instret, ecall_ok=ended is None)
            diff = _Diff()
            if fault:
                diff.why.append(fault)
            diff.regs = self._reg_diff(cpu)
            diff.memory = self._mem_diff(u.writes, self.peek.read)
            if isinstance(ended, GuestSignal) and not diff:
                # Ours died at cpu.pc: Unicorn must fault on that instruction too.
                u.writes.clear()
                if u.run(cpu.pc, 1) is None and not _unicorn_allows(_decode(u.fetch(cpu.pc)),
                                                                    ended):  # fmt: skip
                    diff.why.append(f"ours: {ended}; Unicorn executed the instruction")
                n += 1
            if diff:
                self._bisect(start, ctx, n, ended, diff)
            res.blocks += 1
            res.instructions += cpu.instret - start.instret
            if ended is not None:
                if isinstance(ended, GuestExit):
                    res.syscalls += 1
                else:
                    res.signal = ended.signal
                res.status = ended.status
                self.m.status = ended.status
                self.m.signal = ended if isinstance(ended, GuestSignal) else None
                break
            if sweep_every and res.blocks % sweep_every == 0:
                self._check_sweep(start.pc)
        self._check_sweep(cpu.pc)
        return res

    def _check_sweep(self, pc: int) -> None:
        bad = self._sweep()
        if bad:
            lines = [f"lockstep mismatch: memory differs in the sweep after block {self.res.blocks}"
                     f" (pc {pc:#x}): a store only one side made, or one the per-block check"
                     " missed"]  # fmt: skip
            lines += [f"  {a:#x}: ours {o.hex()}  unicorn {t.hex()}" for a, o, t in bad]
            raise LockstepMismatch("\n".join(lines), block_pc=pc, memory=bad)

    # ---- bisection -----------------------------------------------------------------------------

    def _restore(self, start: _Start, ctx: Any) -> tuple[Cpu, AddressSpace, Linux]:
        """Unicorn back at the block's start; a copy of our guest there (its memory Unicorn's)."""
        u = self.u
        for addr, old in reversed(u.undo):
            u.uc.mem_write(addr, old)
        u.uc.context_restore(ctx)
        u.set_regs(start.x, start.pc)
        cpu = Cpu(start.pc)
        cpu.x = list(start.x)
        cpu.instret = start.instret
        cpu.resv = start.resv
        mem = AddressSpace(self.mem.ram_bytes)
        for a in self.mem.areas:
            mem.add_area(a.start, a.end, r=a.r, w=a.w, x=a.x, name=a.name)
        for page in sorted(self.peek.mapped()):
            area = mem.area(page)
            if area is not None and area.r:
                mem.poke(page, u.read(page, PAGE_BYTES))
        return cpu, mem, Linux()

    def _bisect(self, start: _Start, ctx: Any, n: int, ended: BaseException | None,
                diff: _Diff) -> None:  # fmt: skip
        """Step both sides through the block from its start; raise the first divergence."""
        u = self.u
        tier = getattr(self.engine, "name", type(self.engine).__name__)
        cpu, mem, kernel = self._restore(start, ctx)
        stepper = (type(self.engine) if isinstance(self.engine, Interpreter) else Interpreter)(
            cpu, mem, kernel
        )
        who = "the tier" if isinstance(self.engine, Interpreter) else "the reference interpreter"
        head = (f"lockstep mismatch (tier {tier}) in block {self.res.blocks} at pc {start.pc:#x} "
                f"({n} instructions, instret {start.instret})")  # fmt: skip
        listing = []
        pc = start.pc
        for k in range(n):
            word = u.fetch(pc)
            i = _decode(word)
            listing.append(self._line(pc, word, i))
            if i is not None and i.op == "ecall" and k == n - 1 and ended is None:
                break  # the system call itself is not re-run
            before = list(cpu.x)
            u.writes.clear()
            fault = (self._run_unicorn(pc, 1, start.instret + k, ecall_ok=False)
                     if i is None or i.op != "ecall" else "ecall")  # fmt: skip
            ours: BaseException | None = None
            try:
                stepper.step()
            except (GuestExit, GuestSignal) as e:
                ours = e
            step = _Diff()
            if (fault is None) != (ours is None) and not (
                fault is None and _unicorn_allows(i, ours)
            ):
                step.why.append(f"ours: {ours or 'executed it'}; unicorn: {fault or 'executed it'}")
            if ours is None and fault is None:
                step.regs = self._reg_diff(cpu)
                ranges = list(u.writes)
                if i is not None and i.op in STORES:
                    ranges.append(((before[i.rs1] + i.imm) & MASK64, STORES[i.op]))
                elif i is not None and i.op.startswith(("amo", "sc")):
                    ranges.append((before[i.rs1], 4 if i.op.endswith(".w") else 8))
                step.memory = self._mem_diff(ranges, functools.partial(_read_or_empty, mem))
            if step:
                raise LockstepMismatch(
                    self._report(head, f"first divergence at instruction {k + 1} of the block, "
                                 f"stepped with {who}:", listing, step),
                    block_pc=start.pc, pc=pc, word=word, insn=i, regs=step.regs,
                    memory=step.memory,
                )  # fmt: skip
            if ours is not None:
                break
            pc = cpu.pc
        why = ("stepping it with the reference interpreter agrees with Unicorn: the tier's "
               "execution of the block as a whole diverges" if who != "the tier" else
               "re-running the block one instruction at a time agrees with Unicorn: the "
               "difference comes from the block's system call, or the tier's run of the block "
               "does not repeat")  # fmt: skip
        raise LockstepMismatch(
            self._report(head, f"{why}; at the block's end:", listing, diff),
            block_pc=start.pc, regs=diff.regs, memory=diff.memory,
        )  # fmt: skip

    @staticmethod
    def _line(pc: int, word: int, i: Insn | None) -> str:
        raw = (
            f"{word & 0xFFFF_FFFF:08x}" if i is None or i.size == 4 else f"    {word & 0xFFFF:04x}"
        )
        return f"  {pc:8x}:  {raw}  {format_insn(i, pc) if i else '<illegal>'}"

    @staticmethod
    def _report(head: str, what: str, listing: list[str], d: _Diff) -> str:
        lines = [head, what]
        if listing:
            lines.append(listing[-1].strip())
        lines += [f"  {w}" for w in d.why]
        if d.regs:
            lines.append(f"  {'register':12} {'ours':>20} {'unicorn':>20}")
            lines += [f"  {name:12} {_hex(a):>20} {_hex(b):>20}" for name, a, b in d.regs]
        lines += [f"  memory {a:#x}: ours {o.hex()}  unicorn {t.hex()}" for a, o, t in d.memory]
        lines.append("the block up to there:")
        lines += listing
        return "\n".join(lines)


def _read_or_empty(mem: AddressSpace, addr: int, n: int) -> bytes:
    try:
        return mem.read_bytes(addr, n)
    except SegFault:
        return b""


def _hex(v: int | None) -> str:
    return "-" if v is None else f"{v:#x}"


def check(machine: Machine, max_blocks: int | None = None, sweep_every: int | None = None,
          *, max_instructions: int | None = None) -> LockstepResult:  # fmt: skip
    """Run ``machine``'s guest on its tier and on Unicorn in lockstep, a block at a time.

    Parameters
    ----------
    machine : Machine
        A loaded guest (it may already have run: the check starts from its current state).
    max_blocks : int, optional
        Stop after this many blocks (the guest keeps its state); default: until it ends.
    sweep_every : int, optional
        Also compare all mapped memory every this many blocks (always done at the end).
    max_instructions : int, optional
        Stop at the first block boundary after this many more instructions.

    Returns
    -------
    LockstepResult
        Also sets ``machine.status`` / ``machine.signal`` when the guest ended.

    Raises
    ------
    LockstepMismatch
        The first difference, bisected to one instruction where possible.
    """
    end = None if max_instructions is None else machine.cpu.instret + max_instructions
    return _Lockstep(machine).run(max_blocks, sweep_every, end)


def check_random(seed: int, n_blocks: int | None = None, *, tier: str = "interp",
                 max_blocks: int | None = 1_000_000) -> LockstepResult:  # fmt: skip
    """:func:`check` on :func:`~models.xlate.randgen.random_program` ``(seed, n_blocks)``, fed
    :data:`~models.xlate.randgen.STDIN`."""
    from .machine import Machine
    from .randgen import DEFAULT_BLOCKS, STDIN, random_program

    image = random_program(seed, DEFAULT_BLOCKS if n_blocks is None else n_blocks)
    return check(Machine(image, tier=tier, stdin=STDIN), max_blocks)
