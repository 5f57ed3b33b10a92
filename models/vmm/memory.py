"""Physical memory as the walker, the stores and the VMM see it: 64-bit little-endian words."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

__all__ = ["Memory", "SparseMemory", "PAGE_BYTES"]

PAGE_BYTES = 4096
_WORD_MASK = (1 << 64) - 1


@runtime_checkable
class Memory(Protocol):
    """Host-physical memory, 8-byte words, little-endian. Memory never written reads 0.

    The functional model uses :class:`SparseMemory`; the cocotb testbench wraps the RAM model the
    RTL's AXI port reaches, so the VMM writes its tables into the memory the hardware walks.
    """

    def read64(self, addr: int) -> int:
        """The 64-bit word at ``addr`` (8-byte aligned)."""
        ...

    def write64(self, addr: int, value: int) -> None:
        """Store the 64-bit ``value`` at ``addr`` (8-byte aligned)."""
        ...


class SparseMemory:
    """A sparse 64-bit word store: only non-zero words are kept.

    Two memories holding the same data compare equal (``==``) however they were written, and
    :meth:`snapshot` gives a deterministic image for comparisons between runs.

    Raises
    ------
    ValueError
        From :meth:`read64` / :meth:`write64`: an address that is negative or not 8-byte aligned,
        or a value that does not fit 64 bits.
    """

    def __init__(self) -> None:
        self._words: dict[int, int] = {}

    @staticmethod
    def _index(addr: int) -> int:
        if addr < 0 or addr & 7:
            raise ValueError(f"address {addr:#x} is not a non-negative multiple of 8")
        return addr >> 3

    def read64(self, addr: int) -> int:
        return self._words.get(self._index(addr), 0)

    def write64(self, addr: int, value: int) -> None:
        if not 0 <= value <= _WORD_MASK:
            raise ValueError(f"value {value:#x} does not fit 64 bits")
        i = self._index(addr)
        if value:
            self._words[i] = value
        else:
            self._words.pop(i, None)

    def zero_page(self, addr: int) -> None:
        """Clear the 4 KiB page at ``addr`` (page aligned)."""
        if addr & (PAGE_BYTES - 1):
            raise ValueError(f"address {addr:#x} is not page aligned")
        base = addr >> 3
        for i in range(base, base + PAGE_BYTES // 8):
            self._words.pop(i, None)

    def pages(self) -> list[int]:
        """Addresses of the 4 KiB pages that hold a non-zero word, ascending."""
        return sorted({(i << 3) & ~(PAGE_BYTES - 1) for i in self._words})

    def snapshot(self) -> dict[int, int]:
        """Every non-zero word, ``{address: value}``, in address order."""
        return {i << 3: self._words[i] for i in sorted(self._words)}

    def items(self) -> Iterator[tuple[int, int]]:
        """``(address, value)`` for every non-zero word, in no particular order."""
        for i, v in self._words.items():
            yield i << 3, v

    def __len__(self) -> int:
        return len(self._words)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SparseMemory):
            return NotImplemented
        return self._words == other._words

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SparseMemory({len(self._words)} words in {len(self.pages())} pages)"
