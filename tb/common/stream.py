"""Amaranth-stream (valid/ready/payload) driver and monitor for cocotb, with idle and
back-pressure generators."""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Iterator

import cocotb
from cocotb.queue import Queue
from cocotb.triggers import Event, RisingEdge

__all__ = ["StreamDriver", "StreamMonitor", "random_pauses"]


def random_pauses(rng: random.Random, p_pause: float) -> Iterator[bool]:
    """An endless idle / back-pressure pattern: True means "pause this cycle"."""
    while True:
        yield rng.random() < p_pause


class StreamDriver:
    """Drives ``<prefix>__valid`` / ``__payload`` and waits for ``__ready``.

    Items are integers (payload bits). ``send`` returns once the item is queued; ``sent`` events
    fire with the cycle count of the transfer.
    """

    def __init__(self, dut, prefix: str, clock, *, pauses: Iterator[bool] | None = None):
        self.log = logging.getLogger(f"cocotb.tb.{prefix}.driver")
        self._valid = getattr(dut, f"{prefix}__valid")
        self._ready = getattr(dut, f"{prefix}__ready")
        self._payload = getattr(dut, f"{prefix}__payload")
        self._clock = clock
        self._queue: Queue[tuple[int, Event]] = Queue()
        self.pauses = pauses or itertools.repeat(False)
        self._valid.value = 0
        self._task = cocotb.start_soon(self._run())

    async def send(self, bits: int) -> Event:
        done = Event()
        await self._queue.put((bits, done))
        return done

    def idle(self) -> bool:
        return self._queue.empty() and not self._valid.value

    async def _run(self) -> None:
        while True:
            bits, done = await self._queue.get()
            while next(self.pauses):
                await RisingEdge(self._clock)
            self._payload.value = bits
            self._valid.value = 1
            while True:
                await RisingEdge(self._clock)
                if self._ready.value == 1:
                    break
            self._valid.value = 0
            done.set()


class StreamMonitor:
    """Drives ``<prefix>__ready`` with a back-pressure pattern and queues each payload."""

    def __init__(self, dut, prefix: str, clock, *, pauses: Iterator[bool] | None = None):
        self.log = logging.getLogger(f"cocotb.tb.{prefix}.monitor")
        self._valid = getattr(dut, f"{prefix}__valid")
        self._ready = getattr(dut, f"{prefix}__ready")
        self._payload = getattr(dut, f"{prefix}__payload")
        self._clock = clock
        self.queue: Queue[int] = Queue()
        self.pauses = pauses or itertools.repeat(False)
        self._ready.value = 0
        self._task = cocotb.start_soon(self._run())

    async def _run(self) -> None:
        while True:
            ready = not next(self.pauses)
            self._ready.value = int(ready)
            await RisingEdge(self._clock)
            if ready and self._valid.value == 1:
                self.queue.put_nowait(self._payload.value.to_unsigned())
