"""The MMU: TLB, 2-D (EPT) and 1-D (shadow) page walker, write-protect faults, CSRs.

The behaviour is specified in ``docs/mmu.md``; the functional model ``models/vmm/mmu.py``
implements the same contract.
"""

from types import SimpleNamespace

from amaranth import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from vmassist.formats.mmu import (
    EPTE,
    MMU_COUNTERS,
    MMU_CSR,
    MMU_ID,
    PA_BITS,
    VA_BITS,
    X86PTE,
    AccessKind,
    Fault,
    FlushOp,
    MmuReq,
    MmuResp,
    ShadowPTE,
    rsvd_pfn_mask,
)

from ..common import AxiLiteMaster, AxiLiteSignature, CsrBlock
from ..common.bits import mux_onehot
from ..common.fsm import OneHotFSM
from ..common.params import require
from .pwc import Pwc
from .tlb import Tlb, TlbEntry, size_mask

__all__ = ["MMU"]

# Tlb.FLUSHED_LATENCY - 1 cycles between a WP invalidation and its count.
_WP_WAIT = tuple(f"WP_W{i}" for i in range(1, Tlb.FLUSHED_LATENCY))

#: The states of a nested (EPT-mode) walk: never entered in shadow mode.
EPT_WALK_STATES = (
    "XLATE",
    "XLATE2",
    "XLATE3",
    "XLATE4",
    "E_RD",
    "E_WT",
    "XDONE",
    "G_RD",
    "G_WT",
    "AD_CHK",
    "AD_WB",
    "AD_WT",
)

_STATES = (
    "IDLE",
    "LK1",
    "LK2",
    "LK3",
    "LOOKUP",
    *EPT_WALK_STATES,
    "S_RD",
    "S_WT",
    "MK_ENT",
    "FILL",
    "STORE_CHK",
    "STORE_CHK2",
    "STORE_CHK3",
    "STORE_CHK4",
    "STORE_DO",
    "ST_WT",
    *_WP_WAIT,
    "WP_CNT",
    "RESP",
)

PN = PA_BITS - 12


def _index(addr, level):
    """The 9-bit table index of ``addr`` at a run-time ``level``."""
    return Array(addr[12 + 9 * i : 21 + 9 * i] for i in range(4))[level]


def _entry_addr(table_pfn, addr, level):
    """Address of the entry that ``addr`` selects at ``level`` in the table at ``table_pfn``."""
    return Cat(Const(0, 3), _index(addr, level), table_pfn)[:PA_BITS]


def _is_leaf(level, ps):
    """An entry maps a page: level 0, or PS at level 1 (2M) or 2 (1G)."""
    return (level == 0) | (ps & ((level == 1) | (level == 2)))


def _leaf_addr(pfn, addr, level):
    """Physical address of ``addr`` in a leaf page of ``level`` whose frame is ``pfn``."""
    return Array(Cat(addr[: 12 + 9 * i], pfn[9 * i :])[:PA_BITS] for i in range(3))[level]


def _rsvd(pfn, level, is_leaf, *, ept: bool):
    """Reserved PFN bits set: above MAXPHYADDR anywhere, or low bits of a large-page leaf."""
    leaf_mask = Array(Const(rsvd_pfn_mask(i, ept=ept), 40) for i in range(4))[level]
    return ((pfn & Const(rsvd_pfn_mask(0, ept=ept), 40)) != 0) | (
        is_leaf & ((pfn & leaf_mask) != 0)
    )


def _set(view, fields):
    """Statements assigning each named field of a struct view (dicts of non-constants)."""
    return [getattr(view, name).eq(value) for name, value in fields.items()]


def _perm_fail(kind, user, rw, us, xd):
    """x86 permission check with CR0.WP=1, EFER.NXE=1, SMEP/SMAP off."""
    return ((kind == AccessKind.WRITE) & ~rw) | (user & ~us) | ((kind == AccessKind.FETCH) & xd)


class MMU(wiring.Component):
    """TLB plus nested/shadow page walker with runtime mode switch and flush-on-WP-fault.

    Parameters
    ----------
    entries : int
        TLB entries, a power of two from 2 to 256 (default 32).
    pwc_entries : int
        Page-walk-cache entries, 1 to 64 (default 8).
    wp_pages : int
        Pages covered by the write-protect table from PT_BASE, a power of two from 2 to 4096.

    Members
    -------
    req : ``In(stream.Signature(MmuReq))``
    resp : ``Out(stream.Signature(MmuResp))``
        One response per request, in order.
    csr : ``In(AxiLiteSignature(addr_width=8, data_width=64))``
        Registers of :data:`~vmassist.formats.mmu.MMU_CSR`.
    mem : ``Out(AxiLiteSignature(addr_width=46, data_width=64))``
        The walker's and the stores' memory port.
    """

    def __init__(self, *, entries: int = 32, pwc_entries: int = 8, wp_pages: int = 4096):
        require(
            self,
            isinstance(wp_pages, int) and 2 <= wp_pages <= 4096 and not wp_pages & (wp_pages - 1),
            ValueError(f"wp_pages must be a power of two from 2 to 4096, not {wp_pages!r}"),
        )
        try:
            self._tlb = Tlb(entries)  # validates entries
            self._pwc = Pwc(pwc_entries)  # validates pwc_entries
        except ValueError as e:
            require(self, False, e)
        self._wp_pages = wp_pages
        super().__init__(
            {
                "req": In(stream.Signature(MmuReq)),
                "resp": Out(stream.Signature(MmuResp)),
                "csr": In(AxiLiteSignature(addr_width=MMU_CSR.addr_width, data_width=64)),
                "mem": Out(AxiLiteSignature(addr_width=PA_BITS, data_width=64)),
            }
        )

    @property
    def entries(self) -> int:
        return self._tlb.entries

    @property
    def pwc_entries(self) -> int:
        return self._pwc.entries

    @property
    def wp_pages(self) -> int:
        return self._wp_pages

    def elaborate(self, platform):
        m = Module()
        m.submodules.tlb = tlb = self._tlb
        m.submodules.pwc = pwc = self._pwc
        m.submodules.csrs = csrs = CsrBlock(MMU_CSR, read_stages=2)
        m.submodules.axi = axi = AxiLiteMaster(addr_width=PA_BITS, data_width=64)
        m.submodules.wpt = wpt = memory.Memory(shape=1, depth=self._wp_pages, init=[])
        wpt_rd = wpt.read_port()
        wpt_wr = wpt.write_port()
        wiring.connect(m, wiring.flipped(self.csr), csrs.bus)
        wiring.connect(m, wiring.flipped(self.mem), axi.bus)

        c_ctrl = csrs.rw["CTRL"]
        gcr3 = csrs.rw["GCR3"][12:PA_BITS]
        eptp = csrs.rw["EPTP"][12:PA_BITS]
        scr3 = csrs.rw["SCR3"][12:PA_BITS]
        pt_base = csrs.rw["PT_BASE"][12:PA_BITS]

        # ---- request and walk state ------------------------------------------------------------
        gva = Signal(VA_BITS)
        kind = Signal(2)
        user = Signal()
        wdata = Signal(64)
        mode = Signal()
        vpid = Signal(16)
        pwc_en = Signal()
        is_write = Signal()  # kind == WRITE, registered with the request

        r_hpa = Signal(PA_BITS)
        r_fault = Signal(3)
        r_size = Signal(2)
        r_hit = Signal()
        r_reads = Signal(5)
        r_flushed = Signal(7)
        m.d.comb += [
            self.resp.payload.hpa.eq(r_hpa),
            self.resp.payload.fault.eq(r_fault),
            self.resp.payload.size.eq(r_size),
            self.resp.payload.hit.eq(r_hit),
            self.resp.payload.walk_reads.eq(r_reads),
            self.resp.payload.flushed.eq(r_flushed),
        ]

        kill_refill = Signal()  # a flush arrived during this walk
        new_ent = Signal(TlbEntry)  # the entry the walk will install

        lvl = Signal(2)  # guest (or shadow) level being walked
        leaf_lvl = Signal(2)
        acc_rw = Signal()
        acc_us = Signal()
        acc_xd = Signal()
        g_hpa = Array(Signal(PA_BITS - 3, name=f"g_hpa{i}") for i in range(4))
        g_val = Array(Signal(64, name=f"g_val{i}") for i in range(4))
        g_ew = Array(Signal(name=f"g_ew{i}") for i in range(4))
        wb_need_q = Signal(4)  # guest levels whose entry gets an A/D write-back (registered)
        wb_need = Signal(4)
        table = Signal(PN)  # shadow table frame

        xgpa = Signal(PA_BITS)  # GPA being translated through the EPT
        final = Signal()  # ... for the final access (else for a guest table)
        elvl = Signal(2)
        etable = Signal(PN)
        e_r = Signal()
        e_w = Signal()
        e_x = Signal()
        x_hpa = Signal(PA_BITS)
        x_lvl = Signal(2)
        x_r = Signal()
        x_w = Signal()
        x_x = Signal()

        # ---- counters ------------------------------------------------------------------------
        counters = {name: Signal(32, name=f"cnt_{name.lower()}") for name in MMU_COUNTERS}
        inc = {name: Signal(name=f"inc_{name.lower()}") for name in counters}
        for name, cnt in counters.items():
            m.d.comb += csrs.ro[name].eq(cnt)
            # Increments are registered first, so no decision logic feeds a carry chain in the
            # same cycle; the counters trail their events by one cycle (FLUSHED by two: the
            # TLB's count is registered).
            if name == "FLUSHED":
                flushed_q = Signal(8)
                m.d.sync += [flushed_q.eq(tlb.flushed), cnt.eq(cnt + flushed_q)]
            else:
                inc_q = Signal(name=f"inc_{name.lower()}_q")
                m.d.sync += [inc_q.eq(inc[name]), cnt.eq(cnt + inc_q)]

        # After reset the write-protect table (block RAM, not reset) is swept clear, one page a
        # cycle; requests wait meanwhile and STATUS.init tells software when it may program it.
        init_ctr = Signal(range(self._wp_pages))
        init = Signal(init=1)
        with m.If(init):
            m.d.sync += init_ctr.eq(init_ctr + 1)
            with m.If(init_ctr == self._wp_pages - 1):
                m.d.sync += init.eq(0)
        wp_gva = Signal(VA_BITS)
        wp_hpa = Signal(PA_BITS)
        wp_data = Signal(64)
        busy = Signal()
        m.d.comb += [
            csrs.ro["ID"].eq(MMU_ID),
            csrs.ro["WP_GVA"].eq(wp_gva),
            csrs.ro["WP_HPA"].eq(wp_hpa),
            csrs.ro["WP_DATA"].eq(wp_data),
            csrs.ro["STATUS"].eq(Cat(busy, init)),
        ]

        # ---- flushes, write-protect table, fault injection from CSRs -----------------------------
        # A FLUSH write arrives (takes effect) the cycle after its CSR strobe: the walker then
        # knows a cycle ahead whether a flush arrives in the cycle it fills the TLB.
        fl_stb, fl_data = csrs.wo["FLUSH"]
        fl_arrive = Signal()
        m.d.sync += fl_arrive.eq(fl_stb)
        fl = MMU_CSR["FLUSH"].fields
        fl_op = fl_data[fl[0].offset : fl[0].offset + fl[0].width]
        fl_vpid = fl_data[fl[1].offset : fl[1].offset + fl[1].width]
        m.d.comb += [
            tlb.flush.eq(fl_arrive),
            tlb.flush_op.eq(fl_op),
            tlb.flush_vpid.eq(fl_vpid),
            tlb.flush_vpn.eq(csrs.rw["FLUSH_GVA"][12:VA_BITS]),
            pwc.flush.eq(fl_arrive & ((fl_op == FlushOp.ALL) | (fl_op == FlushOp.PWC))),
        ]
        fl_count = inc["FLUSHES"]
        m.d.comb += fl_count.eq(fl_arrive)

        wpt_stb, wpt_data = csrs.wo["WPT"]
        m.d.comb += [
            wpt_wr.en.eq(init | wpt_stb),
            wpt_wr.addr.eq(Mux(init, init_ctr, wpt_data[:12])),
            wpt_wr.data.eq(~init & wpt_data[63]),
        ]

        inj_stb, inj_data = csrs.wo["INJ"]
        m.d.comb += [
            tlb.inj.eq(inj_stb),
            tlb.inj_idx.eq(inj_data[:8]),
            tlb.inj_mask.eq(csrs.rw["INJ_MASK"][:PN]),
        ]

        # ---- memory port -----------------------------------------------------------------------
        # The answer is registered before the walker acts on it: the entry, its error flag, and
        # its decoded leaf/fault/permission flags (at the levels being walked, which are stable
        # while a read is outstanding) arrive together one cycle after the bus handshake.
        cmd = axi.cmd
        rsp = axi.resp
        m.d.comb += rsp.ready.eq(1)
        rdata = rsp.payload.rdata
        rd_v = Signal()  # a memory answer (read or write) is in rd_*
        rd_err = Signal()
        rd_q = Signal(64)
        m.d.sync += [rd_v.eq(rsp.valid), rd_err.eq(rsp.payload.err)]
        with m.If(rsp.valid):
            m.d.sync += rd_q.eq(rdata)

        ept_in = EPTE(rdata)
        e_leaf = Signal()  # EPT entry at elvl: a leaf
        e_bad = Signal()  # ... not present, W without R, or reserved bits
        e_leaf_in = _is_leaf(elvl, ept_in.ps)
        m.d.sync += [
            e_leaf.eq(e_leaf_in),
            e_bad.eq(
                (~(ept_in.r | ept_in.w | ept_in.x))
                | (ept_in.w & ~ept_in.r)
                | ((elvl == 3) & ept_in.ps)
                | _rsvd(ept_in.pfn, elvl, e_leaf_in, ept=True)
            ),
        ]
        # Guest and shadow entries share the x86 layout of these fields.
        pte_in = X86PTE(rdata)
        p_leaf = Signal()  # guest/shadow entry at lvl: a leaf
        p_bad = Signal()  # ... not present or reserved bits
        p_perm = Signal()  # ... a leaf that denies the access
        p_leaf_in = _is_leaf(lvl, pte_in.ps)
        m.d.sync += [
            p_leaf.eq(p_leaf_in),
            p_bad.eq(
                ~pte_in.p | ((lvl == 3) & pte_in.ps) | _rsvd(pte_in.pfn, lvl, p_leaf_in, ept=False)
            ),
            p_perm.eq(
                _perm_fail(kind, user, acc_rw & pte_in.rw, acc_us & pte_in.us, acc_xd | pte_in.xd)
            ),
        ]
        ept = EPTE(rd_q)
        pte = X86PTE(rd_q)
        spte = ShadowPTE(rd_q)

        fsm = OneHotFSM(m, _STATES, name="mmu")
        # The states LK1..LK3 and XLATE..XLATE4 wait out these pipelines.
        assert Tlb.LATENCY == 4 and Pwc.LATENCY == 3

        # The command's address and data depend on the state alone (an AND-OR of the state
        # bits); only its valid depends on the state's decisions. The master loads them in every
        # idle cycle.
        wb_cur = X86PTE(g_val[lvl])
        wb_val = Signal(X86PTE)  # the entry with A set, and D for the leaf of a WRITE
        m.d.comb += [
            wb_val.eq(wb_cur),
            wb_val.a.eq(1),
            wb_val.d.eq(wb_cur.d | ((lvl == leaf_lvl) & is_write)),
        ]
        g_addr = Cat(Const(0, 3), g_hpa[lvl])
        addr_by_state = {
            "E_RD": _entry_addr(etable, xgpa, elvl),
            "G_RD": g_addr,
            "AD_WB": g_addr,
            "S_RD": _entry_addr(table, gva, lvl),
            "STORE_DO": r_hpa,
        }
        m.d.comb += [
            cmd.payload.addr.eq(
                mux_onehot(
                    Cat(fsm.ongoing(st) for st in addr_by_state),
                    [Value.cast(a)[:PA_BITS] for a in addr_by_state.values()],
                )
            ),
            cmd.payload.we.eq(fsm.ongoing("AD_WB") | fsm.ongoing("STORE_DO")),
            cmd.payload.wdata.eq(Mux(fsm.ongoing("STORE_DO"), wdata, wb_val)),
        ]

        def read(then):
            m.d.comb += cmd.valid.eq(1)
            with m.If(cmd.ready):
                m.d.sync += r_reads.eq(r_reads + 1)
                m.d.comb += inc["WALK_READS"].eq(1)
                fsm.next = then

        def respond(fault):
            m.d.sync += r_fault.eq(fault)
            if fault in (Fault.GUEST_PF, Fault.EPT_VIOLATION, Fault.SHADOW_PF):
                m.d.comb += inc["FAULTS"].eq(1)
            fsm.next = "RESP"

        # Any flush during a request kills that request's refill.
        with m.If(fl_arrive & busy):
            m.d.sync += kill_refill.eq(1)

        # The TLB is looked up in the cycle a request is accepted, against the context (CTRL)
        # of the cycle before, which the request takes.
        ctx_mode, ctx_pwc, ctx_vpid = Signal(), Signal(), Signal(16)
        m.d.sync += [ctx_mode.eq(c_ctrl[0]), ctx_pwc.eq(c_ctrl[1]), ctx_vpid.eq(c_ctrl[16:32])]
        m.d.comb += [
            tlb.ctx_mode.eq(c_ctrl[0]),
            tlb.ctx_vpid.eq(c_ctrl[16:32]),
            tlb.lk_vpn.eq(self.req.payload.gva[12:]),
            pwc.q_gpn.eq(xgpa[12:]),
        ]

        # A TLB hit's PLRU touch, or the invalidation of a hit that cannot serve, is applied the
        # cycle after the lookup's answer, from registers.
        touch_q, kill_q = Signal(), Signal()
        hit_idx_q = Signal.like(tlb.hit_idx)
        m.d.sync += [touch_q.eq(0), kill_q.eq(0)]
        m.d.comb += [
            tlb.touch.eq(touch_q),
            tlb.touch_idx.eq(hit_idx_q),
            tlb.kill.eq(kill_q),
            tlb.kill_idx.eq(hit_idx_q),
        ]

        # The page-walk cache is filled the cycle after the EPT leaf is read, from the registered
        # translation; a flush that arrived meanwhile (kill_refill) still wins.
        pwc_fill_q = Signal()
        m.d.sync += pwc_fill_q.eq(0)
        low = size_mask(x_lvl, PN)
        m.d.comb += [
            pwc.fill.eq(pwc_fill_q & ~kill_refill),
            *_set(
                pwc.fill_entry,
                {
                    "valid": 1,
                    "gpn": xgpa[12:] & ~low,
                    "hpn": x_hpa[12:] & ~low,
                    "r": x_r,
                    "w": x_w,
                    "x": x_x,
                    "level": x_lvl,
                },
            ),
        ]

        hit_e = tlb.hit_entry
        fill_q = Signal()  # the TLB fill, decided the cycle before (MK_ENT)
        m.d.sync += fill_q.eq(0)
        m.d.comb += [tlb.fill.eq(fill_q), tlb.fill_entry.eq(new_ent)]
        # A CSR flush's second cycle, and its third, when the TLB drops its entries.
        tlb_flush_q1, tlb_flush_q = Signal(), Signal()
        assert Tlb.FLUSH_DROP == 2
        m.d.sync += [tlb_flush_q1.eq(fl_arrive), tlb_flush_q.eq(tlb_flush_q1)]

        with fsm.State("IDLE"):
            m.d.comb += [self.req.ready.eq(~init), tlb.lk_valid.eq(self.req.valid & ~init)]
            with m.If(self.req.valid & ~init):
                p = self.req.payload
                m.d.sync += [
                    gva.eq(p.gva),
                    kind.eq(p.kind),
                    is_write.eq(p.kind == AccessKind.WRITE),
                    user.eq(p.user),
                    wdata.eq(p.wdata),
                    mode.eq(ctx_mode),
                    pwc_en.eq(ctx_pwc),
                    vpid.eq(ctx_vpid),
                    r_reads.eq(0),
                    r_flushed.eq(0),
                    r_fault.eq(Fault.NONE),
                    kill_refill.eq(0),
                ]
                fsm.next = "LK1"

        # The TLB's lookup pipeline (Tlb.LATENCY cycles from the request's acceptance).
        with fsm.State("LK1"):
            fsm.next = "LK2"

        with fsm.State("LK2"):
            fsm.next = "LK3"

        with fsm.State("LK3"):
            fsm.next = "LOOKUP"

        # Only the next state depends on whether the hit serves: everything else is written
        # either way (a miss's walk overwrites the hit's HPA and size).
        with fsm.State("LOOKUP"):
            serve = (
                tlb.hit
                & ~_perm_fail(kind, user, hit_e.w & hit_e.dirty, hit_e.u, ~hit_e.x)
                & ((kind != AccessKind.READ) | hit_e.r)
            )
            mask = size_mask(hit_e.size, PN)
            m.d.sync += [
                touch_q.eq(serve),
                kill_q.eq(tlb.hit & ~serve),
                hit_idx_q.eq(tlb.hit_idx),
                r_hit.eq(serve),
                r_size.eq(hit_e.size),
                r_hpa.eq(Cat(gva[:12], (hit_e.ppn & ~mask) | (gva[12 : 12 + PN] & mask))),
                lvl.eq(3),
                acc_rw.eq(1),
                acc_us.eq(1),
                acc_xd.eq(0),
                table.eq(scr3),
                xgpa.eq(_entry_addr(gcr3, gva, 3)),
                final.eq(0),
            ]
            with m.If(serve):
                m.d.comb += inc["HITS"].eq(1)
                with m.If(is_write):
                    fsm.next = "STORE_CHK"
                with m.Else():
                    fsm.next = "RESP"
            with m.Else():
                m.d.comb += inc["MISSES"].eq(1)
                with m.If(mode):
                    fsm.next = "S_RD"
                with m.Else():
                    fsm.next = "XLATE"

        # ---- GPA -> HPA through the page-walk cache (Pwc.LATENCY cycles) or the EPT ----
        with fsm.State("XLATE"):
            fsm.next = "XLATE2"

        with fsm.State("XLATE2"):
            fsm.next = "XLATE3"

        with fsm.State("XLATE3"):
            fsm.next = "XLATE4"

        # Both outcomes' registers are written; only the next state depends on the hit.
        with fsm.State("XLATE4"):
            m.d.sync += [
                x_hpa.eq(Cat(xgpa[:12], pwc.hpn)),
                x_lvl.eq(pwc.entry.level),
                x_r.eq(pwc.entry.r),
                x_w.eq(pwc.entry.w),
                x_x.eq(pwc.entry.x),
                elvl.eq(3),
                etable.eq(eptp),
                e_r.eq(1),
                e_w.eq(1),
                e_x.eq(1),
            ]
            with m.If(pwc_en & pwc.hit):
                m.d.comb += inc["PWC_HITS"].eq(1)
                fsm.next = "XDONE"
            with m.Else():
                fsm.next = "E_RD"

        with fsm.State("E_RD"):
            read("E_WT")

        with fsm.State("E_WT"):
            with m.If(rd_v):
                n_r, n_w, n_x = e_r & ept.r, e_w & ept.w, e_x & ept.x
                m.d.sync += [
                    x_hpa.eq(_leaf_addr(ept.pfn, xgpa, elvl)),
                    x_lvl.eq(elvl),
                    x_r.eq(n_r),
                    x_w.eq(n_w),
                    x_x.eq(n_x),
                    etable.eq(ept.pfn),
                    e_r.eq(n_r),
                    e_w.eq(n_w),
                    e_x.eq(n_x),
                ]
                with m.If(rd_err):
                    respond(Fault.BUS_ERROR)
                with m.Elif(e_bad):
                    respond(Fault.EPT_VIOLATION)
                with m.Elif(e_leaf):
                    m.d.sync += pwc_fill_q.eq(pwc_en)
                    fsm.next = "XDONE"
                with m.Else():
                    m.d.sync += elvl.eq(elvl - 1)
                    fsm.next = "E_RD"

        with fsm.State("XDONE"):
            m.d.sync += r_hpa.eq(x_hpa)
            with m.If(~final):
                with m.If(~x_r):
                    respond(Fault.EPT_VIOLATION)
                with m.Else():
                    m.d.sync += [g_hpa[lvl].eq(x_hpa[3:]), g_ew[lvl].eq(x_w)]
                    fsm.next = "G_RD"
            with m.Else():
                ok = Array([x_r, x_w, x_x, 0])[kind]
                with m.If(~ok):
                    respond(Fault.EPT_VIOLATION)
                with m.Else():
                    fsm.next = "AD_CHK"

        # ---- guest page-table entry ----
        with fsm.State("G_RD"):
            read("G_WT")

        with fsm.State("G_WT"):
            with m.If(rd_v):
                m.d.sync += [
                    g_val[lvl].eq(rd_q),
                    acc_rw.eq(acc_rw & pte.rw),
                    acc_us.eq(acc_us & pte.us),
                    acc_xd.eq(acc_xd | pte.xd),
                    leaf_lvl.eq(lvl),
                    final.eq(p_leaf),
                    xgpa.eq(
                        Mux(
                            p_leaf,
                            _leaf_addr(pte.pfn, gva, lvl),
                            _entry_addr(pte.pfn, gva, lvl - 1),
                        )
                    ),
                ]
                with m.If(~p_leaf):
                    m.d.sync += lvl.eq(lvl - 1)
                with m.If(rd_err):
                    respond(Fault.BUS_ERROR)
                with m.Elif(p_bad | (p_leaf & p_perm)):
                    respond(Fault.GUEST_PF)
                with m.Else():
                    fsm.next = "XLATE"

        # ---- accessed / dirty write-backs ----
        need_wb = Signal(4)
        for i in range(4):
            v = X86PTE(g_val[i])
            m.d.comb += need_wb[i].eq(
                (i >= leaf_lvl) & (~v.a | ((i == leaf_lvl) & is_write & ~v.d))
            )
        ew_vec = Cat(*(g_ew[i] for i in range(4)))
        leaf_val = X86PTE(g_val[leaf_lvl])

        # Registered every cycle: their inputs are settled a cycle before AD_CHK (final XDONE).
        wb_fault = Signal()
        m.d.sync += [wb_need_q.eq(need_wb), wb_fault.eq((need_wb & ~ew_vec).any())]

        # wb_need holds the levels still to write back, the current one (lvl) in bit 3: it
        # shifts as lvl steps down, so no multiplexer picks the current level's bit.
        with fsm.State("AD_CHK"):
            m.d.sync += [lvl.eq(3), wb_need.eq(wb_need_q)]
            with m.If(wb_fault):
                respond(Fault.EPT_VIOLATION)
            with m.Else():
                fsm.next = "AD_WB"

        with fsm.State("AD_WB"):
            with m.If(wb_need[3]):
                m.d.comb += cmd.valid.eq(1)
                with m.If(cmd.ready):
                    m.d.comb += inc["WALK_WRITES"].eq(1)
                    fsm.next = "AD_WT"
            with m.Elif(lvl == leaf_lvl):
                fsm.next = "MK_ENT"
            with m.Else():
                m.d.sync += [lvl.eq(lvl - 1), wb_need.eq(wb_need << 1)]

        with fsm.State("AD_WT"):
            with m.If(rd_v):
                with m.If(rd_err):
                    respond(Fault.BUS_ERROR)
                with m.Elif(lvl == leaf_lvl):
                    fsm.next = "MK_ENT"
                with m.Else():
                    m.d.sync += [lvl.eq(lvl - 1), wb_need.eq(wb_need << 1)]
                    fsm.next = "AD_WB"

        # ---- shadow walk ----
        with fsm.State("S_RD"):
            read("S_WT")

        with fsm.State("S_WT"):
            with m.If(rd_v):
                m.d.sync += [
                    acc_rw.eq(acc_rw & spte.rw),
                    acc_us.eq(acc_us & spte.us),
                    acc_xd.eq(acc_xd | spte.xd),
                    table.eq(spte.pfn),
                    r_hpa.eq(_leaf_addr(spte.pfn, gva, lvl)),
                ]
                with m.If(~p_leaf):
                    m.d.sync += lvl.eq(lvl - 1)
                with m.If(rd_err):
                    respond(Fault.BUS_ERROR)
                with m.Elif(p_bad | (p_leaf & p_perm)):
                    respond(Fault.SHADOW_PF)
                with m.Elif(p_leaf):
                    fsm.next = "MK_ENT"
                with m.Else():
                    fsm.next = "S_RD"

        # ---- the entry to install, from registers only (the walk's last answer is in rd_q) ----
        with fsm.State("MK_ENT"):
            size = Mux(leaf_lvl < x_lvl, leaf_lvl, x_lvl)
            ept_ent = {
                "valid": 1,
                "mode": 0,
                "vpid": vpid,
                "vpn": gva[12:],
                "size": size,
                "ppn": r_hpa[12:] & ~size_mask(size, PN),
                "r": x_r,
                "w": acc_rw & x_w,
                "x": ~acc_xd & x_x,
                "u": acc_us,
                "dirty": leaf_val.d | is_write,
                "pte_valid": 1,
                "pte": g_hpa[leaf_lvl],
            }
            bp = Cat(
                Const(0, 3),
                _index(gva, spte.glevel),
                (pt_base + spte.gpt_page)[:PN],
            )
            shadow_ent = {
                "valid": 1,
                "mode": 1,
                "vpid": vpid,
                "vpn": gva[12:],
                "size": lvl,
                "ppn": r_hpa[12:] & ~size_mask(lvl, PN),
                "r": 1,
                "w": acc_rw,
                "x": ~acc_xd,
                "u": acc_us,
                "dirty": 1,
                "pte_valid": spte.bp,
                "pte": bp[3:],
            }
            with m.If(mode):
                m.d.sync += [r_size.eq(lvl), *_set(new_ent, shadow_ent)]
            with m.Else():
                m.d.sync += [r_size.eq(size), *_set(new_ent, ept_ent)]
            # No flush has arrived during the request, nor arrives now or next cycle (FILL):
            # the fill is decided here, so it is a register.
            m.d.sync += fill_q.eq(~kill_refill & ~fl_arrive & ~fl_stb)
            fsm.next = "FILL"

        with fsm.State("FILL"):
            with m.If(is_write):
                fsm.next = "STORE_CHK"
            with m.Else():
                fsm.next = "RESP"

        # ---- stores: write-protect check, then the store or a WP fault ----
        # The page's offset from PT_BASE: its low bits (short subtraction) address the table;
        # the whole offset is registered (every cycle) before its range check.
        # The page's offset from PT_BASE is registered (every cycle; r_hpa is settled from
        # STORE_CHK on): its low bits address the table, the rest are range-checked.
        wp_bits = (self._wp_pages - 1).bit_length()
        wp_off = Signal(PN + 1)
        in_range = Signal()
        m.d.sync += wp_off.eq(r_hpa[12:] - pt_base)
        m.d.comb += [tlb.pte_q.eq(r_hpa[3:]), wpt_rd.addr.eq(wp_off[:wp_bits])]
        with fsm.State("STORE_CHK"):
            fsm.next = "STORE_CHK2"

        with fsm.State("STORE_CHK2"):
            m.d.sync += in_range.eq(wp_off[wp_bits:] == 0)  # no borrow, below wp_pages
            fsm.next = "STORE_CHK3"

        # The block RAM's output (over 5 ns from the clock) goes straight into a register. The
        # TLB answers pte_q (r_hpa, settled from STORE_CHK on) Tlb.PTE_LATENCY cycles later.
        assert Tlb.PTE_LATENCY == 3
        wpt_q = Signal()
        m.d.sync += wpt_q.eq(wpt_rd.data)
        with fsm.State("STORE_CHK3"):
            fsm.next = "STORE_CHK4"

        prot = Signal()
        with fsm.State("STORE_CHK4"):
            m.d.sync += prot.eq(tlb.pte_match | (in_range & wpt_q))
            fsm.next = "STORE_DO"

        with fsm.State("STORE_DO"):
            with m.If(prot):
                # A CSR flush owns the TLB's invalidate port in the cycle it drops its entries:
                # retry next cycle.
                with m.If(~tlb_flush_q):
                    m.d.comb += [tlb.pte_inv.eq(1), fl_count.eq(1), inc["WP_FAULTS"].eq(1)]
                    m.d.sync += [
                        r_fault.eq(Fault.WP),
                        wp_gva.eq(gva),
                        wp_hpa.eq(r_hpa),
                        wp_data.eq(wdata),
                    ]
                    fsm.next = _WP_WAIT[0] if _WP_WAIT else "WP_CNT"
            with m.Else():
                m.d.comb += cmd.valid.eq(1)
                with m.If(cmd.ready):
                    fsm.next = "ST_WT"

        # The TLB counts what pte_inv dropped Tlb.FLUSHED_LATENCY cycles later.
        for here, there in zip(_WP_WAIT, (*_WP_WAIT[1:], "WP_CNT"), strict=True):
            with fsm.State(here):
                fsm.next = there

        with fsm.State("WP_CNT"):
            m.d.sync += r_flushed.eq(tlb.flushed)
            fsm.next = "RESP"

        with fsm.State("ST_WT"):
            with m.If(rd_v):
                with m.If(rd_err):
                    respond(Fault.BUS_ERROR)
                with m.Else():
                    m.d.comb += inc["STORES"].eq(1)
                    fsm.next = "RESP"

        with fsm.State("RESP"):
            m.d.comb += self.resp.valid.eq(1)
            with m.If(self.resp.ready):
                fsm.next = "IDLE"

        # Busy in every state but IDLE (the state register is one-hot, which the formal
        # harnesses prove).
        m.d.comb += busy.eq(~fsm.ongoing("IDLE"))

        # Internal signals for formal harnesses (hdl/mmu/formal.py); no effect on the design.
        self.probe = SimpleNamespace(
            fsm=fsm,
            reads=r_reads,
            mode=mode,
            busy=busy,
            kill_refill=kill_refill,
            flush_stb=fl_stb,
            flush_arrive=fl_arrive,
            flush_q1=tlb_flush_q1,
            flush_q=tlb_flush_q,
            fill=tlb.fill,
            fill_entry=tlb.fill_entry,
            gva=gva,
            vpid=vpid,
            rd_v=rd_v,
            axi=axi,  # axi.fsm once elaborated
            pwc=pwc,
            pwc_fill_q=pwc_fill_q,
        )
        return m
