"""Write command output so that a failed run never leaves half-written results behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_output_dir", "atomic_output_file"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_output_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Collect a command's output files in a temporary directory and publish them on success.

    The temporary directory is created beside ``path`` (same file system, so the moves are
    renames). When the ``with`` body finishes normally, a missing or empty ``path`` is replaced by
    the temporary directory in one rename; otherwise each top-level entry is moved into ``path``,
    replacing an entry of the same name and leaving other entries alone. When the body raises
    (including ``KeyboardInterrupt``), the temporary directory is removed and ``path`` is untouched.

    Parameters
    ----------
    path : path-like
        The output directory the user asked for.

    Yields
    ------
    Path
        The temporary directory to write into.

    Raises
    ------
    NotADirectoryError
        ``path`` exists and is not a directory.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(20, "exists and is not a directory", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        tmp.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would otherwise become the output's mode
        yield tmp
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        if not target.exists():
            os.replace(tmp, target)
            return
        for entry in sorted(tmp.iterdir()):
            dest = target / entry.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            os.replace(entry, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_output_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Like :func:`atomic_output_dir` for one file: yields a temporary path, renamed on success."""
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(21, "is a directory", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        tmp.chmod(0o666 & ~_umask())
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
