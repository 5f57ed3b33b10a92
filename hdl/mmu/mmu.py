"""The MMU: TLB, 2-D (EPT) and 1-D (shadow) page walker, write-protect faults, CSRs.

The behaviour is specified in ``docs/mmu.md``; the functional model ``models/vmm/mmu.py``
implements the same contract.
"""

from types import SimpleNamespace

from amaranth import Array, Cat, Const, Module, Mux, Signal
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
from ..common.params import require
from .pwc import Pwc
from .tlb import Tlb, TlbEntry, size_mask

__all__ = ["MMU"]

_BUSY_STATES = (
    "LOOKUP",
    "XLATE",
    "E_RD",
    "E_WT",
    "XDONE",
    "G_RD",
    "G_WT",
    "AD_CHK",
    "AD_WB",
    "AD_WT",
    "S_RD",
    "S_WT",
    "FILL",
    "STORE_CHK",
    "STORE_CHK2",
    "STORE_DO",
    "ST_WT",
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
        m.submodules.csrs = csrs = CsrBlock(MMU_CSR)
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
        is_write = kind == AccessKind.WRITE

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
        flushed_add = Signal(8)
        for name, cnt in counters.items():
            m.d.comb += csrs.ro[name].eq(cnt)
            # Increments are registered first, so no decision logic feeds a carry chain in the
            # same cycle; the counters trail their events by one cycle.
            if name == "FLUSHED":
                flushed_q = Signal(8)
                m.d.sync += [flushed_q.eq(flushed_add), cnt.eq(cnt + flushed_q)]
            else:
                inc_q = Signal(name=f"inc_{name.lower()}_q")
                m.d.sync += [inc_q.eq(inc[name]), cnt.eq(cnt + inc_q)]

        # After reset the write-protect table (block RAM, not reset) is swept clear, one page a
        # cycle; requests wait meanwhile and STATUS.init tells software when it may program it.
        init_ctr = Signal(range(self._wp_pages + 1))
        init = Signal()
        m.d.comb += init.eq(init_ctr != self._wp_pages)
        with m.If(init):
            m.d.sync += init_ctr.eq(init_ctr + 1)
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
        fl_stb, fl_data = csrs.wo["FLUSH"]
        fl = MMU_CSR["FLUSH"].fields
        fl_op = fl_data[fl[0].offset : fl[0].offset + fl[0].width]
        fl_vpid = fl_data[fl[1].offset : fl[1].offset + fl[1].width]
        m.d.comb += [
            tlb.flush.eq(fl_stb),
            tlb.flush_op.eq(fl_op),
            tlb.flush_vpid.eq(fl_vpid),
            tlb.flush_vpn.eq(csrs.rw["FLUSH_GVA"][12:VA_BITS]),
            pwc.flush.eq(fl_stb & ((fl_op == FlushOp.ALL) | (fl_op == FlushOp.PWC))),
        ]
        fl_count = inc["FLUSHES"]
        m.d.comb += fl_count.eq(fl_stb)

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
        cmd = axi.cmd
        rsp = axi.resp
        m.d.comb += rsp.ready.eq(1)
        pte = X86PTE(rsp.payload.rdata)
        ept = EPTE(rsp.payload.rdata)
        spte = ShadowPTE(rsp.payload.rdata)

        def read(addr, then):
            m.d.comb += [cmd.valid.eq(1), cmd.payload.addr.eq(addr), cmd.payload.we.eq(0)]
            with m.If(cmd.ready):
                m.d.sync += r_reads.eq(r_reads + 1)
                m.d.comb += inc["WALK_READS"].eq(1)
                m.next = then

        def respond(fault):
            m.d.sync += r_fault.eq(fault)
            if fault in (Fault.GUEST_PF, Fault.EPT_VIOLATION, Fault.SHADOW_PF):
                m.d.comb += inc["FAULTS"].eq(1)
            m.next = "RESP"

        def start_xlate(gpa, is_final):
            m.d.sync += [xgpa.eq(gpa), final.eq(is_final)]
            m.next = "XLATE"

        # Any flush during a request kills that request's refill.
        with m.If(fl_stb & busy):
            m.d.sync += kill_refill.eq(1)

        m.d.comb += [
            tlb.lk_vpn.eq(self.req.payload.gva[12:]),
            tlb.lk_mode.eq(c_ctrl[0]),
            tlb.lk_vpid.eq(c_ctrl[16:32]),
            pwc.q_gpn.eq(xgpa[12:]),
        ]

        hit_e = tlb.hit_entry
        with m.FSM(name="mmu") as fsm:
            with m.State("IDLE"):
                m.d.comb += [self.req.ready.eq(~init), tlb.lk_valid.eq(self.req.valid & ~init)]
                with m.If(self.req.valid & ~init):
                    p = self.req.payload
                    m.d.sync += [
                        gva.eq(p.gva),
                        kind.eq(p.kind),
                        user.eq(p.user),
                        wdata.eq(p.wdata),
                        mode.eq(c_ctrl[0]),
                        pwc_en.eq(c_ctrl[1]),
                        vpid.eq(c_ctrl[16:32]),
                        r_reads.eq(0),
                        r_flushed.eq(0),
                        r_hit.eq(0),
                        r_fault.eq(Fault.NONE),
                        kill_refill.eq(0),
                    ]
                    m.next = "LOOKUP"

            with m.State("LOOKUP"):
                serve = (
                    tlb.hit
                    & ~_perm_fail(kind, user, hit_e.w & hit_e.dirty, hit_e.u, ~hit_e.x)
                    & ((kind != AccessKind.READ) | hit_e.r)
                )
                with m.If(serve):
                    m.d.comb += [tlb.touch.eq(1), tlb.touch_idx.eq(tlb.hit_idx), inc["HITS"].eq(1)]
                    mask = size_mask(hit_e.size, PN)
                    m.d.sync += [
                        r_hit.eq(1),
                        r_size.eq(hit_e.size),
                        r_hpa.eq(Cat(gva[:12], (hit_e.ppn & ~mask) | (gva[12 : 12 + PN] & mask))),
                    ]
                    with m.If(is_write):
                        m.next = "STORE_CHK"
                    with m.Else():
                        m.next = "RESP"
                with m.Else():
                    m.d.comb += [
                        tlb.kill.eq(tlb.hit),
                        tlb.kill_idx.eq(tlb.hit_idx),
                        inc["MISSES"].eq(1),
                    ]
                    m.d.sync += [lvl.eq(3), acc_rw.eq(1), acc_us.eq(1), acc_xd.eq(0)]
                    with m.If(mode):
                        m.d.sync += table.eq(scr3)
                        m.next = "S_RD"
                    with m.Else():
                        start_xlate(_entry_addr(gcr3, gva, 3), 0)

            # ---- GPA -> HPA through the page-walk cache or the EPT ----
            with m.State("XLATE"):
                with m.If(pwc_en & pwc.hit):
                    m.d.comb += inc["PWC_HITS"].eq(1)
                    m.d.sync += [
                        x_hpa.eq(Cat(xgpa[:12], pwc.hpn)),
                        x_lvl.eq(pwc.entry.level),
                        x_r.eq(pwc.entry.r),
                        x_w.eq(pwc.entry.w),
                        x_x.eq(pwc.entry.x),
                    ]
                    m.next = "XDONE"
                with m.Else():
                    m.d.sync += [elvl.eq(3), etable.eq(eptp), e_r.eq(1), e_w.eq(1), e_x.eq(1)]
                    m.next = "E_RD"

            with m.State("E_RD"):
                read(_entry_addr(etable, xgpa, elvl), "E_WT")

            with m.State("E_WT"):
                with m.If(rsp.valid):
                    is_leaf = _is_leaf(elvl, ept.ps)
                    bad = (
                        (~(ept.r | ept.w | ept.x))
                        | (ept.w & ~ept.r)
                        | ((elvl == 3) & ept.ps)
                        | _rsvd(ept.pfn, elvl, is_leaf, ept=True)
                    )
                    n_r, n_w, n_x = e_r & ept.r, e_w & ept.w, e_x & ept.x
                    with m.If(rsp.payload.err):
                        respond(Fault.BUS_ERROR)
                    with m.Elif(bad):
                        respond(Fault.EPT_VIOLATION)
                    with m.Elif(is_leaf):
                        hpa = _leaf_addr(ept.pfn, xgpa, elvl)
                        m.d.sync += [
                            x_hpa.eq(hpa),
                            x_lvl.eq(elvl),
                            x_r.eq(n_r),
                            x_w.eq(n_w),
                            x_x.eq(n_x),
                        ]
                        low = size_mask(elvl, PN)
                        m.d.comb += [
                            pwc.fill.eq(pwc_en & ~kill_refill),  # a racing flush wins
                            *_set(
                                pwc.fill_entry,
                                {
                                    "valid": 1,
                                    "gpn": xgpa[12:] & ~low,
                                    "hpn": hpa[12:] & ~low,
                                    "r": n_r,
                                    "w": n_w,
                                    "x": n_x,
                                    "level": elvl,
                                },
                            ),
                        ]
                        m.next = "XDONE"
                    with m.Else():
                        m.d.sync += [
                            etable.eq(ept.pfn),
                            elvl.eq(elvl - 1),
                            e_r.eq(n_r),
                            e_w.eq(n_w),
                            e_x.eq(n_x),
                        ]
                        m.next = "E_RD"

            with m.State("XDONE"):
                with m.If(~final):
                    with m.If(~x_r):
                        respond(Fault.EPT_VIOLATION)
                    with m.Else():
                        m.d.sync += [g_hpa[lvl].eq(x_hpa[3:]), g_ew[lvl].eq(x_w)]
                        m.next = "G_RD"
                with m.Else():
                    ok = Array([x_r, x_w, x_x, 0])[kind]
                    with m.If(~ok):
                        respond(Fault.EPT_VIOLATION)
                    with m.Else():
                        m.d.sync += r_hpa.eq(x_hpa)
                        m.next = "AD_CHK"

            # ---- guest page-table entry ----
            with m.State("G_RD"):
                read(Cat(Const(0, 3), g_hpa[lvl]), "G_WT")

            with m.State("G_WT"):
                with m.If(rsp.valid):
                    is_leaf = _is_leaf(lvl, pte.ps)
                    bad = ((lvl == 3) & pte.ps) | _rsvd(pte.pfn, lvl, is_leaf, ept=False)
                    n_rw, n_us, n_xd = acc_rw & pte.rw, acc_us & pte.us, acc_xd | pte.xd
                    m.d.sync += [
                        g_val[lvl].eq(rsp.payload.rdata),
                        acc_rw.eq(n_rw),
                        acc_us.eq(n_us),
                        acc_xd.eq(n_xd),
                    ]
                    with m.If(rsp.payload.err):
                        respond(Fault.BUS_ERROR)
                    with m.Elif(~pte.p | bad):
                        respond(Fault.GUEST_PF)
                    with m.Elif(is_leaf):
                        with m.If(_perm_fail(kind, user, n_rw, n_us, n_xd)):
                            respond(Fault.GUEST_PF)
                        with m.Else():
                            m.d.sync += leaf_lvl.eq(lvl)
                            start_xlate(_leaf_addr(pte.pfn, gva, lvl), 1)
                    with m.Else():
                        m.d.sync += lvl.eq(lvl - 1)
                        start_xlate(_entry_addr(pte.pfn, gva, lvl - 1), 0)

            # ---- accessed / dirty write-backs ----
            need_wb = Signal(4)
            for i in range(4):
                v = X86PTE(g_val[i])
                m.d.comb += need_wb[i].eq(
                    (i >= leaf_lvl) & (~v.a | ((i == leaf_lvl) & is_write & ~v.d))
                )
            ew_vec = Cat(*(g_ew[i] for i in range(4)))
            leaf_val = X86PTE(g_val[leaf_lvl])

            with m.State("AD_CHK"):
                with m.If((need_wb & ~ew_vec).any()):
                    respond(Fault.EPT_VIOLATION)
                with m.Else():
                    size = Mux(leaf_lvl < x_lvl, leaf_lvl, x_lvl)
                    m.d.sync += [
                        lvl.eq(3),
                        r_size.eq(size),
                        *_set(
                            new_ent,
                            {
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
                            },
                        ),
                    ]
                    m.next = "AD_WB"

            with m.State("AD_WB"):
                cur = X86PTE(g_val[lvl])
                with m.If(need_wb.bit_select(lvl, 1)):
                    newv = Signal(X86PTE)
                    m.d.comb += [
                        newv.eq(cur),
                        newv.a.eq(1),
                        newv.d.eq(cur.d | ((lvl == leaf_lvl) & is_write)),
                    ]
                    m.d.comb += [
                        cmd.valid.eq(1),
                        cmd.payload.addr.eq(Cat(Const(0, 3), g_hpa[lvl])),
                        cmd.payload.we.eq(1),
                        cmd.payload.wdata.eq(newv),
                    ]
                    with m.If(cmd.ready):
                        m.d.comb += inc["WALK_WRITES"].eq(1)
                        m.d.sync += g_val[lvl].eq(newv)
                        m.next = "AD_WT"
                with m.Elif(lvl == leaf_lvl):
                    m.next = "FILL"
                with m.Else():
                    m.d.sync += lvl.eq(lvl - 1)

            with m.State("AD_WT"):
                with m.If(rsp.valid):
                    with m.If(rsp.payload.err):
                        respond(Fault.BUS_ERROR)
                    with m.Elif(lvl == leaf_lvl):
                        m.next = "FILL"
                    with m.Else():
                        m.d.sync += lvl.eq(lvl - 1)
                        m.next = "AD_WB"

            # ---- shadow walk ----
            with m.State("S_RD"):
                read(_entry_addr(table, gva, lvl), "S_WT")

            with m.State("S_WT"):
                with m.If(rsp.valid):
                    is_leaf = _is_leaf(lvl, spte.ps)
                    bad = ((lvl == 3) & spte.ps) | _rsvd(spte.pfn, lvl, is_leaf, ept=False)
                    n_rw, n_us, n_xd = acc_rw & spte.rw, acc_us & spte.us, acc_xd | spte.xd
                    m.d.sync += [acc_rw.eq(n_rw), acc_us.eq(n_us), acc_xd.eq(n_xd)]
                    with m.If(rsp.payload.err):
                        respond(Fault.BUS_ERROR)
                    with m.Elif(~spte.p | bad):
                        respond(Fault.SHADOW_PF)
                    with m.Elif(is_leaf):
                        with m.If(_perm_fail(kind, user, n_rw, n_us, n_xd)):
                            respond(Fault.SHADOW_PF)
                        with m.Else():
                            hpa = _leaf_addr(spte.pfn, gva, lvl)
                            bp = Cat(
                                Const(0, 3),
                                _index(gva, spte.glevel),
                                (pt_base + spte.gpt_page)[:PN],
                            )
                            m.d.sync += [
                                r_hpa.eq(hpa),
                                r_size.eq(lvl),
                                *_set(
                                    new_ent,
                                    {
                                        "valid": 1,
                                        "mode": 1,
                                        "vpid": vpid,
                                        "vpn": gva[12:],
                                        "size": lvl,
                                        "ppn": hpa[12:] & ~size_mask(lvl, PN),
                                        "r": 1,
                                        "w": n_rw,
                                        "x": ~n_xd,
                                        "u": n_us,
                                        "dirty": 1,
                                        "pte_valid": spte.bp,
                                        "pte": bp[3:],
                                    },
                                ),
                            ]
                            m.next = "FILL"
                    with m.Else():
                        m.d.sync += [table.eq(spte.pfn), lvl.eq(lvl - 1)]
                        m.next = "S_RD"

            with m.State("FILL"):
                m.d.comb += [tlb.fill.eq(~kill_refill & ~fl_stb), tlb.fill_entry.eq(new_ent)]
                with m.If(is_write):
                    m.next = "STORE_CHK"
                with m.Else():
                    m.next = "RESP"

            # ---- stores: write-protect check, then the store or a WP fault ----
            wp_off = Signal(PN + 1)
            in_range = Signal()
            m.d.comb += [
                wp_off.eq(r_hpa[12:] - pt_base),
                tlb.pte_q.eq(r_hpa[3:]),
                wpt_rd.addr.eq(wp_off),
            ]
            with m.State("STORE_CHK"):
                m.d.sync += in_range.eq(wp_off < self._wp_pages)
                m.next = "STORE_CHK2"

            prot = Signal()  # registered: the block RAM's output is slow
            with m.State("STORE_CHK2"):
                m.d.sync += prot.eq(tlb.pte_match | (in_range & wpt_rd.data))
                m.next = "STORE_DO"

            with m.State("STORE_DO"):
                with m.If(prot):
                    # A CSR flush owns the TLB's invalidate port this cycle: retry next cycle.
                    with m.If(~fl_stb):
                        m.d.comb += [tlb.pte_inv.eq(1), fl_count.eq(1), inc["WP_FAULTS"].eq(1)]
                        m.d.sync += [
                            r_flushed.eq(tlb.flushed),
                            wp_gva.eq(gva),
                            wp_hpa.eq(r_hpa),
                            wp_data.eq(wdata),
                        ]
                        respond(Fault.WP)
                with m.Else():
                    m.d.comb += [
                        cmd.valid.eq(1),
                        cmd.payload.addr.eq(r_hpa),
                        cmd.payload.we.eq(1),
                        cmd.payload.wdata.eq(wdata),
                    ]
                    with m.If(cmd.ready):
                        m.next = "ST_WT"

            with m.State("ST_WT"):
                with m.If(rsp.valid):
                    with m.If(rsp.payload.err):
                        respond(Fault.BUS_ERROR)
                    with m.Else():
                        m.d.comb += inc["STORES"].eq(1)
                        m.next = "RESP"

            with m.State("RESP"):
                m.d.comb += self.resp.valid.eq(1)
                with m.If(self.resp.ready):
                    m.next = "IDLE"

        m.d.comb += flushed_add.eq(Mux(fl_stb | tlb.pte_inv, tlb.flushed, 0))

        # Busy in every named state but IDLE (not "not IDLE": the FSM register's unused encodings
        # must read as idle, which the formal response-bound proof relies on).
        m.d.comb += busy.eq(Cat(fsm.ongoing(name) for name in _BUSY_STATES).any())

        # Internal signals for formal harnesses (hdl/mmu/formal.py); no effect on the design.
        self.probe = SimpleNamespace(
            fsm=fsm,
            reads=r_reads,
            mode=mode,
            busy=busy,
            kill_refill=kill_refill,
            flush_stb=fl_stb,
            fill=tlb.fill,
            fill_entry=tlb.fill_entry,
            gva=gva,
            vpid=vpid,
        )
        return m
