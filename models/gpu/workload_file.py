"""Workload files for ``vmassist gpu run`` (``docs/gpu.md``): load and validate.

A workload is TOML::

    seed = 1                # 0 .. 2**64-1: the command generator and the executor's jitter
    commands = 2000         # 1 .. 1000000 random commands (not control flow) ...
    per_submission = 16     # ... submitted 1 .. 1024 ring commands at a time
    data_pages = 256        # 1 .. 8192 graphics pages the commands read and write
    batch_pages = 16        # 0 .. 1024 graphics pages for batch buffers
    ring_pages = 4          # 1 .. 64: the ring's size in 4 KiB pages
    interval = 20000        # 1000 .. 10**9 GPU cycles between checkpoints
    precopy = true          # send dirty pages while the GPU runs, between checkpoints
    link_gbytes = 10        # 1 .. 1000 GB/s: the link to the secondary (GPU clock 1 GHz)

    [[failover]]            # optional, any number: each fires once, the first time it is reached
    at = "checkpoint"       # primary | checkpoint
    index = 3               # the checkpoint's number (1 = the first after the initial copy),
                            # or the primary's submission (1 = the first)
    phase = "transfer"      # checkpoint only: align | drain | snapshot | transfer | commit,
                            # the failure comes just before that phase (transfer: mid-way)
    after = 10              # transfer only: pages sent before the failure (default: half)
    # command = 5           # primary only: commands of the submission run before the failure
                            # (default 0: before it is submitted; clamped to its length)

After a failover the restored primary re-runs the workload from the secondary's checkpoint,
with the same numbers: a submission or a checkpoint may so be reached twice, and a
``[[failover]]`` fires only the first time (two tables with the same point fire one after
the other). A point never reached is reported in ``summary.json``.

Instead of ``commands`` and ``per_submission``, explicit submissions may be given: each
``[[submit]]`` table is one RING_TAIL write, its ``[[submit.commands]]`` the ring commands in
order (no batch buffers). Addresses (``at``, ``dst``, ``src``) are byte offsets into the data
area, ``data_pages`` pages mapped at consecutive graphics addresses (scattered in
guest-physical memory), and what a command reads or writes must lie inside it::

    [[submit]]
    [[submit.commands]]
    op = "XY_COLOR_BLT"         # dst, pitch (1 .. 0x7fff), rect = [x1, y1, x2, y2] (right and
    dst = 0                     # bottom exclusive), color; depth = 8 | 16 | 32 (32); at 32,
    pitch = 4096                # write_rgb / write_alpha = false keep those bytes of a pixel
    rect = [0, 0, 1024, 4]
    color = 0xff00ff
    [[submit.commands]]
    op = "XY_SRC_COPY_BLT"      # as XY_COLOR_BLT without color, and src, src_pitch,
    dst = 0x8000                # src_xy = [x, y]
    pitch = 4096
    rect = [0, 0, 16, 16]
    src = 0
    src_pitch = 4096
    src_xy = [0, 0]
    # op = "MI_STORE_DATA_IMM", at, value; qword = true stores 8 bytes
    # op = "PIPE_CONTROL", cs_stall; post_sync = none | immediate | depth_count | timestamp,
    #      with at (the qword written) and, for immediate, data
    # op = "MI_LOAD_REGISTER_IMM", reg (a CS_GPR or MI_PREDICATE dword), value
    # op = "MI_NOOP"; id = the identification number to write

Every problem is one :class:`~vmassist.errors.UserError` naming the file and the field
(``failover[1].phase``, ``submit[0].commands[2].rect``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from vmassist.errors import UserError, read_toml, type_name
from vmassist.formats.gen9 import GTT_PAGE_BITS, ColorDepth, PostSync
from vmassist.tomltable import Table, hexfmt, tables

from .gen9 import (
    mi_load_register_imm,
    mi_noop,
    mi_store_data_imm,
    pipe_control,
    xy_color_blt,
    xy_src_copy_blt,
)
from .scanner import LRI_WHITELIST

__all__ = [
    "FAIL_KINDS",
    "PHASES",
    "GFX_BASE",
    "GPA_BASE",
    "FailAt",
    "WorkloadSpec",
    "load_workload",
    "parse_workload",
]

FAIL_KINDS = ("primary", "checkpoint")
PHASES = ("align", "drain", "snapshot", "transfer", "commit")
"""The checkpoint's phases, in order; a failure at a phase comes just before it (``transfer``:
after some of its pages)."""

GFX_BASE = 0x10_0000
"""Graphics address of the ring; the batch pages follow it, then the data pages."""
GPA_BASE = 0
"""Guest-physical pages are drawn from here on: inside the tracker's aperture (base 0)."""

_PAGE = 1 << GTT_PAGE_BITS
_DEPTHS = {8: ColorDepth.B8, 16: ColorDepth.B16_565, 32: ColorDepth.B32}
_POST_SYNC = {
    "none": PostSync.NONE,
    "immediate": PostSync.IMMEDIATE,
    "depth_count": PostSync.DEPTH_COUNT,
    "timestamp": PostSync.TIMESTAMP,
}


@dataclass(frozen=True)
class FailAt:
    """One injected failure of the primary.

    Members
    -------
    kind : str
        ``primary`` (while it runs its workload) or ``checkpoint`` (during a checkpoint).
    index : int
        The submission (1-based) or the checkpoint's number (1 = the first after the
        initial full copy).
    phase : str or None
        ``checkpoint`` only: the phase (:data:`PHASES`) the failure comes before.
    command : int
        ``primary`` only: commands of the submission that run before the failure (0: the
        failure comes before the submission; more than it holds: after all of them).
    after : int or None
        ``transfer`` only: pages sent before the failure (``None``: half of them).
    """

    kind: str
    index: int
    phase: str | None = None
    command: int = 0
    after: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAIL_KINDS:
            raise ValueError(f"kind must be one of {FAIL_KINDS}, not {self.kind!r}")
        if self.index < 1:
            raise ValueError(f"index must be at least 1, not {self.index}")
        if (self.kind == "checkpoint") != (self.phase is not None):
            raise ValueError("a phase is given for, and only for, a checkpoint failure")
        if self.phase is not None and self.phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, not {self.phase!r}")
        if (self.command and self.kind != "primary") or self.command < 0:
            raise ValueError(f"command must be 0 or more, for a primary failure: {self.command}")
        if self.after is not None and (self.phase != "transfer" or self.after < 0):
            raise ValueError(f"after must be 0 or more, for a transfer failure: {self.after}")

    def describe(self) -> str:
        if self.kind == "primary":
            return f"primary, submission {self.index}, after {self.command} command(s)"
        return f"checkpoint {self.index}, before {self.phase}"


@dataclass(frozen=True)
class WorkloadSpec:
    """A validated workload (see the module docstring for the fields and their ranges).

    Members
    -------
    submits : tuple of tuple of int, or None
        The explicit submissions' dwords, or ``None``: ``commands`` random commands. With
        explicit submissions ``commands`` is their number of commands, ``per_submission`` 1.
    source : str
        The file it came from (for messages).
    """

    seed: int = 1
    commands: int = 2000
    per_submission: int = 16
    data_pages: int = 256
    batch_pages: int = 16
    ring_pages: int = 4
    interval: int = 20000
    precopy: bool = True
    link_gbytes: int = 10
    failovers: tuple[FailAt, ...] = ()
    submits: tuple[tuple[int, ...], ...] | None = None
    source: str = field(default="<workload>", compare=False)

    @property
    def mapped_pages(self) -> int:
        """Graphics pages mapped: ring, batches and data."""
        return self.ring_pages + self.batch_pages + self.data_pages

    @property
    def data_base(self) -> int:
        """Graphics address of the data area."""
        return GFX_BASE + (self.ring_pages + self.batch_pages) * _PAGE


# ---- parsing -------------------------------------------------------------------------------


def load_workload(path: str | os.PathLike[str]) -> WorkloadSpec:
    """Read and validate a workload file.

    Raises
    ------
    UserError
        Unreadable file, malformed TOML, unknown field, wrong type or a value out of range;
        the message names the file and the field.
    """
    return parse_workload(read_toml(path), os.fspath(path))


def parse_workload(doc: dict[str, Any], source: str = "<workload>") -> WorkloadSpec:
    """Validate a parsed TOML document into a :class:`WorkloadSpec`.

    Raises
    ------
    UserError
        As :func:`load_workload`.
    """
    keys = (
        "seed",
        "commands",
        "per_submission",
        "data_pages",
        "batch_pages",
        "ring_pages",
        "interval",
        "precopy",
        "link_gbytes",
        "failover",
        "submit",
    )
    top = Table(source, doc, "", (), keys)
    explicit = "submit" in doc
    for key in ("commands", "per_submission"):
        if explicit and key in doc:
            raise top.error(key, "not allowed with [[submit]] (explicit submissions)")
    d = WorkloadSpec()
    spec = WorkloadSpec(
        seed=top.int("seed", d.seed),
        commands=top.int("commands", d.commands, lo=1, hi=1_000_001),
        per_submission=top.int("per_submission", d.per_submission, lo=1, hi=1025),
        data_pages=top.int("data_pages", d.data_pages, lo=1, hi=8193),
        batch_pages=top.int("batch_pages", d.batch_pages, hi=1025),
        ring_pages=top.int("ring_pages", d.ring_pages, lo=1, hi=65),
        interval=top.int("interval", d.interval, lo=1000, hi=10**9 + 1),
        precopy=top.bool("precopy", d.precopy),
        link_gbytes=top.int("link_gbytes", d.link_gbytes, lo=1, hi=1001),
        failovers=tuple(
            _failover(source, t, i) for i, t in enumerate(tables(source, doc, "failover"))
        ),
        source=source,
    )
    if explicit:
        subs = tables(source, doc, "submit")
        if not subs:
            raise top.error("submit", "needs at least one [[submit]] table")
        submits = tuple(_submit(source, t, f"submit[{i}]", spec) for i, t in enumerate(subs))
        count = sum(len(t["commands"]) for t in subs)
        spec = replace(spec, submits=submits, commands=count, per_submission=1)
    return spec


def _failover(source: str, t: Any, i: int) -> FailAt:
    where = f"failover[{i}]"
    r = Table(source, t, where, ("at", "index"), ("phase", "command", "after"))
    kind = r.choice("at", FAIL_KINDS)
    index = r.int("index", lo=1, hi=1 << 31)
    if kind == "primary":
        for key in ("phase", "after"):
            if key in t:
                raise r.error(key, 'only for at = "checkpoint"')
        return FailAt(kind, index, command=r.int("command", 0, hi=1 << 31))
    if "command" in t:
        raise r.error("command", 'only for at = "primary"')
    if "phase" not in t:
        raise r.error("phase", f'missing: at = "checkpoint" needs one of {" | ".join(PHASES)}')
    phase = r.choice("phase", PHASES)
    if "after" in t and phase != "transfer":
        raise r.error("after", 'only for phase = "transfer"')
    after = r.int("after", hi=1 << 31) if "after" in t else None
    return FailAt(kind, index, phase, after=after)


_OPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "MI_NOOP": ((), ("id",)),
    "MI_STORE_DATA_IMM": (("at", "value"), ("qword",)),
    "MI_LOAD_REGISTER_IMM": (("reg", "value"), ()),
    "PIPE_CONTROL": ((), ("post_sync", "at", "data", "cs_stall")),
    "XY_COLOR_BLT": (("dst", "pitch", "rect", "color"), ("depth", "write_rgb", "write_alpha")),
    "XY_SRC_COPY_BLT": (
        ("dst", "pitch", "rect", "src", "src_pitch", "src_xy"),
        ("depth", "write_rgb", "write_alpha"),
    ),
}


def _submit(source: str, t: Any, where: str, spec: WorkloadSpec) -> tuple[int, ...]:
    r = Table(source, t, where, ("commands",), ())
    cmds = t["commands"]
    if not isinstance(cmds, list) or not cmds:
        raise r.error("commands", "must be a non-empty array of tables ([[submit.commands]])")
    words: list[int] = []
    for j, c in enumerate(cmds):
        words += _command(source, c, f"{where}.commands[{j}]", spec)
    ring = spec.ring_pages * _PAGE
    if 4 * (len(words) + len(words) % 2) > ring - 8:
        raise r.error(
            "commands", f"{4 * len(words)} bytes of commands do not fit the ring ({ring} bytes)"
        )
    return tuple(words)


def _command(source: str, c: Any, where: str, spec: WorkloadSpec) -> list[int]:
    if not isinstance(c, dict):
        raise UserError(source, f"must be a table, not {type_name(c)}", where)
    op = Table(source, {"op": c.get("op")} if "op" in c else {}, where, ("op",), ()).choice(
        "op", _OPS
    )
    required, optional = _OPS[op]
    r = Table(source, c, where, ("op", *required), optional)
    size = spec.data_pages * _PAGE
    base = spec.data_base

    def inside(key: str, lo: int, hi: int) -> None:
        """The bytes [lo, hi) of the data area that ``key`` makes the command touch."""
        if lo < 0 or hi > size:
            span = f"{hexfmt(lo)}..{hexfmt(hi)}"
            raise r.error(key, f"touches bytes {span} outside the data area (0..{hexfmt(size)})")

    def offset(key: str, align: int, n: int) -> int:
        at = r.int(key, hi=size, address=True)
        if at % align:
            raise r.error(key, f"{hexfmt(at)} is not {align}-byte aligned")
        inside(key, at, at + n)
        return base + at

    if op == "MI_NOOP":
        ident = r.int("id", 0, hi=1 << 22)
        return mi_noop(ident, write_id="id" in c)
    if op == "MI_STORE_DATA_IMM":
        qword = r.bool("qword", False)
        n = 8 if qword else 4
        at = offset("at", n, n)
        return mi_store_data_imm(at, r.int("value", hi=1 << (8 * n), address=True), qword=qword)
    if op == "MI_LOAD_REGISTER_IMM":
        reg = r.int("reg", hi=1 << 23, address=True)
        if reg not in LRI_WHITELIST:
            raise r.error("reg", f"{reg:#x} is not a register MI_LOAD_REGISTER_IMM may write")
        return mi_load_register_imm([(reg, r.int("value", hi=1 << 32, address=True))])
    if op == "PIPE_CONTROL":
        post = _POST_SYNC[r.choice("post_sync", _POST_SYNC, "none")]
        if post == PostSync.NONE:
            for key in ("at", "data"):
                if key in c:
                    raise r.error(key, 'only with a post_sync other than "none"')
            return pipe_control(cs_stall=r.bool("cs_stall", False))
        if "at" not in c:
            raise r.error("at", "missing: a post-sync operation writes a qword there")
        if "data" in c and post != PostSync.IMMEDIATE:
            raise r.error("data", 'only with post_sync = "immediate"')
        return pipe_control(
            post_sync=post,
            address=offset("at", 8, 8),
            data=r.int("data", 0, address=True),
            cs_stall=r.bool("cs_stall", False),
        )
    # the blits
    depth = r.int("depth", 32, hi=33)
    if depth not in _DEPTHS:
        raise r.error("depth", f"must be 8, 16 or 32, not {depth}")
    bpp = _DEPTHS[depth].bytes_per_pixel
    x1, y1, x2, y2 = r.ints("rect", 4)
    if x2 < x1 or y2 < y1:
        raise r.error("rect", f"[{x1}, {y1}, {x2}, {y2}] is inverted: x2 < x1 or y2 < y1")
    w, h = x2 - x1, y2 - y1
    masks = {"write_rgb": r.bool("write_rgb", True), "write_alpha": r.bool("write_alpha", True)}
    if depth != 32 and not all(masks.values()):
        raise r.error("write_rgb" if not masks["write_rgb"] else "write_alpha", "only at depth 32")
    pitch = r.int("pitch", lo=1, hi=0x8000)
    dst = r.int("dst", hi=size, address=True)
    if w and h:
        inside("rect", dst + y1 * pitch + x1 * bpp, dst + (y2 - 1) * pitch + x2 * bpp)
    if op == "XY_COLOR_BLT":
        color = r.int("color", hi=1 << 32, address=True)
        return xy_color_blt(
            base + dst, pitch, (x1, y1, x2, y2), color, depth=_DEPTHS[depth], **masks
        )
    src_pitch = r.int("src_pitch", lo=1, hi=0x8000)
    src = r.int("src", hi=size, address=True)
    sx, sy = r.ints("src_xy", 2)
    if w and h:
        inside(
            "src_xy",
            src + sy * src_pitch + sx * bpp,
            src + (sy + h - 1) * src_pitch + (sx + w) * bpp,
        )
    return xy_src_copy_blt(
        base + dst,
        pitch,
        (x1, y1, x2, y2),
        base + src,
        src_pitch,
        (sx, sy),
        depth=_DEPTHS[depth],
        **masks,
    )
