"""MMU scenario files (``DESIGN.md``, "Scenario file (MMU)"): load, validate, write, generate.

A scenario is TOML::

    vpid = 1                      # 0..65535 (default 1)
    mode = "ept"                  # initial mode: ept | shadow (default ept)

    [[guest]]                     # guest mappings (x86-64 4-level tables)
    gva = 0x7f00_0000_0000        # canonical, aligned to size, not in PML4 slot 511
    gpa = 0x20_0000               # aligned, below 2**46, outside [0xFF00_0000, 4 GiB)
    size = "4K"                   # 4K | 2M | 1G
    writable = true               # default true
    user = true                   # default false
    nx = false                    # default false

    [[ept]]                       # EPT mappings GPA -> HPA
    gpa = 0x0                     # aligned, below 2**46, outside [0xFF00_0000, 4 GiB)
    hpa = 0x1_0000_0000           # aligned, the page below 1 TiB
    size = "2M"
    r = true                      # r, w, x default true; r = w = x = false is a hole,
    w = true                      # w without r a misconfiguration (both give EPT violations)
    x = true

    [[ops]]                       # executed in order
    op = "access"                 # gva, kind = read | write | fetch, user (default false),
    gva = 0x7f00_0000_0123        # data (write only, default 0): the 64-bit word stored
    kind = "read"
    # op = "switch", mode = "ept" | "shadow"
    # op = "guest_pte_write", gva (inside a guest mapping), and at least one of present, gpa
    #    (aligned to that mapping's size), writable, user, nx
    # op = "invlpg", gva
    # op = "inject", entry (TLB entry 0..255), mask (XORed into its page frame, < 2**34):
    #    fault injection, a debug aid; results are then architectural only in shadow mode

Guest mappings may not overlap each other, nor EPT mappings each other. Every problem is
reported as one :class:`~vmassist.errors.UserError` naming the file and the field
(``ops[3].kind``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmassist.errors import UserError, read_toml, type_name
from vmassist.formats.mmu import (
    GPT_GPA_BASE,
    PA_BITS,
    TABLE_HPA_MIN,
    VA_BITS,
    VPID_BITS,
    AccessKind,
    PageSize,
    level_index,
)
from vmassist.tomltable import Table, tables

__all__ = [
    "Scenario",
    "GuestMapping",
    "EptMapping",
    "AccessOp",
    "SwitchOp",
    "PteWriteOp",
    "InvlpgOp",
    "InjectOp",
    "Op",
    "SIZE_NAMES",
    "KIND_NAMES",
    "load_scenario",
    "parse_scenario",
    "check_scenario",
    "scenario_to_toml",
    "random_scenario",
]

SIZE_NAMES = {"4K": PageSize.SIZE_4K, "2M": PageSize.SIZE_2M, "1G": PageSize.SIZE_1G}
KIND_NAMES = {"read": AccessKind.READ, "write": AccessKind.WRITE, "fetch": AccessKind.FETCH}
_SIZE_STR = {v: k for k, v in SIZE_NAMES.items()}
_KIND_STR = {v: k for k, v in KIND_NAMES.items()}
_MODES = ("ept", "shadow")
_GPT_END = 1 << 32
_INJ_MASK_BITS = PA_BITS - 12


@dataclass(frozen=True)
class GuestMapping:
    gva: int
    gpa: int
    size: PageSize
    writable: bool = True
    user: bool = False
    nx: bool = False


@dataclass(frozen=True)
class EptMapping:
    gpa: int
    hpa: int
    size: PageSize
    r: bool = True
    w: bool = True
    x: bool = True


@dataclass(frozen=True)
class AccessOp:
    gva: int
    kind: AccessKind
    user: bool = False
    data: int = 0


@dataclass(frozen=True)
class SwitchOp:
    mode: str


@dataclass(frozen=True)
class PteWriteOp:
    """The guest changes the PTE that maps ``gva``; None leaves a field as it is."""

    gva: int
    present: bool | None = None
    gpa: int | None = None
    writable: bool | None = None
    user: bool | None = None
    nx: bool | None = None

    def fields(self) -> dict[str, int | bool]:
        """The fields this write changes."""
        return {
            k: v
            for k, v in (
                ("present", self.present),
                ("gpa", self.gpa),
                ("writable", self.writable),
                ("user", self.user),
                ("nx", self.nx),
            )
            if v is not None
        }


@dataclass(frozen=True)
class InvlpgOp:
    gva: int


@dataclass(frozen=True)
class InjectOp:
    entry: int
    mask: int


Op = AccessOp | SwitchOp | PteWriteOp | InvlpgOp | InjectOp


@dataclass(frozen=True)
class Scenario:
    """A validated scenario (see the module docstring)."""

    vpid: int = 1
    mode: str = "ept"
    guest: tuple[GuestMapping, ...] = ()
    ept: tuple[EptMapping, ...] = ()
    ops: tuple[Op, ...] = ()
    source: str = field(default="<scenario>", compare=False)

    def n_accesses(self) -> int:
        return sum(isinstance(op, AccessOp) for op in self.ops)


# ---- parsing -------------------------------------------------------------------------------------


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file.

    Raises
    ------
    UserError
        Unreadable file, malformed TOML, unknown key, wrong type, or an invalid value (see the
        module docstring); the message names the file and the field.
    """
    doc = read_toml(path)
    return parse_scenario(doc, str(path))


def parse_scenario(doc: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """Validate a parsed TOML document (a dict) into a :class:`Scenario`.

    Raises
    ------
    UserError
        As :func:`load_scenario`.
    """
    top = Table(source, doc, "", (), ("vpid", "mode", "guest", "ept", "ops"))
    vpid = top.int("vpid", 1, hi=1 << VPID_BITS)
    mode = top.choice("mode", _MODES, "ept")

    guest = []
    for i, t in enumerate(tables(source, doc, "guest")):
        r = Table(source, t, f"guest[{i}]", ("gva", "gpa", "size"), ("writable", "user", "nx"))
        guest.append(
            GuestMapping(
                gva=r.int("gva"),
                gpa=r.int("gpa"),
                size=SIZE_NAMES[r.choice("size", SIZE_NAMES)],
                writable=r.bool("writable", True),
                user=r.bool("user", False),
                nx=r.bool("nx", False),
            )
        )

    ept = []
    for i, t in enumerate(tables(source, doc, "ept")):
        r = Table(source, t, f"ept[{i}]", ("gpa", "hpa", "size"), ("r", "w", "x"))
        ept.append(
            EptMapping(
                gpa=r.int("gpa"),
                hpa=r.int("hpa"),
                size=SIZE_NAMES[r.choice("size", SIZE_NAMES)],
                r=r.bool("r", True),
                w=r.bool("w", True),
                x=r.bool("x", True),
            )
        )

    ops: list[Op] = []
    op_keys = {
        "access": (("gva", "kind"), ("user", "data")),
        "switch": (("mode",), ()),
        "guest_pte_write": (("gva",), ("present", "gpa", "writable", "user", "nx")),
        "invlpg": (("gva",), ()),
        "inject": (("entry", "mask"), ()),
    }
    for i, t in enumerate(tables(source, doc, "ops")):
        where = f"ops[{i}]"
        if not isinstance(t, dict):
            raise UserError(source, f"must be a table, not {type_name(t)}", where)
        name = Table(source, {"op": t.get("op")} if "op" in t else {}, where, ("op",), ()).choice(
            "op", op_keys
        )
        required, optional = op_keys[name]
        r = Table(source, t, where, ("op", *required), optional)
        if name == "access":
            kind = KIND_NAMES[r.choice("kind", KIND_NAMES)]
            if "data" in t and kind != AccessKind.WRITE:
                raise r.error("data", "only a write stores data")
            ops.append(AccessOp(r.int("gva"), kind, r.bool("user", False), r.int("data", 0)))
        elif name == "switch":
            ops.append(SwitchOp(r.choice("mode", _MODES)))
        elif name == "guest_pte_write":
            op = PteWriteOp(
                r.int("gva"),
                present=r.opt_bool("present"),
                gpa=r.int("gpa") if "gpa" in t else None,
                writable=r.opt_bool("writable"),
                user=r.opt_bool("user"),
                nx=r.opt_bool("nx"),
            )
            if not op.fields():
                raise UserError(
                    source, "changes nothing: give present, gpa, writable, user or nx", where
                )
            ops.append(op)
        elif name == "invlpg":
            ops.append(InvlpgOp(r.int("gva")))
        else:
            ops.append(InjectOp(r.int("entry", hi=256), r.int("mask", hi=1 << _INJ_MASK_BITS)))

    scenario = Scenario(vpid, mode, tuple(guest), tuple(ept), tuple(ops), source)
    check_scenario(scenario)
    return scenario


# ---- semantic checks -----------------------------------------------------------------------------


def _check_gva(source: str, gva: int, where: str) -> None:
    half = 1 << (VA_BITS - 1)
    if not (0 <= gva < half or (1 << 64) - half <= gva < (1 << 64)):
        raise UserError(source, f"GVA {gva:#x} is not canonical (bits 63:47 must be equal)", where)
    if level_index(gva, 3) == 511:
        raise UserError(
            source,
            f"GVA {gva:#x} is in PML4 slot 511, which the VMM reserves for its page-table window",
            where,
        )


def _check_gpa(source: str, gpa: int, nbytes: int, where: str) -> None:
    if gpa + nbytes > 1 << PA_BITS:
        raise UserError(source, f"GPA {gpa:#x} is beyond MAXPHYADDR ({PA_BITS} bits)", where)
    if gpa < _GPT_END and gpa + nbytes > GPT_GPA_BASE:
        raise UserError(
            source,
            f"GPA range {gpa:#x}+{nbytes:#x} overlaps "
            f"[{GPT_GPA_BASE:#x}, {_GPT_END:#x}), the guest page-table region",
            where,
        )


def _check_aligned(source: str, value: int, size: PageSize, what: str, where: str) -> None:
    if value & (size.bytes - 1):
        raise UserError(
            source, f"{what} {value:#x} is not aligned to the {_SIZE_STR[size]} page size", where
        )


def _overlaps(source: str, ranges: list[tuple[int, int, int]], what: str, key: str) -> None:
    end, owner = -1, -1
    for start, stop, i in sorted(ranges):
        if start < end:
            a, b = sorted((owner, i))
            raise UserError(source, f"{what} overlaps {key}[{a}]", f"{key}[{b}]")
        if stop > end:
            end, owner = stop, i


def check_scenario(s: Scenario) -> None:
    """Check the values of a scenario (ranges, alignment, overlaps, op targets).

    Raises
    ------
    UserError
        Naming ``s.source`` and the field.
    """
    src = s.source
    if not 0 <= s.vpid < 1 << VPID_BITS:
        raise UserError(src, f"{s.vpid} is out of range [0, {1 << VPID_BITS})", "vpid")
    if s.mode not in _MODES:
        raise UserError(src, f"{s.mode!r} is not one of {' | '.join(_MODES)}", "mode")
    granges = []
    for i, g in enumerate(s.guest):
        w = f"guest[{i}]"
        _check_gva(src, g.gva, f"{w}.gva")
        _check_aligned(src, g.gva, g.size, "GVA", f"{w}.gva")
        _check_aligned(src, g.gpa, g.size, "GPA", f"{w}.gpa")
        _check_gpa(src, g.gpa, g.size.bytes, f"{w}.gpa")
        granges.append((g.gva, g.gva + g.size.bytes, i))
    _overlaps(src, granges, "guest mapping", "guest")
    eranges = []
    for i, m in enumerate(s.ept):
        w = f"ept[{i}]"
        _check_aligned(src, m.gpa, m.size, "GPA", f"{w}.gpa")
        _check_gpa(src, m.gpa, m.size.bytes, f"{w}.gpa")
        _check_aligned(src, m.hpa, m.size, "HPA", f"{w}.hpa")
        if m.hpa + m.size.bytes > TABLE_HPA_MIN:
            raise UserError(
                src,
                f"HPA {m.hpa:#x}: host memory at and above {TABLE_HPA_MIN:#x} "
                "(1 TiB) is reserved for the VMM's tables",
                f"{w}.hpa",
            )
        eranges.append((m.gpa, m.gpa + m.size.bytes, i))
    _overlaps(src, eranges, "EPT mapping", "ept")

    for i, op in enumerate(s.ops):
        w = f"ops[{i}]"
        if isinstance(op, AccessOp | InvlpgOp | PteWriteOp):
            _check_gva(src, op.gva, f"{w}.gva")
        if isinstance(op, AccessOp):
            if not 0 <= op.data < 1 << 64:
                raise UserError(src, "must fit 64 bits", f"{w}.data")
        elif isinstance(op, PteWriteOp):
            g = next((g for g in s.guest if g.gva <= op.gva < g.gva + g.size.bytes), None)
            if g is None:
                raise UserError(
                    src,
                    f"GVA {op.gva:#x} is not inside a guest mapping, so there is no PTE to write",
                    f"{w}.gva",
                )
            if op.gpa is not None:
                _check_aligned(src, op.gpa, g.size, "GPA", f"{w}.gpa")
                _check_gpa(src, op.gpa, g.size.bytes, f"{w}.gpa")
        elif isinstance(op, SwitchOp):
            if op.mode not in _MODES:
                raise UserError(src, f"{op.mode!r} is not one of {' | '.join(_MODES)}", f"{w}.mode")
        elif isinstance(op, InjectOp):
            if not 0 <= op.entry < 256:
                raise UserError(src, "must be a TLB entry index 0..255", f"{w}.entry")
            if not 0 <= op.mask < 1 << _INJ_MASK_BITS:
                raise UserError(src, f"must be below 2**{_INJ_MASK_BITS}", f"{w}.mask")


# ---- writing -------------------------------------------------------------------------------------


def _hex(v: int) -> str:
    digits = f"{v:x}"
    groups = []
    while digits:
        groups.append(digits[-4:])
        digits = digits[:-4]
    return "0x" + "_".join(reversed(groups))


def _b(v: bool) -> str:
    return "true" if v else "false"


def scenario_to_toml(s: Scenario, *, comment: str | None = None) -> str:
    """The TOML text of a scenario; :func:`load_scenario` reads it back equal."""
    out = []
    if comment:
        out += [f"# {line}" for line in comment.splitlines()]
    out += [f"vpid = {s.vpid}", f'mode = "{s.mode}"']
    for g in s.guest:
        out += [
            "",
            "[[guest]]",
            f"gva = {_hex(g.gva)}",
            f"gpa = {_hex(g.gpa)}",
            f'size = "{_SIZE_STR[g.size]}"',
            f"writable = {_b(g.writable)}",
            f"user = {_b(g.user)}",
            f"nx = {_b(g.nx)}",
        ]
    for m in s.ept:
        out += [
            "",
            "[[ept]]",
            f"gpa = {_hex(m.gpa)}",
            f"hpa = {_hex(m.hpa)}",
            f'size = "{_SIZE_STR[m.size]}"',
            f"r = {_b(m.r)}",
            f"w = {_b(m.w)}",
            f"x = {_b(m.x)}",
        ]
    for op in s.ops:
        out += ["", "[[ops]]"]
        if isinstance(op, AccessOp):
            out += ['op = "access"', f"gva = {_hex(op.gva)}", f'kind = "{_KIND_STR[op.kind]}"']
            if op.user:
                out.append("user = true")
            if op.kind == AccessKind.WRITE:
                out.append(f"data = {_hex(op.data)}")
        elif isinstance(op, SwitchOp):
            out += ['op = "switch"', f'mode = "{op.mode}"']
        elif isinstance(op, PteWriteOp):
            out += ['op = "guest_pte_write"', f"gva = {_hex(op.gva)}"]
            for k, v in op.fields().items():
                out.append(f"{k} = {_hex(int(v)) if k == 'gpa' else _b(bool(v))}")
        elif isinstance(op, InvlpgOp):
            out += ['op = "invlpg"', f"gva = {_hex(op.gva)}"]
        else:
            out += ['op = "inject"', f"entry = {op.entry}", f"mask = {_hex(op.mask)}"]
    return "\n".join(out) + "\n"


# ---- random scenarios ----------------------------------------------------------------------------

_KNOBS: dict[str, Any] = {
    "mode": None,  # initial mode; None picks one
    "n_4k": 14,  # guest 4K mappings
    "n_2m": 6,  # guest 2M mappings
    "n_1g": 3,  # guest 1G mappings
    "big": True,  # a guest 1G page over ~500 EPT 2M pages with a 4K-split (lazy shadow)
    "p_switch": 0.03,
    "p_pte_write": 0.07,
    "p_invlpg": 0.03,
    "p_inject": 0.0,  # fault injection ops (results then architectural in shadow mode only)
    "p_unmapped": 0.05,  # accesses to random (almost surely unmapped) GVAs
    "p_user": 0.2,
    "p_reuse": 0.5,  # accesses to a recently used GVA (TLB hits)
    "inject_entries": 32,  # entry indices for inject ops
}

_G = 1 << 30
_M2 = 1 << 21
_K4 = 1 << 12


class _HpaPool:
    """Distinct, size-aligned HPAs below 1 TiB, one pool per page size, in random order."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: dict[PageSize, set[int]] = {s: set() for s in PageSize}
        # disjoint areas per size class (all below 512 GiB)
        self.area = {
            PageSize.SIZE_4K: (0x10_0000_0000, 1 << 20),
            PageSize.SIZE_2M: (0x40_0000_0000, 1 << 15),
            PageSize.SIZE_1G: (0x60_0000_0000, 1 << 7),
        }

    def take(self, size: PageSize) -> int:
        base, n = self.area[size]
        while True:
            i = self.rng.randrange(n)
            if i not in self.used[size]:
                self.used[size].add(i)
                return base + i * size.bytes


def random_scenario(seed: int, n_ops: int = 200, **knobs: Any) -> Scenario:
    """A seeded random scenario exercising both stages' page sizes and faults.

    EPT layout (GPA): [0, 2M) in 4K pages (a few holes, varied permissions); [2M, 4M) sparse 4K
    pages; [4M, 64M) 2M pages; [1G, 2G) one 1G page; [2G, 3G) (``big``) 2M pages with holes and
    one 2M range split into 4K pages; [4G, 5G) a 1G page with restricted permissions
    (read-only, read-execute, execute-only or read-write); [5G, 6G) a 1G page, sometimes
    misconfigured (W without R). [64M, 1G) is a hole.

    Guest mappings of every size land on every layout (guest 2M over EPT 4K, guest 4K over EPT
    2M and 1G, guest 1G over EPT 2M and 1G, ...) with random RW/US/NX. Ops: reads, writes and
    fetches (user or supervisor, reusing recent GVAs for TLB hits), accesses to unmapped GVAs,
    mode switches, guest PTE writes (present, gpa, writable, user, nx), INVLPG and, when
    ``p_inject`` is set, fault injections.

    Parameters
    ----------
    seed : int
    n_ops : int
    **knobs
        Override the defaults of ``_KNOBS`` (mode, n_4k, n_2m, n_1g, big, p_switch,
        p_pte_write, p_invlpg, p_inject, p_unmapped, p_user, p_reuse, inject_entries).

    Raises
    ------
    TypeError
        An unknown knob.
    """
    unknown = set(knobs) - set(_KNOBS)
    if unknown:
        raise TypeError(f"random_scenario: unknown knobs {sorted(unknown)}")
    k = {**_KNOBS, **knobs}
    rng = random.Random(seed)
    hpas = _HpaPool(rng)

    def perms() -> tuple[bool, bool, bool]:
        return rng.choice(
            [(True, True, True)] * 6
            + [(True, False, True), (True, True, False), (True, False, False), (False, False, True)]
        )

    ept: list[EptMapping] = []
    holes_4k: set[int] = set()
    for i in range(512):  # [0, 2M): 4K pages
        if rng.random() < 0.04:
            holes_4k.add(i * _K4)
            continue
        r, w, x = perms()
        ept.append(EptMapping(i * _K4, hpas.take(PageSize.SIZE_4K), PageSize.SIZE_4K, r, w, x))
    for i in rng.sample(range(512), 64):  # [2M, 4M): sparse 4K pages
        ept.append(
            EptMapping(_M2 + i * _K4, hpas.take(PageSize.SIZE_4K), PageSize.SIZE_4K, *perms())
        )
    for i in range(2, 32):  # [4M, 64M): 2M pages
        if rng.random() < 0.1:
            continue
        ept.append(EptMapping(i * _M2, hpas.take(PageSize.SIZE_2M), PageSize.SIZE_2M, *perms()))
    ept.append(
        EptMapping(
            _G,
            hpas.take(PageSize.SIZE_1G),
            PageSize.SIZE_1G,
            *rng.choice([(True, True, True)] * 3 + [(True, True, False)]),
        )
    )
    if k["big"]:  # [2G, 3G): 2M pages, one split in 4K
        split = rng.randrange(512)
        for i in range(512):
            gpa = 2 * _G + i * _M2
            if i == split:
                for j in rng.sample(range(512), 48):
                    ept.append(
                        EptMapping(
                            gpa + j * _K4, hpas.take(PageSize.SIZE_4K), PageSize.SIZE_4K, *perms()
                        )
                    )
            elif rng.random() < 0.95:
                ept.append(EptMapping(gpa, hpas.take(PageSize.SIZE_2M), PageSize.SIZE_2M, *perms()))
    ept.append(
        EptMapping(
            4 * _G,
            hpas.take(PageSize.SIZE_1G),
            PageSize.SIZE_1G,
            *rng.choice(
                [
                    (True, False, False),
                    (True, False, True),
                    (False, False, True),
                    (True, True, False),
                ]
            ),
        )
    )
    ept.append(
        EptMapping(
            5 * _G,
            hpas.take(PageSize.SIZE_1G),
            PageSize.SIZE_1G,
            *rng.choice([(True, True, True), (False, True, False)]),
        )
    )
    ept.sort(key=lambda m: m.gpa)

    def gpa_for(size: PageSize) -> int:
        if size == PageSize.SIZE_4K:
            zone = rng.choice(["a", "a", "a", "b", "c", "c", "d", "d", "e", "f", "g", "hole"])
            base, span = {
                "a": (0, _M2),
                "b": (_M2, _M2),
                "c": (2 * _M2, 60 << 20),
                "d": (_G, _G),
                "e": (2 * _G, _G),
                "f": (4 * _G, _G),
                "g": (5 * _G, _G),
                "hole": (64 << 20, _G - (64 << 20)),
            }[zone]
            if zone == "e" and not k["big"]:
                base, span = _G, _G
            return base + rng.randrange(span // _K4) * _K4
        if size == PageSize.SIZE_2M:
            zone = rng.choice(["a", "b", "c", "c", "c", "d", "d", "e", "f", "hole"])
            if zone == "e" and not k["big"]:
                zone = "d"
            base, span = {
                "a": (0, _M2),
                "b": (_M2, _M2),
                "c": (2 * _M2, 60 << 20),
                "d": (_G, _G),
                "e": (2 * _G, _G),
                "f": (4 * _G, _G),
                "hole": (64 << 20, _G - (64 << 20)),
            }[zone]
            return base + rng.randrange(span // _M2) * _M2
        return rng.choice([_G, 4 * _G, 5 * _G] + ([2 * _G, 2 * _G] if k["big"] else []))

    # GVAs: a few PML4 slots (lower and upper half, never 511), no overlaps.
    slots = rng.sample(range(0, 511), 4)
    taken: list[tuple[int, int]] = []

    def gva_for(size: PageSize) -> int:
        for _ in range(1000):
            slot = rng.choice(slots)
            pdpt = rng.randrange(4)
            off = {
                PageSize.SIZE_1G: 0,
                PageSize.SIZE_2M: rng.randrange(8) * _M2,
                PageSize.SIZE_4K: rng.randrange(4) * _M2 + rng.randrange(64) * _K4,
            }[size]
            gva = (slot << 39) | (pdpt << 30) | off
            if slot >= 256:
                gva |= ((1 << 64) - 1) & ~((1 << VA_BITS) - 1)
            if all(gva + size.bytes <= s or e <= gva for s, e in taken):
                taken.append((gva, gva + size.bytes))
                return gva
        raise RuntimeError("random_scenario: could not place a guest mapping")

    guest: list[GuestMapping] = []
    for size, n in (
        (PageSize.SIZE_1G, k["n_1g"]),
        (PageSize.SIZE_2M, k["n_2m"]),
        (PageSize.SIZE_4K, k["n_4k"]),
    ):
        for _ in range(n):
            guest.append(
                GuestMapping(
                    gva_for(size),
                    gpa_for(size),
                    size,
                    writable=rng.random() < 0.8,
                    user=rng.random() < 0.6,
                    nx=rng.random() < 0.2,
                )
            )
    rng.shuffle(guest)
    mode = k["mode"] or rng.choice(_MODES)

    ops: list[Op] = []
    recent: list[int] = []
    present = {g.gva: True for g in guest}
    cur_mode = mode
    for _ in range(n_ops):
        u = rng.random()
        if u < k["p_switch"]:
            cur_mode = "ept" if cur_mode == "shadow" else "shadow"
            ops.append(SwitchOp(cur_mode))
            continue
        u -= k["p_switch"]
        if u < k["p_pte_write"] and guest:
            g = rng.choice(guest)
            gva = g.gva + rng.randrange(g.size.bytes // 8) * 8
            change = rng.choice(
                ["present", "present", "gpa", "gpa", "writable", "user", "nx", "several"]
            )
            f: dict[str, Any] = {}
            if change in ("present", "several"):
                present[g.gva] = not present[g.gva]
                f["present"] = present[g.gva]
            if change in ("gpa", "several"):
                f["gpa"] = gpa_for(g.size)
            if change in ("writable", "several"):
                f["writable"] = rng.random() < 0.6
            if change in ("user", "nx"):
                f[change] = rng.random() < 0.5
            ops.append(PteWriteOp(gva, **f))
            recent.append(gva)
            continue
        u -= k["p_pte_write"]
        if u < k["p_invlpg"]:
            ops.append(
                InvlpgOp(
                    rng.choice(recent) if recent and rng.random() < 0.8 else rng.choice(guest).gva
                )
            )
            continue
        u -= k["p_invlpg"]
        if u < k["p_inject"]:
            ops.append(
                InjectOp(rng.randrange(k["inject_entries"]), 1 << rng.randrange(_INJ_MASK_BITS))
            )
            continue
        # an access
        if recent and rng.random() < k["p_reuse"]:
            gva = rng.choice(recent[-12:])
        elif rng.random() < k["p_unmapped"] or not guest:
            while True:
                gva = rng.randrange(1 << VA_BITS) & ~7
                if gva >> (VA_BITS - 1):
                    gva |= ((1 << 64) - 1) & ~((1 << VA_BITS) - 1)
                if level_index(gva, 3) != 511:
                    break
        else:
            g = rng.choice(guest)
            gva = g.gva + rng.randrange(g.size.bytes // 8) * 8
        recent.append(gva)
        kind = rng.choice([AccessKind.READ] * 6 + [AccessKind.WRITE] * 3 + [AccessKind.FETCH] * 2)
        ops.append(
            AccessOp(
                gva,
                kind,
                rng.random() < k["p_user"],
                rng.getrandbits(64) if kind == AccessKind.WRITE else 0,
            )
        )

    scenario = Scenario(
        rng.randrange(1, 1 << VPID_BITS),
        mode,
        tuple(guest),
        tuple(ept),
        tuple(ops),
        f"<random_scenario seed={seed}>",
    )
    check_scenario(scenario)
    return scenario
