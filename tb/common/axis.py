"""AXI4-Stream source and sink for cocotb that cost one signal access per beat, stepped once per
rising clock edge by their owner's clock loop.

cocotbext-axi's agents run one coroutine each, plus one per pause generator, every one of them
woken on every clock edge, and its sink reads ``tdata``/``tkeep``/``tuser`` once per byte lane:
192 signal reads per beat at 512 bits. On the NIC filter that was most of the simulation time.
These agents keep the same protocol (sample at the rising edge; a source holds a beat until it
is taken and pauses only between beats; a sink drops ``tready`` on its pause cycles) without
coroutines of their own: the owner calls :meth:`AxisSource.step` and :meth:`AxisSink.step` at
every rising edge, after which their writes take effect for the next edge. They assume the
reset is over before the first frame.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator

__all__ = ["AxisSource", "AxisSink"]

_NEVER: Iterator[bool] = itertools.repeat(False)


def _optional(dut, name: str):
    return getattr(dut, name) if hasattr(dut, name) else None


class AxisSource:
    """Drives ``<prefix>__tdata/tkeep/tlast/tvalid`` (and ``tdest``/``tuser`` when present).

    Parameters
    ----------
    dut
        The cocotb handle of the top.
    prefix : str
        The stream's port prefix (``rx``, ``vf__0``...), members separated by ``__``.
    pauses : iterator of bool, optional
        Idle pattern: True leaves a cycle between two beats idle.
    on_last : callable, optional
        Called after each frame's last beat was taken.

    Members
    -------
    frames : int
        Frames whose last beat was taken.
    """

    def __init__(
        self,
        dut,
        prefix: str,
        *,
        pauses: Iterator[bool] | None = None,
        on_last: Callable[[], None] | None = None,
    ) -> None:
        self._tdata = getattr(dut, f"{prefix}__tdata")
        self._tvalid = getattr(dut, f"{prefix}__tvalid")
        self._tready = getattr(dut, f"{prefix}__tready")
        self._tlast = getattr(dut, f"{prefix}__tlast")
        self._tkeep = _optional(dut, f"{prefix}__tkeep")
        self._tdest = _optional(dut, f"{prefix}__tdest")
        self._tuser = _optional(dut, f"{prefix}__tuser")
        self.lanes = len(self._tdata) // 8
        self.pauses = pauses or _NEVER
        self.on_last = on_last
        self.frames = 0
        self._queue: deque[tuple[bytes, int, int]] = deque()
        self._frame = b""
        self._pos = 0  # byte offset of the beat on the bus (or the next one)
        self._valid = False
        self._driven = {"tkeep": -1, "tlast": -1, "tdest": -1, "tuser": -1}
        self._tvalid.value = 0

    def send(self, data: bytes, *, tdest: int = 0, tuser: int = 0) -> None:
        """Queue one frame (at least one byte); it goes out after those queued before."""
        if not data:
            raise ValueError("an AXI4-Stream frame has at least one byte")
        self._queue.append((bytes(data), tdest, tuser))

    def idle(self) -> bool:
        """Nothing queued, nothing on the bus."""
        return not self._queue and not self._frame and not self._valid

    def _set(self, name: str, handle, value: int) -> None:
        if handle is not None and self._driven[name] != value:
            handle.value = value
            self._driven[name] = value

    def step(self) -> None:
        """One rising edge: the beat on the bus went if ``tready`` was high; drive the next."""
        if self._valid:
            if not self._tready.value:
                return  # a beat is held until it is taken
            self._pos += self.lanes
            if self._pos >= len(self._frame):
                self._frame = b""
                self.frames += 1
                if self.on_last is not None:
                    self.on_last()
        if not self._frame:
            if not self._queue:
                if self._valid:
                    self._tvalid.value = 0
                    self._valid = False
                return
            self._frame, tdest, tuser = self._queue.popleft()
            self._pos = 0
            self._set("tdest", self._tdest, tdest)
            self._set("tuser", self._tuser, tuser)
        if next(self.pauses):
            if self._valid:
                self._tvalid.value = 0
                self._valid = False
            return
        pos, lanes = self._pos, self.lanes
        beat = self._frame[pos : pos + lanes]
        self._tdata.value = int.from_bytes(beat, "little")
        self._set("tkeep", self._tkeep, (1 << len(beat)) - 1)
        self._set("tlast", self._tlast, int(pos + lanes >= len(self._frame)))
        if not self._valid:
            self._tvalid.value = 1
            self._valid = True


class AxisSink:
    """Drives ``<prefix>__tready`` with a back-pressure pattern and collects whole frames.

    Parameters
    ----------
    dut, prefix
        As for :class:`AxisSource`.
    on_frame : callable
        Called with each frame's bytes (the bytes ``tkeep`` marks) and its ``tuser``: an int,
        or the list of the beats' values when it varied over the frame (None without
        ``tuser``).
    pauses : iterator of bool, optional
        Back-pressure pattern: True drops ``tready`` for a cycle.
    """

    def __init__(
        self,
        dut,
        prefix: str,
        on_frame: Callable[[bytes, int | list[int] | None], None],
        *,
        pauses: Iterator[bool] | None = None,
    ) -> None:
        self._tdata = getattr(dut, f"{prefix}__tdata")
        self._tvalid = getattr(dut, f"{prefix}__tvalid")
        self._tready = getattr(dut, f"{prefix}__tready")
        self._tlast = getattr(dut, f"{prefix}__tlast")
        self._tkeep = _optional(dut, f"{prefix}__tkeep")
        self._tuser = _optional(dut, f"{prefix}__tuser")
        self.lanes = len(self._tdata) // 8
        self._full = (1 << self.lanes) - 1
        self.pauses = pauses or _NEVER
        self.on_frame = on_frame
        self._beats: list[bytes] = []
        self._users: list[int] = []
        self._ready = not next(self.pauses)
        self._tready.value = int(self._ready)

    def idle(self) -> bool:
        """No frame is partly received."""
        return not self._beats

    def step(self) -> None:
        """One rising edge: take the beat if ``tready`` and ``tvalid`` were both high."""
        if self._ready and self._tvalid.value:
            data = self._tdata.value.to_unsigned().to_bytes(self.lanes, "little")
            keep = self._full if self._tkeep is None else self._tkeep.value.to_unsigned()
            if keep != self._full:  # null bytes anywhere are left out, as cocotbext-axi does
                data = bytes(b for i, b in enumerate(data) if keep >> i & 1)
            self._beats.append(data)
            if self._tuser is not None:
                self._users.append(self._tuser.value.to_unsigned())
            if self._tlast.value:
                users = self._users
                user = None if self._tuser is None else users[0]
                if any(u != users[0] for u in users):
                    user = users
                frame = b"".join(self._beats)
                self._beats, self._users = [], []
                self.on_frame(frame, user)
        ready = not next(self.pauses)
        if ready != self._ready:
            self._tready.value = int(ready)
            self._ready = ready
