"""The guest's Linux: process start-up (stack, auxiliary vector, ``brk``) and system calls."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from .elf import Image, load_elf
from .memory import PAGE_BYTES, AddressSpace, Area, SegFault

__all__ = ["Cpu", "GuestExit", "GuestSignal", "Linux", "STACK_TOP", "SYSCALLS", "ENOSYS"]

log = logging.getLogger("models.xlate")

STACK_TOP = 0x3F_FFFF_F000
"""Top of the guest stack: inside both Sv39's and x86-64's lower half."""
STACK_BYTES = 8 << 20
BRK_LIMIT = 1 << 30
"""The heap may grow this far past the executable's end."""
ENOSYS, EBADF, EFAULT = 38, 9, 14
SIGILL, SIGTRAP, SIGBUS, SIGSEGV = 4, 5, 7, 11
SYSCALLS = {63: "read", 64: "write", 66: "writev", 57: "close", 93: "exit", 94: "exit_group",
            214: "brk"}  # fmt: skip
_AT = {"phdr": 3, "phent": 4, "phnum": 5, "pagesz": 6, "entry": 9, "hwcap": 16, "random": 25}
_HWCAP = sum(1 << (ord(c) - ord("A")) for c in "IMAC")


class GuestExit(Exception):
    """The guest called exit or exit_group."""

    def __init__(self, status: int) -> None:
        super().__init__(f"exit status {status}")
        self.status = status


class GuestSignal(Exception):
    """The guest died of a signal (a fault Linux would turn into SIGSEGV, SIGILL, SIGTRAP).

    Its exit status is ``128 + signal``, as a shell reports it."""

    def __init__(self, signal: int, pc: int, why: str) -> None:
        super().__init__(f"signal {signal} at pc {pc:#x}: {why}")
        self.signal = signal
        self.pc = pc
        self.status = 128 + signal


class Cpu:
    """The guest's architectural state: ``x[0..31]`` (unsigned 64-bit, ``x[0]`` stays 0), ``pc``,
    retired instructions, the LR/SC reservation."""

    __slots__ = ("instret", "pc", "resv", "x")

    def __init__(self, pc: int = 0) -> None:
        self.x = [0] * 32
        self.pc = pc
        self.instret = 0
        self.resv: int | None = None

    def counter(self, which: str) -> int:
        """``cycle``, ``time`` or ``instret``: one cycle per instruction, a 10 MHz timebase at
        an assumed 1 GHz. Identical in every tier, so runs are reproducible."""
        return self.instret // 100 if which == "time" else self.instret


@dataclass
class Linux:
    """A process's kernel side.

    Parameters
    ----------
    stdin : bytes or binary file
        What ``read(0, ...)`` reads from, then end of file.
    stdout, stderr : callable
        Called with every byte string the guest writes to fd 1 / fd 2.

    Members
    -------
    unknown : list of (int, int)
        ``(syscall number, pc)`` of every unknown system call (answered ``-ENOSYS``, logged).
    syscalls : int
        System calls made.
    """

    stdin: bytes | BinaryIO = b""
    stdout: Callable[[bytes], object] = lambda b: None
    stderr: Callable[[bytes], object] = lambda b: None
    unknown: list[tuple[int, int]] = field(default_factory=list)
    syscalls: int = 0
    _heap: Area | None = None
    _brk: int = 0

    def start(self, mem: AddressSpace, image: Image, argv: Sequence[str], env: Sequence[str] = ()
              ) -> Cpu:  # fmt: skip
        """Load ``image`` into ``mem``, build the initial stack (argc, argv, envp, auxv) and the
        heap; the CPU to start."""
        load_elf(mem, image)
        heap_start = (image.end + PAGE_BYTES - 1) & ~(PAGE_BYTES - 1)
        self._heap = mem.add_area(heap_start, heap_start, r=True, w=True, x=False, name="heap")
        self._brk = heap_start
        mem.add_area(STACK_TOP - STACK_BYTES, STACK_TOP, r=True, w=True, x=False, name="stack")
        sp = STACK_TOP
        pointers = []
        for s in [*argv, *env]:
            b = s.encode() + b"\0"
            sp -= len(b)
            mem.write_bytes(sp, b)
            pointers.append(sp)
        sp -= 16
        random_at = sp
        mem.write_bytes(random_at, bytes(range(1, 17)))  # AT_RANDOM: fixed, runs are reproducible
        aux = {
            "phdr": image.phoff_vaddr, "phent": 56, "phnum": image.phnum, "pagesz": PAGE_BYTES,
            "entry": image.entry, "hwcap": _HWCAP, "random": random_at,
        }  # fmt: skip
        words = [len(argv), *pointers[: len(argv)], 0, *pointers[len(argv) :], 0]
        for k, v in aux.items():
            words += [_AT[k], v]
        words += [0, 0]
        sp = (sp - 8 * len(words)) & ~15
        mem.write_bytes(sp, b"".join(w.to_bytes(8, "little") for w in words))
        cpu = Cpu(image.entry)
        cpu.x[2] = sp
        return cpu

    def syscall(self, cpu: Cpu, mem: AddressSpace) -> None:
        """Perform the system call in ``a7`` with ``a0..a5``; the result goes to ``a0``.

        Raises
        ------
        GuestExit
            exit / exit_group.
        """
        x = cpu.x
        num, a0, a1, a2 = x[17], x[10], x[11], x[12]
        self.syscalls += 1
        if num in (93, 94):
            raise GuestExit(a0 & 0xFF)
        name = SYSCALLS.get(num)
        try:
            ret = self._dispatch(name, num, cpu, mem, a0, a1, a2)
        except SegFault:  # a bad buffer pointer: Linux answers -EFAULT
            ret = -EFAULT
        x[10] = ret & ((1 << 64) - 1)

    def _dispatch(self, name: str | None, num: int, cpu: Cpu, mem: AddressSpace, a0: int, a1: int,
                  a2: int) -> int:  # fmt: skip
        if name is None:
            self.unknown.append((num, cpu.pc))
            log.warning("unknown syscall %d at pc %#x: -ENOSYS", num, cpu.pc)
            ret = -ENOSYS
        elif name == "write":
            ret = self._write(mem, a0, a1, a2)
        elif name == "writev":
            ret = 0
            for i in range(a2):
                base, n = mem.load(a1 + 16 * i, 8), mem.load(a1 + 16 * i + 8, 8)
                r = self._write(mem, a0, base, n)
                if r < 0:
                    ret = r
                    break
                ret += r
        elif name == "read":
            if a0 != 0:
                ret = -EBADF
            else:
                if isinstance(self.stdin, bytes):
                    self.stdin = io.BytesIO(self.stdin)
                data = self.stdin.read(min(a2, 1 << 20))
                mem.write_bytes(a1, data)
                ret = len(data)
        elif name == "close":
            ret = 0 if a0 <= 2 else -EBADF
        else:  # brk
            ret = self._do_brk(a0)
        return ret

    def _write(self, mem: AddressSpace, fd: int, buf: int, n: int) -> int:
        if fd not in (1, 2):
            return -EBADF
        data = mem.read_bytes(buf, n)
        (self.stdout if fd == 1 else self.stderr)(data)
        return len(data)

    def _do_brk(self, new: int) -> int:
        heap = self._heap
        assert heap is not None
        if heap.start <= new <= heap.start + BRK_LIMIT:
            self._brk = new
            heap.end = max(heap.end, (new + PAGE_BYTES - 1) & ~(PAGE_BYTES - 1))
        return self._brk
