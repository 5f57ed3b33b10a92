"""A register map described once, rendered to the RTL decoder, the drivers and Markdown."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["Access", "Field", "Register", "RegisterMap", "reg"]


class Access(enum.Enum):
    RW = "rw"  #: read/write, holds its value
    RO = "ro"  #: read-only, driven by the hardware
    WO = "wo"  #: write-only command: a one-cycle strobe with the written data


@dataclass(frozen=True)
class Field:
    name: str
    offset: int
    width: int
    doc: str = ""

    def get(self, value: int) -> int:
        return (value >> self.offset) & ((1 << self.width) - 1)

    def put(self, value: int) -> int:
        if not 0 <= value < (1 << self.width):
            raise ValueError(f"field {self.name}: {value:#x} does not fit in {self.width} bits")
        return value << self.offset


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    access: Access
    doc: str
    fields: tuple[Field, ...] = field(default_factory=tuple)
    reset: int = 0

    def pack(self, **values: int) -> int:
        """Encode named field values into a register value."""
        by_name = {f.name: f for f in self.fields}
        word = 0
        for name, value in values.items():
            if name not in by_name:
                raise KeyError(f"register {self.name} has no field {name!r}")
            word |= by_name[name].put(value)
        return word

    def unpack(self, word: int) -> dict[str, int]:
        return {f.name: f.get(word) for f in self.fields}


def reg(
    name: str,
    offset: int,
    access: Access,
    doc: str,
    *fields: tuple[str, int, int, str],
    reset: int = 0,
) -> Register:
    """A :class:`Register` with ``fields`` given as ``(name, offset, width, doc)`` tuples."""
    return Register(name, offset, access, doc, tuple(Field(*f) for f in fields), reset)


class RegisterMap:
    """An ordered, validated set of registers on a bus of ``data_width`` bits."""

    def __init__(self, name: str, registers: list[Register], *, data_width: int = 64):
        self.name = name
        self.data_width = data_width
        self.registers = tuple(registers)
        stride = data_width // 8
        seen: dict[int, str] = {}
        for reg in self.registers:
            if reg.offset % stride:
                raise ValueError(f"{name}.{reg.name}: offset {reg.offset:#x} not {stride}-aligned")
            if reg.offset in seen:
                raise ValueError(
                    f"{name}.{reg.name}: offset {reg.offset:#x} used by {seen[reg.offset]}"
                )
            seen[reg.offset] = reg.name
            for f in reg.fields:
                if f.offset + f.width > data_width:
                    raise ValueError(f"{name}.{reg.name}.{f.name}: beyond bit {data_width}")
        self._by_name = {r.name: r for r in self.registers}

    def __getitem__(self, name: str) -> Register:
        return self._by_name[name]

    def __iter__(self):
        return iter(self.registers)

    @property
    def addr_width(self) -> int:
        top = max(r.offset for r in self.registers) + self.data_width // 8
        return max(1, (top - 1).bit_length())

    def markdown(self) -> str:
        lines = [
            f"### {self.name} registers ({self.data_width}-bit AXI4-Lite)",
            "",
            "| offset | name | access | fields | description |",
            "|---|---|---|---|---|",
        ]
        for r in self.registers:
            fields = "<br>".join(
                f"`[{f.offset + f.width - 1}:{f.offset}]` {f.name}: {f.doc}" for f in r.fields
            )
            lines.append(
                f"| `{r.offset:#05x}` | {r.name} | {r.access.value} | {fields} | {r.doc} |"
            )
        return "\n".join(lines) + "\n"
