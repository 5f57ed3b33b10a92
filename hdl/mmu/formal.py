"""Formal proofs of the MMU's safety guarantees (``docs/mmu.md``), run by :mod:`vmassist.formal`.

Each harness is a closed design: every input of the block under proof is free (``AnySeq``), the
watched values are ``AnyConst``, and the properties are ``Assert``s, strengthened with invariants
over the block's probes until k-induction closes. A ``bug`` argument selects a deliberately wrong
claim, which the runner must report as failing (``tests/test_mmu_formal.py``).
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Elaboratable
from amaranth.lib import wiring

from vmassist.formal import Proof
from vmassist.formats.mmu import PA_BITS, VA_BITS, VPID_BITS, FlushOp, PageSize

from .tlb import Tlb

__all__ = ["PROOFS", "TlbFlushHarness"]

VPN_BITS = VA_BITS - 12


def _free_inputs(m, component, *, skip=()):
    """Drive every ``In`` member of ``component`` from an ``AnySeq``, except the paths in ``skip``."""
    for path, member, value in component.signature.flatten(component):
        if member.flow == wiring.In and ".".join(map(str, path)) not in skip:
            value = value.as_value() if hasattr(value, "as_value") else value
            m.d.comb += value.eq(AnySeq(len(value)))


def _spec_mask(size):
    """Low VPN bits a page of ``size`` covers (docs/mmu.md), full width."""
    return Mux(size == PageSize.SIZE_1G, Const((1 << 18) - 1, VPN_BITS),
               Mux(size == PageSize.SIZE_2M, Const((1 << 9) - 1, VPN_BITS), Const(0, VPN_BITS)))


class TlbFlushHarness(Elaboratable):
    """No flush can be undone: once a flush covers the watched translation, or a ``pte_inv``
    names the watched guest PTE, no entry holds it until a fill installs it again.

    Watched: a translation (``vpn``, ``vpid``, ``mode``) and a back-pointer ``pte``, each an
    ``AnyConst``. ``stale`` is set by a flush covering the translation (INVLPG of exactly that VPN
    and VPID, VPID of that VPID, ALL, or PWC when ``mode`` is EPT) and cleared by a fill of an
    entry that matches it; ``stale_pte`` likewise for ``pte_inv`` of ``pte`` and fills with that
    back-pointer. Claims:

    * while ``stale``, no entry matches the translation (the inductive invariant), so a lookup
      of it does not hit (``hit`` the next cycle);
    * while ``stale_pte``, no valid entry has that back-pointer and ``pte_match`` is low for it.

    Parameters
    ----------
    entries : int
        TLB entries.
    bug : str, optional
        ``"no_fill_clear"`` (a fill never clears the flags) or ``"pwc_drops_shadow"`` (claims
        op PWC also drops shadow entries): false claims, for testing the proof.
    """

    BUGS = ("no_fill_clear", "pwc_drops_shadow")

    def __init__(self, *, entries: int = 4, bug: str | None = None):
        if bug is not None and bug not in self.BUGS:
            raise ValueError(f"bug must be one of {self.BUGS} or None, not {bug!r}")
        self.dut = Tlb(entries)
        self.bug = bug

    def elaborate(self, platform):
        m = Module()
        tlb = self.dut
        m.submodules.tlb = tlb.elaborate(platform)   # sets tlb.probe_entries
        _free_inputs(m, tlb)
        # The TLB's interface contract: the MMU never asks for a back-pointer invalidation in a
        # cycle that carries a CSR flush (the flush owns the invalidate port; it retries).
        m.d.comb += Assume(~(tlb.flush & tlb.pte_inv))

        w_vpn = AnyConst(VPN_BITS)
        w_vpid = AnyConst(VPID_BITS)
        w_mode = AnyConst(1)
        w_pte = AnyConst(PA_BITS - 3)

        def holds(e):
            return (e.valid & (e.mode == w_mode) & (e.vpid == w_vpid)
                    & (((e.vpn ^ w_vpn) & ~_spec_mask(e.size)) == 0))

        def holds_pte(e):
            return e.valid & e.pte_valid & (e.pte == w_pte)

        pwc_covers = 1 if self.bug == "pwc_drops_shadow" else (w_mode == 0)
        covers = Signal()
        with m.Switch(tlb.flush_op):
            with m.Case(FlushOp.INVLPG):
                m.d.comb += covers.eq((tlb.flush_vpn == w_vpn) & (tlb.flush_vpid == w_vpid))
            with m.Case(FlushOp.VPID):
                m.d.comb += covers.eq(tlb.flush_vpid == w_vpid)
            with m.Case(FlushOp.ALL):
                m.d.comb += covers.eq(1)
            with m.Case(FlushOp.PWC):
                m.d.comb += covers.eq(pwc_covers)

        clears = self.bug != "no_fill_clear"
        stale = Signal()
        with m.If(clears & tlb.fill & holds(tlb.fill_entry)):
            m.d.sync += stale.eq(0)
        with m.Elif(tlb.flush & covers):
            m.d.sync += stale.eq(1)

        # Back-pointer invalidation is pipelined: ``pte_inv`` drops the entries that held the
        # previous cycle's ``pte_q`` and are still valid. An entry filled in that previous cycle
        # was not compared, so such a fill (of the watched back-pointer) keeps the flag clear.
        fill_pte = tlb.fill & holds_pte(tlb.fill_entry)
        q_was_w = Signal()
        filled_w = Signal()
        m.d.sync += [q_was_w.eq(tlb.pte_q == w_pte), filled_w.eq(fill_pte)]
        stale_pte = Signal()
        with m.If(clears & fill_pte):
            m.d.sync += stale_pte.eq(0)
        with m.Elif(tlb.pte_inv & q_was_w & ~filled_w):
            m.d.sync += stale_pte.eq(1)
        asked = Signal()
        m.d.sync += asked.eq(stale_pte & (tlb.pte_q == w_pte))

        looked_up = Signal()
        m.d.sync += looked_up.eq(stale & tlb.lk_valid & (tlb.lk_vpn == w_vpn)
                                 & (tlb.lk_vpid == w_vpid) & (tlb.lk_mode == w_mode))

        ents = tlb.probe_entries
        import os
        sel = os.environ.get("CHK", "0123")
        chks = [
            Assert(~(stale & Cat(holds(e) for e in ents).any())),
            Assert(~(looked_up & tlb.hit)),
            Assert(~(stale_pte & Cat(holds_pte(e) for e in ents).any())),
            Assert(~(asked & tlb.pte_match)),
        ]
        m.d.comb += [c for i, c in enumerate(chks) if str(i) in sel]
        exp = os.environ.get("EXP", "")
        if "s" in exp: m.d.comb += Assume(tlb.fill_entry.size == 0)
        if "i" in exp: m.d.comb += Assume(~tlb.inj)
        if "k" in exp: m.d.comb += Assume(~tlb.kill)
        if "t" in exp: m.d.comb += Assume(~tlb.touch & ~tlb.fill)
        if "f" in exp: m.d.comb += Assume(~tlb.flush)
        if "p" in exp: m.d.comb += Assume(~tlb.pte_inv)
        return m


PROOFS: list[Proof] = []  # registered once each proof is known to run in seconds
