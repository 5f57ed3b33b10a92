"""The MMU testbench: owns clock and reset, the CSR master, the memory and the stream agents,
and exposes them to the VMM model as an :class:`~models.vmm.port.MmuPort`."""

from __future__ import annotations

import logging
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, Timer
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiLiteRam

from models.vmm.port import Response
from vmassist.formats.mmu import MMU_CSR, PA_BITS, AccessKind, Fault, MmuReq, MmuResp, PageSize

from ..common.stream import StreamDriver, StreamMonitor, random_pauses

__all__ = ["MmuTB", "RamMemory", "HwPort", "CLOCK_NS"]

CLOCK_NS = 10


class RamMemory:
    """The VMM's view of the testbench RAM (the model's ``Memory`` protocol): backdoor 64-bit
    accesses to the same sparse memory the DUT reaches over AXI4-Lite."""

    def __init__(self, ram: AxiLiteRam):
        self._ram = ram

    def read64(self, addr: int) -> int:
        return int.from_bytes(self._ram.read(addr & ~7, 8), "little")

    def write64(self, addr: int, value: int) -> None:
        self._ram.write(addr & ~7, (value & (2**64 - 1)).to_bytes(8, "little"))

    def clear(self) -> None:
        self._ram.mem.segs.clear()


class HwPort:
    """An :class:`~models.vmm.port.MmuPort` backed by the RTL."""

    def __init__(self, tb: MmuTB):
        self._tb = tb
        self.mem = RamMemory(tb.ram)

    async def csr_write(self, name: str, value: int) -> None:
        await self._tb.csr.write_qword(MMU_CSR[name].offset, value)

    async def csr_read(self, name: str) -> int:
        return await self._tb.csr.read_qword(MMU_CSR[name].offset)

    async def access(self, gva: int, kind: AccessKind, user: bool, wdata: int = 0) -> Response:
        return await self._tb.access(gva, kind, user, wdata)


class MmuTB:
    """Clock, reset, AXI agents and stream agents around the ``mmu`` top.

    Parameters
    ----------
    dut
        The cocotb handle of the ``mmu`` top.
    seed : int
        Seeds the latency, idle and back-pressure generators.
    p_pause : float
        Probability of a pause cycle on each AXI channel and on both streams (0 disables).
    """

    @classmethod
    async def create(cls, dut, *, seed: int, p_pause: float = 0.3) -> MmuTB:
        """Hold reset, let it settle, then attach the agents (they sample reset when built)."""
        dut.rst.value = 1
        # Every handshake input starts at 0, so no agent ever samples an X-derived output.
        for name in (
            "csr__awvalid",
            "csr__wvalid",
            "csr__bready",
            "csr__arvalid",
            "csr__rready",
            "mem__awready",
            "mem__wready",
            "mem__bvalid",
            "mem__arready",
            "mem__rvalid",
            "req__valid",
            "resp__ready",
        ):
            getattr(dut, name).value = 0
        await Timer(1, unit="ns")
        tb = cls(dut, seed=seed, p_pause=p_pause)
        await tb.reset()
        return tb

    def __init__(self, dut, *, seed: int, p_pause: float = 0.3):
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb.mmu")
        self.rng = random.Random(seed)
        for bus in ("csr", "mem"):  # cocotbext-axi is chatty at INFO
            logging.getLogger(f"cocotb.{dut._name}.{bus}").setLevel(logging.WARNING)
        Clock(dut.clk, CLOCK_NS, unit="ns").start()
        self.csr = AxiLiteMaster(
            AxiLiteBus.from_prefix(dut, "csr", bus_separator="__"), dut.clk, dut.rst
        )
        self.ram = AxiLiteRam(
            AxiLiteBus.from_prefix(dut, "mem", bus_separator="__"),
            dut.clk,
            dut.rst,
            size=2**PA_BITS,
        )
        if p_pause:
            for ch in (
                self.ram.write_if.aw_channel,
                self.ram.write_if.w_channel,
                self.ram.write_if.b_channel,
                self.ram.read_if.ar_channel,
                self.ram.read_if.r_channel,
            ):
                ch.set_pause_generator(random_pauses(random.Random(self.rng.random()), p_pause))
        self.req = StreamDriver(
            dut, "req", dut.clk, pauses=random_pauses(random.Random(self.rng.random()), p_pause / 2)
        )
        self.resp = StreamMonitor(
            dut,
            "resp",
            dut.clk,
            pauses=random_pauses(random.Random(self.rng.random()), p_pause / 2),
        )
        self.port = HwPort(self)
        self.cycle = 0
        cocotb.start_soon(self._count())

    async def _count(self) -> None:
        while True:
            await RisingEdge(self.dut.clk)
            self.cycle += 1

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    async def submit(self, gva: int, kind: AccessKind, user: bool, wdata: int = 0) -> int:
        """Queue one request without waiting for its answer; returns the submit cycle."""
        bits = MmuReq.const(
            {"gva": gva & (2**48 - 1), "kind": int(kind), "user": int(user), "wdata": wdata}
        ).as_bits()
        start = self.cycle
        await self.req.send(bits)
        return start

    async def collect(self, start: int) -> Response:
        """The next response, in order, timed from ``start``."""
        r = MmuResp.from_bits(await self.resp.queue.get())
        return Response(
            hpa=r.hpa,
            fault=Fault(r.fault),
            size=PageSize(r.size),
            hit=bool(r.hit),
            walk_reads=r.walk_reads,
            flushed=r.flushed,
            cycles=self.cycle - start,
        )

    async def access(self, gva: int, kind: AccessKind, user: bool, wdata: int = 0) -> Response:
        start = await self.submit(gva, kind, user, wdata)
        return await self.collect(start)
