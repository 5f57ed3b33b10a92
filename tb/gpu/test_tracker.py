"""cocotb tests of the dirty tracker on a real AXI4 write channel (``hdl/gpu/harness.py``).

cocotbext-axi's ``AxiMasterWrite`` writes random data (INCR bursts split at 4 KiB, FIXED
bursts, narrow and unaligned transfers, some past the aperture) into an ``AxiRamWrite``; the
tracker snoops the AW handshakes between them. A monitor records each AW taken and the epoch it
was taken in. Software, through the AXI4-Lite registers (cocotbext-axi's ``AxiLiteMaster`` on
:data:`~vmassist.formats.gpu.GPU_CSR`), flips at random moments and takes each read-out and the
log either through ``DIRTY``/``LOG`` or from the streams, drained with random back-pressure.
Scored two ways: every epoch's read-out against the model
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
from models.gpu.vgpu import Vgpu
from models.gpu.workload import play, random_commands, setup
from vmassist.formats.gpu import GPU_ID

from .regs import Registers
from .score import Seen, check

PAGE_BITS = int(os.environ.get("GPU_PAGE_BITS", "12"))
APERTURE_BITS = int(os.environ.get("GPU_APERTURE_BITS", "20"))
WRITES = int(os.environ.get("GPU_WRITES", "600"))


class TrackerTB:
    """Clock, reset, the AXI master and memory, the registers and the monitor around
    ``gpu_tb``."""

    def __init__(self, dut, seed: int):
        self.dut = dut
        self.rng = random.Random(seed)
        self.log = logging.getLogger("cocotb.tb.gpu")
        self.aperture = 1 << APERTURE_BITS
        self.seen = Seen()
        self.epoch = 0
        self.done = False
        for bus in ("s_axi", "m_axi", "csr"):
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
        self.regs = Registers(dut)
        self.streamed: list[int] = []  # pages taken from the ``dirty`` stream
        self.writes: list[tuple[int, bytes]] = []  # a command stream's writes

    async def reset(self, *, stream: bool) -> None:
        dut = self.dut
        dut.dirty__ready.value = 0
        dut.log__ready.value = 0
        dut.rst.value = 1
        await ClockCycles(dut.clk, 4)
        dut.rst.value = 0
        await ClockCycles(dut.clk, 2)
        ident = await self.regs.read("ID")
        assert (ident["magic"] << 32 | ident["version"]) == GPU_ID, f"ID reads {ident}"
        params = await self.regs.read("PARAMS")
        assert (params["page_bits"], params["aperture_bits"]) == (PAGE_BITS, APERTURE_BITS)
        await self.regs.write("CONFIG", irq_en=1, stream=int(stream), threshold=8)

    async def monitor(self) -> None:
        """Each AW taken, with its epoch: the one whose parity ``epoch`` shows in that cycle (an
        AW in the cycle a flip is taken is the ended epoch's)."""
        dut = self.dut
        parity = 0
        while True:
            await RisingEdge(dut.clk)
            now = int(dut.epoch.value)
            if now != parity:
                parity, self.epoch = now, self.epoch + 1
            if dut.s_axi__awvalid.value and dut.m_axi__awready.value:
                aw = Aw(
                    int(dut.s_axi__awaddr.value),
                    int(dut.s_axi__awlen.value),
                    int(dut.s_axi__awsize.value),
                    Burst(int(dut.s_axi__awburst.value)),
                )
                self.seen.aws.append((self.epoch, aw))

    async def read_out(self, *, stream: bool) -> None:
        """Flip, then take the ended epoch's pages as software does: pop ``DIRTY`` until it
        is empty and ``STATUS.readout_done``; or, with the streams on, wait for
        ``readout_done`` while :meth:`drain_stream` takes them."""
        epoch = self.epoch
        await self.regs.write("CTRL", flip=1)
        pages: list[int] = []
        while True:
            if not stream:
                head = await self.regs.read("DIRTY")
                if head["valid"]:
                    pages.append(head["page"])
                    await self.regs.write("DIRTY_POP")
                    continue
            status = await self.regs.read("STATUS")
            if status["readout_done"]:
                break
        assert self.epoch == epoch + 1, "the flip was not taken"
        if stream:
            pages, self.streamed = self.streamed, []
        self.seen.readouts.append((pages, bool(status["overflow"])))

    async def software(self, p_flip: float, *, stream: bool) -> None:
        """Flips at random moments, each followed by its read-out; and the log, in between."""
        while not self.done:
            await ClockCycles(self.dut.clk, 1 + int(self.rng.expovariate(p_flip)))
            if not self.done:
                await self.read_out(stream=stream)
            if not stream:
                await self.pop_log()

    async def pop_log(self) -> None:
        while (entry := await self.regs.read("LOG"))["valid"]:
            self.seen.log.append((entry["epoch"], entry["page"]))
            await self.regs.write("LOG_POP")

    async def drain_stream(self, p_ready: float) -> None:
        """The ``dirty`` and ``log`` streams, each with random back-pressure."""
        dut = self.dut
        page_bits = APERTURE_BITS - PAGE_BITS
        while True:
            dut.dirty__ready.value = self.rng.random() < p_ready
            dut.log__ready.value = self.rng.random() < p_ready
            await RisingEdge(dut.clk)
            if dut.dirty__valid.value and dut.dirty__ready.value:
                self.streamed.append(int(dut.dirty__payload.value))
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

    async def command_stream(self, commands: int) -> list[tuple[int, bytes]]:
        """A random Gen9 command stream (blits, stores, post-sync writes, batch buffers) run by
        the executor model; its writes go over the bus in order, as the GPU would issue them.
        Returns the writes."""
        rng = self.rng
        vgpu = Vgpu(seed=rng.randrange(1 << 30))
        layout = setup(vgpu, rng, ring_pages=4, batch_pages=8, data_pages=48, gpa_base=0)
        work = random_commands(rng, layout.data_pages, layout.batch_pages, count=commands)
        writes = [w for _, done in play(vgpu, work) for ex in done for w in ex.writes]
        ops = []
        for addr, data in writes:
            ops.append(self.master.init_write(addr, data))
            if rng.random() < 0.3:
                await ClockCycles(self.dut.clk, rng.randrange(1, 40))
        await Combine(*(op.wait() for op in ops))
        return writes

    async def finish(self, soft, *, stream: bool) -> None:
        """Stop the software's flips, end the last epoch and take its read-out and the log;
        then read the counters."""
        self.done = True
        await soft
        await self.read_out(stream=stream)
        if stream:
            while int(self.dut.log__valid.value):
                await RisingEdge(self.dut.clk)
        else:
            await self.pop_log()
        self.seen.counters = await self.regs.counters()

    def check_memory(self) -> None:
        """Every byte the memory holds (written with a non-zero value) inside the aperture lies
        in a page some read-out reported."""
        reported = {p for pages, _ in self.seen.readouts for p in pages}
        flagged = any(ov for _, ov in self.seen.readouts)
        mem = self.ram.read(0, self.aperture)
        written = {i >> PAGE_BITS for i, b in enumerate(mem) if b}
        missing = written - reported
        assert flagged or not missing, f"written pages never reported: {sorted(missing)[:10]}"


async def run(dut, *, p_flip: float, p_ready: float, stream: bool, commands: int = 0) -> TrackerTB:
    """Random writes, or (``commands``) a command stream's writes, with software flipping."""
    seed = cocotb.RANDOM_SEED
    tb = TrackerTB(dut, seed)
    tb.log.info("seed %d (replay: COCOTB_RANDOM_SEED=%d)", seed, seed)
    await tb.reset(stream=stream)
    cocotb.start_soon(tb.monitor())
    cocotb.start_soon(tb.drain_stream(p_ready))
    soft = cocotb.start_soon(tb.software(p_flip, stream=stream))
    if commands:
        tb.writes = await tb.command_stream(commands)
    else:
        await tb.traffic(WRITES)
    await tb.finish(soft, stream=stream)
    return tb


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def read_out_through_registers(dut):
    """Flips, read-outs and the log through DIRTY and LOG: every epoch is the model's exactly
    (the log has room for every page)."""
    tb = await run(dut, p_flip=0.01, p_ready=1.0, stream=False)
    check(tb.seen, page_bits=PAGE_BITS, aperture=1 << APERTURE_BITS, exact=True)
    tb.check_memory()
    assert len(tb.seen.readouts) > 3


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def read_out_on_streams_with_back_pressure(dut):
    """Read-out and log on the streams, slow consumers, frequent flips: still exact."""
    tb = await run(dut, p_flip=0.03, p_ready=0.3, stream=True)
    check(tb.seen, page_bits=PAGE_BITS, aperture=1 << APERTURE_BITS, exact=True)
    tb.check_memory()
    assert len(tb.seen.readouts) > 3


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def command_stream_with_random_flips(dut):
    """The executor's writes for a random Gen9 command stream, flips at random moments: every
    epoch is the model's, no written page is lost (each is reported in the epoch its write was
    taken in, or the next for a write in a flip's cycle), and the memory holds what the
    executor model wrote."""
    tb = await run(dut, p_flip=0.005, p_ready=0.7, stream=True, commands=150)
    check(tb.seen, page_bits=PAGE_BITS, aperture=1 << APERTURE_BITS, exact=True)
    reported = {p for pages, _ in tb.seen.readouts for p in pages}
    written = {(a + i) >> PAGE_BITS for a, data in tb.writes for i in range(len(data))}
    assert written <= reported, f"pages never reported: {sorted(written - reported)[:10]}"
    image: dict[int, int] = {}
    for addr, data in tb.writes:
        image.update(zip(range(addr, addr + len(data)), data, strict=True))
    mem = tb.ram.read(0, tb.aperture)
    wrong = [a for a, b in image.items() if mem[a] != b]
    assert not wrong, f"{len(wrong)} bytes differ from the executor's, first at {wrong[0]:#x}"
    assert len(tb.seen.readouts) > 3
