"""The dirty tracker's contract, as software sees it (``docs/gpu.md``, "Dirty tracker").

Two epochs: writes land in the current one; a flip makes it the previous one, which software
then reads out (read-and-clear) while new writes land in the new current epoch. A flip is
refused until the previous epoch has been read out: otherwise its unread pages would be
reported two epochs late, or mixed into a later one, and "every write accepted in epoch ``e``
is reported in epoch ``e`` or ``e + 1``" would not hold.

Each page dirtied for the first time in an epoch is also appended to the log (PML-style), with
its epoch. When the log is full the entry is lost, and the epoch's ``overflow`` flag is set:
software must then treat every page of the aperture as dirty for that epoch (the VFIO rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vmassist.formats.gpu import APERTURE, LOG_DEPTH, PAGE_BITS

from .axi import Aw, pages_touched

__all__ = ["Counters", "EpochReport", "LogEntry", "DirtyTracker", "TrackerError"]


class TrackerError(Exception):
    """An operation the contract does not allow in the tracker's present state."""


@dataclass
class Counters:
    writes: int = 0  # AWs accepted
    new_pages: int = 0  # pages dirtied for the first time in their epoch
    log_overflows: int = 0  # log entries lost for want of room
    outside: int = 0  # AWs wholly outside the aperture (ignored)


@dataclass(frozen=True)
class LogEntry:
    epoch: int
    page: int


@dataclass(frozen=True)
class EpochReport:
    """One epoch read out: its number, its dirty pages in ascending order, and whether its log
    overflowed (then every page must be taken as dirty)."""

    epoch: int
    pages: tuple[int, ...]
    overflow: bool


@dataclass
class DirtyTracker:
    """The tracker's state and operations.

    Parameters
    ----------
    page_bits : int
        log2 of the page size (12: 4 KiB).
    aperture : int
        Bytes tracked, from address 0: a whole number of pages.
    log_depth : int
        Entries the log holds.
    """

    page_bits: int = PAGE_BITS
    aperture: int = APERTURE
    log_depth: int = LOG_DEPTH
    epoch: int = 0
    counters: Counters = field(default_factory=Counters)
    _cur: set[int] = field(default_factory=set)
    _prev: set[int] | None = None  # the previous epoch, until read out
    _overflow: bool = False
    _prev_overflow: bool = False
    _log: list[LogEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 1 <= self.page_bits <= 30:
            raise ValueError(f"page_bits must be 1 to 30, not {self.page_bits}")
        if self.aperture <= 0 or self.aperture % (1 << self.page_bits):
            raise ValueError(
                f"aperture must be a positive multiple of the page size, not {self.aperture}"
            )
        if self.log_depth < 1:
            raise ValueError(f"log_depth must be at least 1, not {self.log_depth}")

    @property
    def pages(self) -> int:
        """Pages in the aperture."""
        return self.aperture >> self.page_bits

    def write(self, aw: Aw) -> list[int]:
        """Accept one AW; returns the pages it dirtied for the first time in this epoch."""
        self.counters.writes += 1
        touched = pages_touched(aw, page_bits=self.page_bits, aperture=self.aperture)
        if not touched:
            self.counters.outside += 1
        new = [p for p in touched if p not in self._cur]
        for p in new:
            self._cur.add(p)
            self.counters.new_pages += 1
            if len(self._log) < self.log_depth:
                self._log.append(LogEntry(self.epoch, p))
            else:
                self.counters.log_overflows += 1
                self._overflow = True
        return new

    @property
    def can_flip(self) -> bool:
        """The previous epoch has been read out."""
        return self._prev is None

    def flip(self) -> int:
        """End the current epoch; returns its number, now the previous epoch's.

        Raises
        ------
        TrackerError
            The previous epoch has not been read out yet.
        """
        if not self.can_flip:
            raise TrackerError(f"flip refused: epoch {self.epoch - 1} has not been read out")
        self._prev, self._cur = self._cur, set()
        self._prev_overflow, self._overflow = self._overflow, False
        self.epoch += 1
        return self.epoch - 1

    def read_out(self) -> EpochReport:
        """Read out and clear the previous epoch.

        Raises
        ------
        TrackerError
            There is nothing to read out: no flip since the last read-out.
        """
        if self._prev is None:
            raise TrackerError("read-out refused: no epoch has ended since the last read-out")
        report = EpochReport(self.epoch - 1, tuple(sorted(self._prev)), self._prev_overflow)
        self._prev = None
        return report

    @property
    def log_level(self) -> int:
        return len(self._log)

    def log_pop(self, n: int | None = None) -> list[LogEntry]:
        """Take up to ``n`` entries (all when ``None``) from the log, oldest first."""
        n = len(self._log) if n is None else n
        out, self._log = self._log[:n], self._log[n:]
        return out

    def irq(self, threshold: int) -> bool:
        """The log interrupt: the log holds ``threshold`` entries or more (a full log always
        interrupts)."""
        return self.log_level >= min(threshold, self.log_depth)
