"""cocotb tests of the dirty tracker on a real AXI4 write channel (``hdl/gpu/harness.py``).

cocotbext-axi's ``AxiMasterWrite`` writes random data (INCR bursts split at 4 KiB, FIXED
bursts, narrow and unaligned transfers, some past the aperture) into an ``AxiRamWrite``; the
tracker snoops the AW handshakes between them. A monitor records each AW taken and the epoch it
was taken in; flips come at random moments, the read-out and the log are drained by consumers
with random back-pressure. Scored two ways: every epoch's read-out against the model
(``tb.gpu.score``), and every byte the memory holds against the pages read out (an oracle
independent of the model: a byte the master wrote lies in a page reported dirty).

Every test logs its seed; ``COCOTB_RANDOM_SEED=<seed>`` replays it.
"""

from __future__ import annotations

import logging
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Combine, RisingEdge
from cocotbext.axi import AxiBurstType, AxiMasterWrite, AxiRamWrite, AxiWriteBus

from models.gpu.axi import Aw, Burst

from .score import Seen, check

PAGE_BITS = int(os.environ.get("GPU_PAGE_BITS", "12"))
APERTURE_BITS = int(os.environ.get("GPU_APERTURE_BITS", "20"))
WRITES = int(os.environ.get("GPU_WRITES", "600"))
COUNTERS = ("writes", "new_pages", "log_overflows", "outside", "op_drops")


class TrackerTB:
    """Clock, reset, the AXI master and memory, and the monitors around ``gpu_tb``."""

    def __init__(self, dut, seed: int):
        self.dut = dut
        self.rng = random.Random(seed)
        self.log = logging.getLogger("cocotb.tb.gpu")
        self.aperture = 1 << APERTURE_BITS
        self.seen = Seen()
        self.epoch = 0
        self.done = False
        for bus in ("s_axi", "m_axi"):
            logging.getLogger(f"cocotb.{dut._name}.{bus}").setLevel(logging.WARNING)
        Clock(dut.clk, 10, unit="ns").start()
        self.master = AxiMasterWrite(
            AxiWriteBus.from_prefix(dut, "s_axi", bus_separator="__"), dut.clk, dut.rst
        )
        # Room past the aperture too: writes there are ignored by the tracker, not the memory.
        self.ram = AxiRamWrite(
            AxiWriteBus.from_prefix(dut, "m_axi", bus_separator="__"),
            dut.clk,
            dut.rst,
            size=2 * self.aperture,
        )

    async def reset(self) -> None:
        dut = self.dut
        dut.flip.value = 0
        dut.dirty__ready.value = 0
        dut.log__ready.value = 0
        dut.log_threshold.value = 8
        dut.rst.value = 1
        await ClockCycles(dut.clk, 4)
        dut.rst.value = 0
        await ClockCycles(dut.clk, 2)

    async def monitor(self) -> None:
        """Each AW taken, with its epoch; a flip taken in the same cycle ends the epoch after."""
        dut = self.dut
        while True:
            await RisingEdge(dut.clk)
            if dut.s_axi__awvalid.value and dut.m_axi__awready.value:
                aw = Aw(
                    int(dut.s_axi__awaddr.value),
                    int(dut.s_axi__awlen.value),
                    int(dut.s_axi__awsize.value),
                    Burst(int(dut.s_axi__awburst.value)),
                )
                self.seen.aws.append((self.epoch, aw))
            if dut.flip.value and dut.flip_ready.value:
                self.epoch += 1

    async def flipper(self, p_flip: float) -> None:
        dut = self.dut
        while not self.done:
            await RisingEdge(dut.clk)
            if not dut.flip.value and self.rng.random() < p_flip:
                dut.flip.value = 1
            elif dut.flip.value and dut.flip_ready.value:
                dut.flip.value = 0

    async def readout(self, p_ready: float) -> None:
        """The dirty pages, a read-out from the cycle after a flip until ``flip_ready``."""
        dut = self.dut
        pages: list[int] = []
        was_ready = True
        while True:
            dut.dirty__ready.value = self.rng.random() < p_ready
            await RisingEdge(dut.clk)
            if dut.dirty__valid.value and dut.dirty__ready.value:
                pages.append(int(dut.dirty__payload.value))
            now_ready = bool(dut.flip_ready.value)
            if now_ready and not was_ready:
                self.seen.readouts.append((pages, bool(dut.readout_overflow.value)))
                pages = []
            was_ready = now_ready

    async def drain_log(self, p_ready: float) -> None:
        dut = self.dut
        page_bits = APERTURE_BITS - PAGE_BITS
        while True:
            dut.log__ready.value = self.rng.random() < p_ready
            await RisingEdge(dut.clk)
            if dut.log__valid.value and dut.log__ready.value:
                word = int(dut.log__payload.value)
                self.seen.log.append((word >> page_bits, word & ((1 << page_bits) - 1)))

    async def traffic(self, writes: int) -> None:
        rng = self.rng
        ops = []
        for _ in range(writes):
            length = rng.choice([1, 8, 64, rng.randrange(1, 600)])
            addr = rng.randrange(self.aperture * 5 // 4 - length)
            data = bytes(rng.randrange(1, 256) for _ in range(length))
            burst = AxiBurstType.FIXED if rng.random() < 0.1 else AxiBurstType.INCR
            ops.append(self.master.init_write(addr, data, burst=burst, size=rng.randrange(4)))
            if rng.random() < 0.2:
                await ClockCycles(self.dut.clk, rng.randrange(1, 20))
        await Combine(*(op.wait() for op in ops))

    async def finish(self) -> None:
        """End the last epoch and wait for its read-out; then read the counters."""
        dut = self.dut
        self.done = True
        while dut.flip.value or not dut.flip_ready.value:
            await RisingEdge(dut.clk)
        dut.flip.value = 1
        await RisingEdge(dut.clk)
        dut.flip.value = 0
        await RisingEdge(dut.clk)
        while not dut.flip_ready.value:
            await RisingEdge(dut.clk)
        await ClockCycles(dut.clk, 4)
        self.seen.counters = {name: int(getattr(dut, name).value) for name in COUNTERS}

    def check_memory(self) -> None:
        """Every byte the memory holds (written with a non-zero value) inside the aperture lies
        in a page some read-out reported."""
        reported = {p for pages, _ in self.seen.readouts for p in pages}
        flagged = any(ov for _, ov in self.seen.readouts)
        mem = self.ram.read(0, self.aperture)
        written = {i >> PAGE_BITS for i, b in enumerate(mem) if b}
        missing = written - reported
        assert flagged or not missing, f"written pages never reported: {sorted(missing)[:10]}"


async def run(dut, *, p_flip: float, p_ready: float) -> TrackerTB:
    seed = cocotb.RANDOM_SEED
    tb = TrackerTB(dut, seed)
    tb.log.info("seed %d (replay: COCOTB_RANDOM_SEED=%d)", seed, seed)
    await tb.reset()
    for coro in (tb.monitor(), tb.flipper(p_flip), tb.readout(p_ready), tb.drain_log(p_ready)):
        cocotb.start_soon(coro)
    await tb.traffic(WRITES)
    await tb.finish()
    return tb


@cocotb.test()
async def writes_with_random_flips(dut):
    """Consumers always ready: nothing may be lost, every epoch is the model's exactly."""
    tb = await run(dut, p_flip=0.01, p_ready=1.0)
    check(tb.seen, page_bits=PAGE_BITS, aperture=1 << APERTURE_BITS, exact=True)
    tb.check_memory()
    assert len(tb.seen.readouts) > 3


@cocotb.test()
async def writes_with_back_pressure(dut):
    """Slow consumers and frequent flips: still exact (the log has room for every page)."""
    tb = await run(dut, p_flip=0.03, p_ready=0.3)
    check(tb.seen, page_bits=PAGE_BITS, aperture=1 << APERTURE_BITS, exact=True)
    tb.check_memory()
