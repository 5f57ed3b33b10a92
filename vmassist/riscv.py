"""The RISC-V guest programs of ``examples/xlate``: build them, and run them on qemu.

Each program is one C file linked with a tiny runtime (``examples/xlate/rt``: ``_start``, the
system-call glue, a linker script) against picolibc, into a static RV64IMAC Linux user-mode ELF
that only ever makes the system calls read, write, exit_group and brk. The translation layer in
``models/xlate`` runs these ELFs; ``qemu-riscv64-static`` runs them too, and the two must agree on
stdout and exit status.

Every program takes an optional scale factor as ``argv[1]`` (default 1: at most a couple of million
instructions, so that a slow interpreter gets through it).

Two ``-march`` strings are needed because GCC 12 follows ISA spec 20191213: ``csrr`` (Zicsr) and
``fence.i`` (Zifencei) are no longer part of I, so the compiler must be told about them, but its
multilib matcher does not know that these extensions are additive and, given
``rv64imac_zicsr_zifencei``, falls back to the default rv64imafdc/lp64d libraries. So sources are
compiled with :data:`COMPILE_FLAGS` and linked with :data:`LINK_FLAGS`, whose plain ``rv64imac``
selects the rv64imac/lp64 picolibc and libgcc.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path

__all__ = [
    "PROGRAMS",
    "SOURCE_DIR",
    "BUILD_DIR",
    "CC",
    "QEMU",
    "DEBIAN_PACKAGES",
    "COMPILE_FLAGS",
    "LINK_FLAGS",
    "ToolMissing",
    "BuildError",
    "build",
    "build_all",
    "run_qemu",
]

ROOT = Path(__file__).resolve().parent.parent
#: The C sources, one program per ``<name>.c``, and the runtime in ``rt/``.
SOURCE_DIR = ROOT / "examples" / "xlate"
#: Where :func:`build` puts ``<name>.elf`` by default.
BUILD_DIR = ROOT / "build" / "xlate"

#: Every program, by the name of its source file.
PROGRAMS = (
    "crc32",
    "sort",
    "matmul",
    "sieve",
    "strings",
    "recursion",
    "smc",
    "counters",
    "atomics",
    "arith",
)

#: The cross compiler (its binutils come with it) and the reference emulator.
CC = "riscv64-unknown-elf-gcc"
QEMU = "qemu-riscv64-static"

#: The Debian package (``make setup`` installs it) that provides each external tool.
DEBIAN_PACKAGES = {
    CC: "gcc-riscv64-unknown-elf",
    "picolibc.specs": "picolibc-riscv64-unknown-elf",
    QEMU: "qemu-user-static",
}

#: Flags for compiling C and assembly sources (see the module docstring for the -march).
COMPILE_FLAGS = (
    "--specs=picolibc.specs",
    "-march=rv64imac_zicsr_zifencei",
    "-mabi=lp64",
    "-O2",
    "-Wall",
    "-Wextra",
)
#: Flags for linking: our crt0 instead of picolibc's, an integer-only printf (no soft-float code
#: pulled in), our linker script (added by :func:`build`).
LINK_FLAGS = (
    "--specs=picolibc.specs",
    "-march=rv64imac",
    "-mabi=lp64",
    "-static",
    "-nostartfiles",
    "-DPICOLIBC_INTEGER_PRINTF_SCANF",
)

_RUNTIME_DIR = SOURCE_DIR / "rt"
_RUNTIME_SOURCES = ("crt0.S", "syscalls.c")
_LINKER_SCRIPT = "guest.lds.S"
#: Programs that write code into the "awx" .smc section: their linker script gets an R+W+X
#: segment for it (and ld is told that this is intended).
_SMC_PROGRAMS = frozenset({"smc"})


class ToolMissing(RuntimeError):
    """An external tool (compiler, picolibc, qemu) is not installed; the message names it and
    says that ``make setup`` installs it."""

    def __init__(self, tool: str):
        package = DEBIAN_PACKAGES.get(tool, tool)
        super().__init__(f"{tool} not found: `make setup` installs it (Debian package {package})")


class BuildError(RuntimeError):
    """A guest program failed to compile or link; the message holds the compiler's output."""


def _which(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ToolMissing(tool)
    return path


@cache
def _compiler() -> tuple[str, str]:
    """The compiler's path and version line, after checking that picolibc is installed."""
    cc = _which(CC)
    specs = subprocess.run(
        [cc, "-print-file-name=picolibc.specs"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if not os.path.isabs(specs) or not os.path.exists(specs):
        raise ToolMissing("picolibc.specs")
    version = subprocess.run(
        [cc, "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    return cc, version


def _build_key(name: str, version: str) -> str:
    """A hash of everything the ELF depends on: sources, runtime, flags, compiler version."""
    h = hashlib.sha256()
    h.update(repr((version, COMPILE_FLAGS, LINK_FLAGS, name in _SMC_PROGRAMS)).encode())
    for path in [SOURCE_DIR / f"{name}.c", *sorted(_RUNTIME_DIR.iterdir())]:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _run(cmd: list[str], name: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(
            f"building {name}: {Path(cmd[0]).name} exited with {result.returncode}:\n"
            f"{' '.join(cmd)}\n{result.stdout}{result.stderr}"
        )


def build(name: str, out_dir: Path | None = None) -> Path:
    """Compile and link one guest program, unless it is already up to date.

    The ELF is rebuilt when its key (a hash of the program's source, the runtime, the flags and
    the compiler version, kept in ``<name>.key`` beside it) changes. The new ELF is linked in a
    temporary directory and moved into place with :func:`os.replace`, so concurrent builds (two
    pytest-xdist workers) never see a half-written file.

    Parameters
    ----------
    name : str
        One of :data:`PROGRAMS`.
    out_dir : Path, optional
        Where to put ``<name>.elf``; default :data:`BUILD_DIR`.

    Returns
    -------
    Path
        The ELF.

    Raises
    ------
    ValueError
        ``name`` is not one of :data:`PROGRAMS`.
    ToolMissing
        The cross compiler or picolibc is not installed.
    BuildError
        Compiling or linking failed.
    """
    if name not in PROGRAMS:
        raise ValueError(f"unknown program {name!r}; expected one of {', '.join(PROGRAMS)}")
    out_dir = BUILD_DIR if out_dir is None else Path(out_dir)
    cc, version = _compiler()
    key = _build_key(name, version)
    elf = out_dir / f"{name}.elf"
    stamp = out_dir / f"{name}.key"
    try:
        if elf.exists() and stamp.read_text() == key:
            return elf
    except FileNotFoundError:
        pass

    out_dir.mkdir(parents=True, exist_ok=True)
    smc = name in _SMC_PROGRAMS
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f".{name}-") as tmp_name:
        tmp = Path(tmp_name)
        sources = [SOURCE_DIR / f"{name}.c", *(_RUNTIME_DIR / s for s in _RUNTIME_SOURCES)]
        objects = []
        for src in sources:
            obj = tmp / f"{src.name}.o"
            _run([cc, *COMPILE_FLAGS, f"-I{_RUNTIME_DIR}", "-c", str(src), "-o", str(obj)], name)
            objects.append(str(obj))
        # -undef: otherwise cpp would replace the `riscv` of OUTPUT_ARCH(riscv) by 1.
        lds = tmp / "guest.lds"
        cpp = [cc, "-E", "-P", "-undef", "-x", "c", *(["-DXLATE_SMC"] if smc else [])]
        _run([*cpp, str(_RUNTIME_DIR / _LINKER_SCRIPT), "-o", str(lds)], name)
        link = [cc, *LINK_FLAGS, "-T", str(lds), *(["-Wl,--no-warn-rwx-segments"] if smc else [])]
        _run([*link, *objects, "-o", str(tmp / elf.name)], name)
        os.replace(tmp / elf.name, elf)
        (tmp / stamp.name).write_text(key)
        os.replace(tmp / stamp.name, stamp)
    return elf


def build_all(out_dir: Path | None = None) -> dict[str, Path]:
    """:func:`build` every program in :data:`PROGRAMS`; returns the ELF of each by name."""
    return {name: build(name, out_dir) for name in PROGRAMS}


def run_qemu(elf: Path, args: Sequence[str] = (), timeout: float = 60) -> tuple[bytes, int]:
    """Run a guest program on ``qemu-riscv64-static`` with stdin empty.

    Parameters
    ----------
    elf : Path
        The program, from :func:`build`.
    args : sequence of str
        Its arguments after ``argv[0]`` (the scale factor, for the programs of :data:`PROGRAMS`).
    timeout : float
        Seconds before it is killed (:class:`subprocess.TimeoutExpired`).

    Returns
    -------
    tuple of (bytes, int)
        Its stdout, and its exit status as a shell reports it: ``128 + N`` when the guest died
        of signal N (qemu passes the guest's fatal signal on), as ``vmassist xlate run`` and
        :class:`~models.xlate.machine.Machine` report it. Its stderr (and qemu's messages) go to
        ours.

    Raises
    ------
    ToolMissing
        qemu-riscv64-static is not installed.
    """
    qemu = _which(QEMU)
    result = subprocess.run(
        [qemu, str(elf), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        timeout=timeout,
    )
    status = result.returncode
    return result.stdout, status if status >= 0 else 128 - status
