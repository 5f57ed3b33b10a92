"""cocotb entry point for :func:`tb.gpu.run.run_track`: a write-address trace through the
tracker (``vmassist gpu track``), as ``models.gpu.trace.run_model`` runs it on the model.

Each AW goes on the snoop port with ``awvalid`` and ``awready`` high for one cycle, and the
next follows once the tracker has had a cycle per page of the last (a burst that touches k
pages takes k cycles in the tracker, so no AW is lost for want of room, as none is in the
model). At each ``flip`` and at the end, software (through the registers) flips, takes the
ended epoch's pages from the ``dirty`` stream until ``STATUS.readout_done``, and empties the
log, before the next AW: the log holds what the model's holds, and overflows where it does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from models.gpu.axi import pages_touched
from models.gpu.trace import FLIP, load_trace
from models.gpu.tracker import EpochReport
from vmassist.formats.gpu import APERTURE, PAGE_BITS

from .regs import Registers


class TraceDriver:
    """Software and a bus master around ``GpuTracker``: AWs on the snoop port, flips and
    read-outs through the registers. ``log_always``: the log is drained as entries come (an
    interrupt handler keeping up), not at each flip."""

    def __init__(self, dut, *, log_always: bool = False):
        self.log_always = log_always
        self.dut = dut
        Clock(dut.clk, 10, unit="ns").start()
        self.regs = Registers(dut)
        self.pages: list[int] = []
        self.epochs: list[EpochReport] = []

    async def reset(self) -> None:
        dut = self.dut
        dut.aw__awvalid.value = 0
        dut.aw__awready.value = 0
        dut.dirty__ready.value = 1
        dut.log__ready.value = int(self.log_always)
        dut.rst.value = 1
        await ClockCycles(dut.clk, 4)
        dut.rst.value = 0
        await ClockCycles(dut.clk, 2)
        await self.regs.write("CONFIG", stream=1)
        cocotb.start_soon(self.collect())

    async def collect(self) -> None:
        while True:
            await RisingEdge(self.dut.clk)
            if self.dut.dirty__valid.value:
                self.pages.append(int(self.dut.dirty__payload.value))

    async def write(self, aw) -> None:
        dut = self.dut
        dut.aw__awaddr.value = aw.addr
        dut.aw__awlen.value = aw.len
        dut.aw__awsize.value = aw.size
        dut.aw__awburst.value = int(aw.burst)
        dut.aw__awvalid.value = 1
        dut.aw__awready.value = 1
        await RisingEdge(dut.clk)
        dut.aw__awvalid.value = 0
        dut.aw__awready.value = 0
        spare = len(pages_touched(aw, page_bits=PAGE_BITS, aperture=APERTURE)) - 1
        if spare > 0:
            await ClockCycles(dut.clk, spare)

    async def flip(self) -> EpochReport:
        """Flip, take the ended epoch's read-out, then empty the log."""
        await self.regs.write("CTRL", flip=1)
        while not (status := await self.regs.read("STATUS"))["readout_done"]:
            pass
        report = EpochReport(len(self.epochs), tuple(self.pages), bool(status["overflow"]))
        self.epochs.append(report)
        self.pages = []
        if self.log_always:
            return report
        dut = self.dut
        dut.log__ready.value = 1
        await ClockCycles(dut.clk, 2)
        while dut.log__valid.value:
            await RisingEdge(dut.clk)
        dut.log__ready.value = 0
        return report


@cocotb.test()
async def track(dut):
    trace = load_trace(os.environ["GPU_TRACE"])
    drv = TraceDriver(dut)
    await drv.reset()
    for item in [*trace, FLIP]:
        if item == FLIP:
            await drv.flip()
        else:
            await drv.write(item)
    epochs = [{"epoch": e.epoch, "pages": e.pages, "overflow": e.overflow} for e in drv.epochs]
    Path(os.environ["GPU_RESULT"]).write_text(json.dumps({"epochs": epochs}))
