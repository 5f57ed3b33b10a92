"""A guest program in the modelled VM, on one tier: the one object the CLI, the tests, the
Unicorn lockstep checker and the benchmarks drive."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import BinaryIO, Protocol

from .elf import Image, read_elf
from .linux import Cpu, GuestExit, GuestSignal, Linux
from .memory import AddressSpace

__all__ = ["Engine", "Machine", "TIERS", "engine_for"]

TIERS = ("interp", "block", "native")


class Engine(Protocol):
    """A tier: executes the guest held by ``cpu``, ``mem`` and ``kernel``."""

    name: str

    def run(self, limit: int | None = None) -> None:
        """Run until the guest exits or dies (raising ``GuestExit`` / ``GuestSignal``), or
        ``limit`` more instructions have retired (then return; a tier may overshoot to the end
        of the block it is in)."""

    def step_block(self) -> int:
        """Execute one basic block (up to and including its control transfer, ecall or
        fence.i); the number of instructions it retired."""


def engine_for(tier: str, cpu: Cpu, mem: AddressSpace, kernel: Linux) -> Engine:
    """The engine of ``tier`` (one of :data:`TIERS`)."""
    if tier == "interp":
        from .interp import Interpreter

        return Interpreter(cpu, mem, kernel)
    if tier == "block":
        from .block import BlockTranslator

        return BlockTranslator(cpu, mem, kernel)
    if tier == "native":
        from .native import NativeTranslator

        return NativeTranslator(cpu, mem, kernel)
    raise ValueError(f"unknown tier {tier!r}: one of {', '.join(TIERS)}")


class Machine:
    """A loaded guest program.

    Parameters
    ----------
    program : Image or path
        The executable (paths are read and checked with :func:`~models.xlate.elf.read_elf`).
    argv : sequence of str
        Its arguments after ``argv[0]`` (the path).
    tier : str
        ``interp``, ``block`` or ``native``.
    stdin : bytes or binary file
        What the guest reads from fd 0.
    stdout, stderr : callable, optional
        Receive the guest's output as it is written (default: collected in :attr:`out`,
        :attr:`err`).

    Members
    -------
    cpu, mem, kernel, engine
    status : int or None
        The exit status once the guest has ended (``128 + signal`` when it died of one).
    signal : GuestSignal or None
    """

    def __init__(
        self,
        program: Image | str | os.PathLike[str],
        argv: Sequence[str] = (),
        *,
        tier: str = "interp",
        stdin: bytes | BinaryIO = b"",
        stdout: Callable[[bytes], object] | None = None,
        stderr: Callable[[bytes], object] | None = None,
        ram_bytes: int = 256 << 20,
    ) -> None:
        self.image = program if isinstance(program, Image) else read_elf(program)
        self.out = bytearray()
        self.err = bytearray()
        self.kernel = Linux(
            stdin=stdin, stdout=stdout or self.out.extend, stderr=stderr or self.err.extend
        )
        self.mem = AddressSpace(ram_bytes)
        self.cpu = self.kernel.start(self.mem, self.image, [self.image.path, *argv])
        self.engine = engine_for(tier, self.cpu, self.mem, self.kernel)
        self.status: int | None = None
        self.signal: GuestSignal | None = None

    def run(self, limit: int | None = None) -> int | None:
        """Run to the end (or ``limit`` instructions); the exit status, None if still running."""
        try:
            self.engine.run(limit)
        except GuestExit as e:
            self.status = e.status
        except GuestSignal as e:
            self.signal = e
            self.status = e.status
        return self.status
