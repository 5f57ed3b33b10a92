"""The one error type every command turns into a single line and exit status 2, and the input
helpers that raise it."""

from __future__ import annotations

import os
import tomllib
from typing import Any

__all__ = ["UserError", "read_text", "read_toml", "type_name"]


class UserError(Exception):
    """Bad input: a file, the field in it, and what is wrong.

    Parameters
    ----------
    file : str
        The input file (or option) at fault.
    field : str, optional
        The field, key or offset inside it.
    problem : str
        What is wrong, in words a user can act on.
    """

    def __init__(self, file: str, problem: str, field: str | None = None):
        self.file = str(file)
        self.field = field
        self.problem = problem
        where = f"{self.file}: {field}" if field else self.file
        super().__init__(f"{where}: {problem}")


def type_name(v: object) -> str:
    """What a parsed TOML value is, for an error message ("must be a table, not an array")."""
    for kind, name in (
        (bool, "a boolean"),  # before int: a bool is an int
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (dict, "a table"),
        (list, "an array"),
    ):
        if isinstance(v, kind):
            return name
    return "nothing" if v is None else type(v).__name__


def read_text(path: str | os.PathLike[str]) -> str:
    """The UTF-8 text in ``path``.

    Raises
    ------
    UserError
        The file cannot be read, or is not UTF-8 text.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            return f.read().decode("utf-8")
    except OSError as e:
        raise UserError(name, f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise UserError(name, "not UTF-8 text") from None


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The TOML document in ``path``.

    Raises
    ------
    UserError
        The file cannot be read, is not UTF-8 text, or is not valid TOML.
    """
    name = os.fspath(path)
    text = read_text(name)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(name, f"malformed TOML: {e}") from None
