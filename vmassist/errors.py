"""The one error type every command turns into a single line and exit status 2."""

from __future__ import annotations

__all__ = ["UserError"]


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
