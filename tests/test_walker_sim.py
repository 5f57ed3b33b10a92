"""Fast unit tests of the MMU's walker in Amaranth's simulator, against the functional model.

The VMM model builds real guest tables and EPT (and, for shadow runs, the shadow table) in a
sparse memory. A copy of that memory answers the RTL's AXI4-Lite memory port from an Amaranth
testbench, CSRs are written over AXI4-Lite, and every request's response (fault, HPA, page size,
hit, walk reads) must equal the functional model's on the original memory, as must the memory
images afterwards (A/D write-backs and stores).
"""

from __future__ import annotations

import asyncio
import random

import pytest
from amaranth.sim import Simulator

from hdl.mmu import MMU
from models.vmm.memory import SparseMemory
from models.vmm.mmu import MMUModel
from models.vmm.scenario import AccessOp, random_scenario
from models.vmm.vmm import VMM
from vmassist.formats.mmu import MMU_CSR, AccessKind, Fault, MmuReq, MmuResp

CSRS = ("CTRL", "GCR3", "EPTP", "SCR3", "PT_BASE")
PARAMS = {"entries": 8, "pwc_entries": 4, "wp_pages": 64}


async def _mem_server(ctx, bus, mem: SparseMemory):
    """An AXI4-Lite slave over ``mem``: takes AR (or AW and W together) whenever offered, and
    answers on the next cycle. Handshakes are judged on the values sampled at the clock edge."""
    ctx.set(bus.arready, 1)
    ctx.set(bus.awready, 1)
    ctx.set(bus.wready, 1)
    signals = (bus.arvalid, bus.araddr, bus.awvalid, bus.wvalid, bus.awaddr, bus.wdata)
    while True:
        _, _, arvalid, araddr, awvalid, wvalid, awaddr, wdata = await ctx.tick().sample(*signals)
        if arvalid:
            ctx.set(bus.arready, 0)
            ctx.set(bus.rvalid, 1)
            ctx.set(bus.rdata, mem.read64(araddr))
            await ctx.tick().until(bus.rready)
            ctx.set(bus.rvalid, 0)
            ctx.set(bus.arready, 1)
        elif awvalid and wvalid:
            mem.write64(awaddr, wdata)
            ctx.set(bus.awready, 0)
            ctx.set(bus.wready, 0)
            ctx.set(bus.bvalid, 1)
            await ctx.tick().until(bus.bready)
            ctx.set(bus.bvalid, 0)
            ctx.set(bus.awready, 1)
            ctx.set(bus.wready, 1)


async def _csr_write(ctx, bus, name: str, value: int):
    ctx.set(bus.awaddr, MMU_CSR[name].offset)
    ctx.set(bus.wdata, value)
    ctx.set(bus.wstrb, 0xFF)
    ctx.set(bus.awvalid, 1)
    ctx.set(bus.wvalid, 1)
    ctx.set(bus.bready, 1)
    await ctx.tick().until(bus.awready)
    ctx.set(bus.awvalid, 0)
    ctx.set(bus.wvalid, 0)
    await ctx.tick().until(bus.bvalid)
    ctx.set(bus.bready, 0)


async def _request(ctx, dut, gva: int, kind: AccessKind, user: bool, wdata: int):
    ctx.set(
        dut.req.payload,
        MmuReq.const(
            {"gva": gva & (2**48 - 1), "kind": int(kind), "user": int(user), "wdata": wdata}
        ),
    )
    ctx.set(dut.req.valid, 1)
    await ctx.tick().until(dut.req.ready)
    ctx.set(dut.req.valid, 0)
    ctx.set(dut.resp.ready, 1)
    (payload,) = await ctx.tick().sample(dut.resp.payload).until(dut.resp.valid)
    ctx.set(dut.resp.ready, 0)
    return MmuResp.from_bits(payload.as_value().value)


def _prepare(seed: int, mode: str):
    """A scenario's tables built by the VMM on the functional model; its accesses."""
    scenario = random_scenario(seed, n_ops=60)
    model = MMUModel(**PARAMS)
    vmm = VMM(model)
    asyncio.run(vmm.setup(scenario))
    asyncio.run(vmm.switch(mode))
    accesses = [op for op in scenario.ops if isinstance(op, AccessOp)]
    return model, accesses


@pytest.mark.parametrize("mode", ["ept", "shadow"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_walker_matches_model(seed: int, mode: str):
    model, accesses = _prepare(seed, mode)
    mem = SparseMemory()
    for addr, value in model.mem.items():
        mem.write64(addr, value)
    csrs = {name: model.read_csr(name) for name in CSRS}
    protected = [page for page, bit in enumerate(model.wpt) if bit]
    assert protected or mode == "ept"
    dut = MMU(**PARAMS)
    rng = random.Random(seed)
    checked = []

    async def bench(ctx):
        await ctx.tick().repeat(20)  # the WPT clears after reset
        for name in CSRS:
            await _csr_write(ctx, dut.csr, name, csrs[name])
        for page in protected:  # the VMM's write-protect table
            await _csr_write(ctx, dut.csr, "WPT", MMU_CSR["WPT"].pack(page=page, set=1))
        for op in accesses * 2:  # the second pass hits the TLB
            wdata = rng.getrandbits(64) if op.kind == AccessKind.WRITE else 0
            hw = await _request(ctx, dut, op.gva, op.kind, op.user, wdata)
            ref = model.request(op.gva, op.kind, op.user, wdata)
            got = (Fault(hw.fault), hw.hit, hw.walk_reads)
            want = (ref.fault, ref.hit, ref.walk_reads)
            assert got == want, (
                f"seed {seed} {mode} gva {op.gva:#x} {op.kind.name}: {got} != {want}"
            )
            if ref.fault in (Fault.NONE, Fault.WP):
                assert (hw.hpa, hw.size) == (ref.hpa, ref.size), f"seed {seed} gva {op.gva:#x}"
            checked.append(ref.fault)

    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def memory(ctx):
        await _mem_server(ctx, dut.mem, mem)

    sim.add_testbench(memory, background=True)
    sim.add_testbench(bench)
    sim.run()
    assert mem.snapshot() == model.mem.snapshot(), "A/D write-backs or stores differ"
    assert len(checked) == 2 * len(accesses)
