"""Tests of MMU scenario files: strict validation, round trips, random generation."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.vmm.scenario import (
    AccessOp,
    InjectOp,
    PteWriteOp,
    Scenario,
    SwitchOp,
    load_scenario,
    parse_scenario,
    random_scenario,
    scenario_to_toml,
)
from vmassist.errors import UserError
from vmassist.formats.mmu import AccessKind, PageSize

DATA = Path(__file__).parent / "data" / "mmu"

GOOD = """
vpid = 3
mode = "shadow"

[[guest]]
gva = 0x7f00_0000_0000
gpa = 0x20_0000
size = "4K"
writable = true
user = true
nx = false

[[guest]]
gva = 0xffff_8000_0020_0000
gpa = 0x40_0000
size = "2M"

[[ept]]
gpa = 0x0
hpa = 0x1_0000_0000
size = "2M"
r = true
w = true
x = false

[[ops]]
op = "access"
gva = 0x7f00_0000_0123
kind = "write"
user = true
data = 0xdead_beef

[[ops]]
op = "switch"
mode = "ept"

[[ops]]
op = "guest_pte_write"
gva = 0xffff_8000_0020_1000
present = false
gpa = 0x60_0000

[[ops]]
op = "invlpg"
gva = 0x1234

[[ops]]
op = "inject"
entry = 3
mask = 0x10
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


def test_good_scenario(tmp_path: Path) -> None:
    s = load_scenario(_write(tmp_path, GOOD))
    assert (s.vpid, s.mode, len(s.guest), len(s.ept)) == (3, "shadow", 2, 1)
    assert s.guest[1].size == PageSize.SIZE_2M
    assert (s.guest[1].writable, s.guest[1].user, s.guest[1].nx) == (True, False, False)
    assert s.ept[0].x is False
    assert s.ops == (
        AccessOp(0x7F00_0000_0123, AccessKind.WRITE, True, 0xDEAD_BEEF),
        SwitchOp("ept"),
        PteWriteOp(0xFFFF_8000_0020_1000, present=False, gpa=0x60_0000),
        s.ops[3],
        InjectOp(3, 0x10),
    )
    assert s.ops[2].fields() == {"present": False, "gpa": 0x60_0000}


def test_defaults() -> None:
    s = parse_scenario({})
    assert s == Scenario(vpid=1, mode="ept")


def test_example_file_loads() -> None:
    s = load_scenario(DATA / "basic.toml")
    assert s.n_accesses() == 8 and s.mode == "ept"


def _bad(tmp_path: Path, text: str) -> UserError:
    with pytest.raises(UserError) as info:
        load_scenario(_write(tmp_path, text))
    err = info.value
    assert str(err).startswith(str(tmp_path / "s.toml"))
    assert "\n" not in str(err)
    return err


def _replace(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


@pytest.mark.parametrize(
    "text, field, words",
    [
        ("vpid = 1\nmode = ", None, "malformed TOML"),
        ("colour = 1\n" + GOOD, "colour", "unknown key"),
        (GOOD + "\ncolour = 1\n", "ops[4].colour", "unknown key"),
        (_replace('mode = "shadow"', 'mode = "nested"'), "mode", "not one of"),
        (_replace("vpid = 3", "vpid = 70000"), "vpid", "out of range"),
        (_replace("vpid = 3", 'vpid = "3"'), "vpid", "must be an integer"),
        (_replace('size = "4K"', 'size = "8K"'), "guest[0].size", "not one of"),
        (_replace('size = "4K"', "size = 4096"), "guest[0].size", "must be a string"),
        (_replace("writable = true", "writable = 1"), "guest[0].writable", "true or false"),
        (_replace("nx = false", "nx = false\ncolour = 2"), "guest[0].colour", "unknown key"),
        (_replace("gva = 0x7f00_0000_0000", "gva = 0x7f00_0000_0800"), "guest[0].gva", "aligned"),
        (_replace("gpa = 0x40_0000", "gpa = 0x40_1000"), "guest[1].gpa", "aligned"),
        (_replace("hpa = 0x1_0000_0000", "hpa = 0x1_0000_1000"), "ept[0].hpa", "aligned"),
        (
            _replace("gva = 0x7f00_0000_0000", "gva = 0x8000_0000_0000"),
            "guest[0].gva",
            "not canonical",
        ),
        (
            _replace("gva = 0x7f00_0000_0000", "gva = 0xffff_ff80_0000_0000"),
            "guest[0].gva",
            "slot 511",
        ),
        (_replace("gpa = 0x20_0000", "gpa = 0xff00_0000"), "guest[0].gpa", "page-table region"),
        (_replace("gpa = 0x0\n", "gpa = 0xff20_0000\n"), "ept[0].gpa", "page-table region"),
        (
            _replace("gpa = 0x0\n", "gpa = 0xfee0_0000\n")
            .replace('size = "2M"\nr', 'size = "1G"\nr')
            .replace("hpa = 0x1_0000_0000", "hpa = 0x4000_0000"),
            "ept[0].gpa",
            "aligned",
        ),
        (_replace("gpa = 0x20_0000", "gpa = 0x4000_0000_0000"), "guest[0].gpa", "MAXPHYADDR"),
        (
            _replace('gpa = 0x40_0000\nsize = "2M"', 'gpa = 0xc000_0000\nsize = "1G"')
            .replace("gva = 0xffff_8000_0020_0000", "gva = 0xffff_8000_4000_0000")
            .replace("gva = 0xffff_8000_0020_1000", "gva = 0xffff_8000_4000_1000")
            .replace("gpa = 0x60_0000", "gpa = 0x4000_0000"),
            "guest[1].gpa",
            "page-table region",
        ),
        (_replace("hpa = 0x1_0000_0000", "hpa = 0x100_0000_0000"), "ept[0].hpa", "1 TiB"),
        (
            _replace("gva = 0x7f00_0000_0000\n", "gva = 0xffff_8000_0020_3000\n"),
            "guest[1]",
            "overlaps guest[0]",
        ),
        (
            GOOD + '\n[[ept]]\ngpa = 0x10_0000\nhpa = 0x0\nsize = "4K"\n',
            "ept[1]",
            "overlaps ept[0]",
        ),
        (_replace('kind = "write"', 'kind = "execute"'), "ops[0].kind", "not one of"),
        (_replace('op = "switch"', 'op = "reboot"'), "ops[1].op", "not one of"),
        (_replace('op = "switch"\n', ""), "ops[1].op", "missing"),
        (_replace('mode = "ept"', 'mode = "sh"'), "ops[1].mode", "not one of"),
        (_replace("user = true\ndata", "usr = true\ndata"), "ops[0].usr", "unknown key"),
        (_replace('kind = "write"', 'kind = "read"'), "ops[0].data", "only a write"),
        (_replace("data = 0xdead_beef", "data = -1"), "ops[0].data", "out of range"),
        (
            _replace("gva = 0x7f00_0000_0123", "gva = 0x1_0000_0000_0000_0000"),
            "ops[0].gva",
            "out of range",
        ),
        (_replace("gva = 0x1234", "gva = 0xffff_ff80_0000_1000"), "ops[3].gva", "slot 511"),
        (
            _replace("gva = 0xffff_8000_0020_1000", "gva = 0x5000"),
            "ops[2].gva",
            "not inside a guest mapping",
        ),
        (_replace("gpa = 0x60_0000", "gpa = 0x60_1000"), "ops[2].gpa", "aligned"),
        (_replace("gpa = 0x60_0000", "gpa = 0xff20_0000"), "ops[2].gpa", "page-table region"),
        (_replace("present = false\ngpa = 0x60_0000\n", ""), "ops[2]", "changes nothing"),
        (_replace("entry = 3", "entry = 300"), "ops[4].entry", "out of range"),
        (_replace("mask = 0x10", "mask = 0x4_0000_0000"), "ops[4].mask", "out of range"),
        (
            _replace('[[ops]]\nop = "invlpg"', '[[ops]]\nop = "invlpg"\nkind = "read"'),
            "ops[3].kind",
            "unknown key",
        ),
        ("guest = 3\n", "guest", "array of tables"),
        ("ops = [1]\n", "ops[0]", "must be a table"),
        (
            _replace("r = true\nw = true\nx = false", 'r = "yes"\nw = true\nx = false'),
            "ept[0].r",
            "true or false",
        ),
    ],
)
def test_bad_scenarios(tmp_path: Path, text: str, field: str | None, words: str) -> None:
    err = _bad(tmp_path, text)
    assert err.field == field
    assert words in err.problem


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read"):
        load_scenario(tmp_path / "nope.toml")
    p = tmp_path / "bin.toml"
    p.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UserError, match="UTF-8"):
        load_scenario(p)


@pytest.mark.parametrize("seed", [0, 1, 5])
def test_round_trip(tmp_path: Path, seed: int) -> None:
    s = random_scenario(seed, n_ops=150, p_inject=0.02)
    text = scenario_to_toml(s, comment=f"random_scenario({seed})")
    back = load_scenario(_write(tmp_path, text))
    assert back == s
    assert load_scenario(DATA / "basic.toml") == load_scenario(
        _write(tmp_path, scenario_to_toml(load_scenario(DATA / "basic.toml")))
    )


def test_random_scenario_knobs() -> None:
    s = random_scenario(11, n_ops=50, mode="shadow", n_4k=2, n_2m=1, n_1g=0, big=False)
    assert s.mode == "shadow" and len(s.guest) == 3 and len(s.ops) == 50
    assert all(m.gpa < 2 << 30 or m.gpa >= 3 << 30 for m in s.ept)
    assert random_scenario(11, n_ops=0).ops == ()
    with pytest.raises(TypeError, match="unknown knobs"):
        random_scenario(1, bogus=1)
