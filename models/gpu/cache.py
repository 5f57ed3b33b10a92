"""A write-combining cache between the GPU executor and guest memory.

The executor's stores land here, not in memory: a store fills bytes of a 64-byte line (a
line is allocated on a write miss, without reading memory: only the bytes written are kept,
with a byte mask), and the line goes to memory when it is evicted (least recently used, when
a new line needs room) or when the cache is flushed. Only then does the write appear on the
memory-side AXI4 bus the dirty tracker snoops: one INCR burst addressing the whole line
(``line_bytes / bus_bytes`` beats, line aligned), whose strobes would enable only the bytes
written, so memory receives exactly those bytes.

This is why a checkpoint must drain the GPU (:mod:`models.gpu.run`): until :meth:`WriteCache.flush`,
guest memory and the tracker both lag behind the executor. Reads go through the cache (the
bytes a line holds override memory), so the executor always sees its own stores; the
architectural memory is :meth:`WriteCache.coherent`. A line never crosses a page, so the pages
of the write-back bursts are exactly the pages the stores touched.

The cache does not change the executor's timing: its cost is charged at the flush
(:class:`~models.gpu.checkpoint.CheckpointCost`, ``line_cycles`` per line written back).
"""

from __future__ import annotations

from collections import OrderedDict

from .axi import Aw, Burst
from .vgpu import GuestMemory

__all__ = ["WriteCache"]


def _runs(mask: int) -> list[tuple[int, int]]:
    """The runs of set bits of ``mask``, as ``(offset, length)``, lowest first."""
    out = []
    while mask:
        lo = (mask & -mask).bit_length() - 1
        run = ((mask >> lo) + 1) & ~(mask >> lo)  # lowest clear bit above the run
        n = run.bit_length() - 1
        out.append((lo, n))
        mask &= ~(((1 << n) - 1) << lo)
    return out


class WriteCache:
    """Write-combining lines in front of a :class:`GuestMemory`; the executor's ``memory``.

    Parameters
    ----------
    memory : GuestMemory
        The memory behind the cache.
    lines : int
        Lines the cache holds.
    line_bytes : int
        Bytes a line holds: a power of two from ``bus_bytes`` to 4096.
    bus_bytes : int
        Beat size of the write-back bursts: a power of two from 1 to 128.

    Raises
    ------
    ValueError
        A parameter out of range.
    """

    def __init__(
        self, memory: GuestMemory, *, lines: int = 64, line_bytes: int = 64, bus_bytes: int = 16
    ) -> None:
        if lines < 1:
            raise ValueError(f"lines must be at least 1, not {lines}")
        if not 1 <= bus_bytes <= 128 or bus_bytes & (bus_bytes - 1):
            raise ValueError(f"bus_bytes must be a power of two from 1 to 128, not {bus_bytes}")
        if not bus_bytes <= line_bytes <= 4096 or line_bytes & (line_bytes - 1):
            raise ValueError(
                f"line_bytes must be a power of two from {bus_bytes} to 4096, not {line_bytes}"
            )
        self.memory = memory
        self.lines = lines
        self.line_bytes = line_bytes
        self.bus_bytes = bus_bytes
        self._full = (1 << line_bytes) - 1
        self._beats = line_bytes // bus_bytes - 1
        self._size = bus_bytes.bit_length() - 1
        self._lines: OrderedDict[int, tuple[bytearray, int]] = OrderedDict()
        self._written: list[Aw] = []  # write-back bursts since the last take()

    @property
    def dirty_lines(self) -> int:
        """Lines holding bytes memory does not have yet."""
        return len(self._lines)

    def _write_back(self, line: int, data: bytearray, mask: int) -> None:
        base = line * self.line_bytes
        if mask == self._full:
            self.memory.write(base, bytes(data))
        else:
            for off, n in _runs(mask):
                self.memory.write(base + off, bytes(data[off : off + n]))
        self._written.append(Aw(base, self._beats, self._size, Burst.INCR))

    def write(self, addr: int, data: bytes) -> None:
        """Store ``data`` at guest-physical ``addr``: into the cache, evicting as need be."""
        size = self.line_bytes
        view = memoryview(data)
        while view:
            line, off = divmod(addr, size)
            k = min(len(view), size - off)
            entry = self._lines.pop(line, None)
            if entry is None:
                if len(self._lines) >= self.lines:
                    old, (old_data, old_mask) = self._lines.popitem(last=False)
                    self._write_back(old, old_data, old_mask)
                entry = (bytearray(size), 0)
            buf, mask = entry
            buf[off : off + k] = view[:k]
            self._lines[line] = (buf, mask | ((1 << k) - 1) << off)
            addr, view = addr + k, view[k:]

    def read(self, addr: int, n: int) -> bytes:
        """``n`` bytes at guest-physical ``addr``, as the executor sees them."""
        out = bytearray(self.memory.read(addr, n))
        if not self._lines:
            return bytes(out)
        size = self.line_bytes
        for line in range(addr // size, (addr + n - 1) // size + 1 if n else 0):
            entry = self._lines.get(line)
            if entry is None:
                continue
            buf, mask = entry
            base = line * size
            for off, k in _runs(mask):
                lo, hi = max(base + off, addr), min(base + off + k, addr + n)
                if lo < hi:
                    out[lo - addr : hi - addr] = buf[lo - base : hi - base]
        return bytes(out)

    def flush(self) -> int:
        """Write every line back to memory, oldest first, and empty the cache; returns the
        lines written back (their bursts are in the next :meth:`take`)."""
        count = len(self._lines)
        while self._lines:
            line, (data, mask) = self._lines.popitem(last=False)
            self._write_back(line, data, mask)
        return count

    def take(self) -> tuple[Aw, ...]:
        """The write-back bursts since the last call, in bus order."""
        out, self._written = tuple(self._written), []
        return out

    def coherent(self) -> GuestMemory:
        """An independent copy of memory as the executor sees it: the lines applied."""
        copy = self.memory.copy()
        size = self.line_bytes
        for line, (data, mask) in self._lines.items():
            for off, n in _runs(mask):
                copy.write(line * size + off, bytes(data[off : off + n]))
        return copy
