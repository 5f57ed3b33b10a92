"""Fast unit tests of the TLB and page-walk cache in Amaranth's simulator."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from hdl.mmu import MMU, Pwc, Tlb, TlbEntry
from vmassist.formats.mmu import FlushOp, PageSize


def _entry(vpn, *, size=PageSize.SIZE_4K, vpid=1, mode=0, ppn=0x55, pte=0, pte_valid=0):
    return TlbEntry.const(
        {
            "valid": 1,
            "mode": mode,
            "vpid": vpid,
            "vpn": vpn,
            "size": size,
            "ppn": ppn,
            "r": 1,
            "w": 1,
            "x": 1,
            "u": 1,
            "dirty": 1,
            "pte_valid": pte_valid,
            "pte": pte,
        }
    )


def _run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


async def _fill(ctx, dut, entry):
    ctx.set(dut.fill, 1)
    ctx.set(dut.fill_entry, entry)
    await ctx.tick()
    ctx.set(dut.fill, 0)
    await ctx.tick()  # the victim is registered: the next fill sees this one


async def _lookup(ctx, dut, vpn, *, vpid=1, mode=0):
    """A lookup in context (mode, vpid): the context goes a cycle ahead, the answer comes
    ``Tlb.LATENCY`` cycles after ``lk_valid``."""
    ctx.set(dut.ctx_vpid, vpid)
    ctx.set(dut.ctx_mode, mode)
    await ctx.tick()
    ctx.set(dut.lk_valid, 1)
    ctx.set(dut.lk_vpn, vpn)
    await ctx.tick()
    ctx.set(dut.lk_valid, 0)
    await ctx.tick().repeat(Tlb.LATENCY - 1)
    return ctx.get(dut.hit), ctx.get(dut.hit_idx), ctx.get(dut.hit_entry)


def test_lookup_pipeline_and_size_masks():
    dut = Tlb(8)

    async def bench(ctx):
        await _fill(ctx, dut, _entry(0x12345))
        await _fill(ctx, dut, _entry(0x40000, size=PageSize.SIZE_2M, ppn=0x200))
        await _fill(ctx, dut, _entry(0x80000, size=PageSize.SIZE_1G, ppn=0x40000, mode=1))
        hit, idx, e = await _lookup(ctx, dut, 0x12345)
        assert (hit, idx, e.ppn) == (1, 0, 0x55)
        assert (await _lookup(ctx, dut, 0x12346))[0] == 0
        assert (await _lookup(ctx, dut, 0x401FF))[:2] == (1, 1)  # inside the 2M page
        assert (await _lookup(ctx, dut, 0x40200))[0] == 0
        assert (await _lookup(ctx, dut, 0x80000 + 0x3FFFF, mode=1))[:2] == (1, 2)
        assert (await _lookup(ctx, dut, 0x80000, mode=0))[0] == 0  # other mode never matches
        assert (await _lookup(ctx, dut, 0x12345, vpid=2))[0] == 0  # other VPID never matches

    _run(dut, bench)


def _ref_victim(tree, n):
    node = 1
    while node < n:
        node = 2 * node + tree[node]
    return node - n


def _ref_touch(tree, n, idx):
    node = idx + n
    while node > 1:
        parent = node // 2
        tree[parent] = 1 if node == 2 * parent else 0
        node = parent


@pytest.mark.parametrize("n", [2, 4, 8, 32])
def test_plru_replacement_matches_reference(n):
    dut = Tlb(n)
    rng = random.Random(n)

    async def bench(ctx):
        tree = [0] * n
        where = {}
        for i in range(n):  # the empty TLB fills in index order
            await _fill(ctx, dut, _entry(0x1000 + i))
            _ref_touch(tree, n, i)
            where[0x1000 + i] = i
        for step in range(6 * n):
            if rng.random() < 0.5:  # touch a resident page by a served hit
                vpn = rng.choice(sorted(where))
                hit, idx, _ = await _lookup(ctx, dut, vpn)
                assert hit and idx == where[vpn]
                ctx.set(dut.touch, 1)
                ctx.set(dut.touch_idx, idx)
                await ctx.tick()
                ctx.set(dut.touch, 0)
                await ctx.tick()  # the victim is registered
                _ref_touch(tree, n, idx)
            else:  # fill a new page over the PLRU victim
                victim = _ref_victim(tree, n)
                vpn = 0x9000 + step
                await _fill(ctx, dut, _entry(vpn))
                del where[next(v for v, i in where.items() if i == victim)]
                where[vpn] = victim
                _ref_touch(tree, n, victim)
                hit, idx, _ = await _lookup(ctx, dut, vpn)
                assert hit and idx == victim, f"step {step}: filled {idx}, reference {victim}"

    _run(dut, bench)


def test_flush_ops_and_pte_invalidate():
    dut = Tlb(8)

    async def bench(ctx):
        await _fill(ctx, dut, _entry(0x100, vpid=1, pte=0x777, pte_valid=1))
        await _fill(ctx, dut, _entry(0x101, vpid=1, pte=0x777, pte_valid=1))
        await _fill(ctx, dut, _entry(0x200, vpid=2))
        await _fill(ctx, dut, _entry(0x300, vpid=1, mode=1))
        await _fill(ctx, dut, _entry(0x400, vpid=3, size=PageSize.SIZE_2M))
        # WP: every entry derived from PTE 0x777 goes, and only those.
        ctx.set(dut.pte_q, 0x777)
        await ctx.tick().repeat(Tlb.PTE_LATENCY)  # the back-pointer match is pipelined
        assert ctx.get(dut.pte_match) == 1
        ctx.set(dut.pte_inv, 1)
        await ctx.tick()
        ctx.set(dut.pte_inv, 0)
        await ctx.tick().repeat(Tlb.FLUSHED_LATENCY - 1)
        assert ctx.get(dut.flushed) == 2  # counted FLUSHED_LATENCY cycles after the drop
        assert ctx.get(dut.pte_match) == 0
        assert (await _lookup(ctx, dut, 0x100))[0] == 0
        assert (await _lookup(ctx, dut, 0x200, vpid=2))[0] == 1
        # INVLPG inside a 2M entry removes it. A flush takes the operands of the cycle before
        # its strobe.
        ctx.set(dut.flush_op, FlushOp.INVLPG)
        ctx.set(dut.flush_vpn, 0x4AB)
        ctx.set(dut.flush_vpid, 3)
        await ctx.tick()
        ctx.set(dut.flush, 1)
        await ctx.tick()
        # PWC (INVEPT) drops EPT-mode entries, keeps shadow ones. Strobes are never back to
        # back (each is a CSR write), and a flush drops its entries FLUSH_DROP cycles after its
        # strobe, counted FLUSHED_LATENCY cycles later.
        ctx.set(dut.flush, 0)
        await ctx.tick().repeat(Tlb.FLUSH_DROP - 1 + Tlb.FLUSHED_LATENCY)
        assert ctx.get(dut.flushed) == 1
        ctx.set(dut.flush_op, FlushOp.PWC)
        await ctx.tick()
        ctx.set(dut.flush, 1)
        await ctx.tick()
        ctx.set(dut.flush, 0)
        await ctx.tick().repeat(Tlb.FLUSH_DROP - 1 + Tlb.FLUSHED_LATENCY)
        assert ctx.get(dut.flushed) == 1
        assert (await _lookup(ctx, dut, 0x200, vpid=2))[0] == 0
        assert (await _lookup(ctx, dut, 0x300, vpid=1, mode=1))[0] == 1

    _run(dut, bench)


def test_fault_injection_flips_ppn():
    dut = Tlb(4)

    async def bench(ctx):
        await _fill(ctx, dut, _entry(0x10, ppn=0x1234))
        ctx.set(dut.inj, 1)
        ctx.set(dut.inj_idx, 0)
        ctx.set(dut.inj_mask, 0x10)
        await ctx.tick()
        ctx.set(dut.inj, 0)
        assert (await _lookup(ctx, dut, 0x10))[2].ppn == 0x1224

    _run(dut, bench)


def test_pwc_round_robin():
    dut = Pwc(2)

    async def bench(ctx):
        for gpn in (1, 2, 3, 4):
            ctx.set(dut.fill, 1)
            ctx.set(
                dut.fill_entry,
                {"valid": 1, "gpn": gpn, "hpn": gpn + 100, "r": 1, "w": 1, "x": 0, "level": 0},
            )
            await ctx.tick()
            ctx.set(dut.fill, 0)
            await ctx.tick()  # the slot is chosen a cycle ahead: no back-to-back fills
        present = []
        for gpn in (1, 2, 3, 4):
            ctx.set(dut.q_gpn, gpn)
            await ctx.tick().repeat(Pwc.LATENCY)
            present.append(ctx.get(dut.hit))
        # 1 and 2 fill the empty slots; 3 replaces slot 0 (pointer 0), 4 replaces slot 1.
        assert present == [0, 0, 1, 1]

    _run(dut, bench)


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="entries"):
        Tlb(12)
    with pytest.raises(ValueError, match="pwc entries"):
        Pwc(0)
    with pytest.raises(ValueError, match="wp_pages"):
        MMU(wp_pages=3)
    with pytest.raises(ValueError, match="entries"):
        MMU(entries=3)
