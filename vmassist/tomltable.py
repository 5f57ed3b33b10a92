"""Typed, validated reading of TOML input tables (scenarios, workloads): every problem is one
:class:`~vmassist.errors.UserError` naming the file and the field (``guest[0].size``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import UserError, type_name

__all__ = ["U64", "Table", "hexfmt", "tables"]

U64 = 1 << 64


class Table:
    """Typed access to one TOML table, raising UserError naming ``where.key``."""

    def __init__(
        self, source: str, table: Any, where: str, required: Iterable[str], optional: Iterable[str]
    ) -> None:
        self.source = source
        self.where = where
        if not isinstance(table, dict):
            raise UserError(source, f"must be a table, not {type_name(table)}", where or None)
        allowed = set(required) | set(optional)
        for key in table:
            if key not in allowed:
                expected = ", ".join(sorted(allowed))
                raise UserError(source, f"unknown key (expected one of {expected})", self.name(key))
        for key in required:
            if key not in table:
                raise UserError(source, "missing", self.name(key))
        self.table = table

    def name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def error(self, key: str, problem: str) -> UserError:
        return UserError(self.source, problem, self.name(key))

    def int(
        self,
        key: str,
        default: int | None = None,
        *,
        lo: int = 0,
        hi: int = U64,
        address: bool = False,
    ) -> int:
        """An integer in ``[lo, hi)``; ``address`` shows the bounds in hex."""
        v = self.table.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(key, f"must be an integer, not {type_name(v)}")
        if not lo <= v < hi:
            show = hexfmt if address else _dec
            raise self.error(
                key, f"{show(v)} is out of range: must be {show(lo)} to {show(hi - 1)}"
            )
        return v

    def bool(self, key: str, default: bool | None = None) -> bool:
        v = self.table.get(key, default)
        if not isinstance(v, bool):
            raise self.error(key, f"must be true or false, not {type_name(v)}")
        return v

    def choice(self, key: str, choices: Iterable[str], default: str | None = None) -> str:
        v = self.table.get(key, default)
        choices = tuple(choices)
        if not isinstance(v, str):
            raise self.error(key, f"must be a string ({' | '.join(choices)}), not {type_name(v)}")
        if v not in choices:
            raise self.error(key, f"{v!r} is not one of {' | '.join(choices)}")
        return v

    def ints(self, key: str, n: int, *, hi: int = 1 << 16) -> list[int]:
        v = self.table.get(key)
        if not isinstance(v, list) or len(v) != n:
            raise self.error(key, f"must be an array of {n} integers")
        for x in v:
            if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < hi:
                raise self.error(key, f"every element must be an integer in [0, {hexfmt(hi)})")
        return list(v)

    def opt_bool(self, key: str) -> bool | None:
        return self.bool(key) if key in self.table else None


def hexfmt(v: int) -> str:
    """``v`` in hex from 16 on."""
    return f"{v:#x}" if v >= 16 else str(v)


def _dec(v: int) -> str:
    return "2**64 - 1" if v == U64 - 1 else str(v)


def tables(source: str, doc: dict[str, Any], key: str) -> list[Any]:
    """The array of tables ``[[key]]`` of ``doc`` (empty when absent)."""
    v = doc.get(key, [])
    if not isinstance(v, list):
        raise UserError(source, f"must be an array of tables ([[{key}]]), not {type_name(v)}", key)
    return v
