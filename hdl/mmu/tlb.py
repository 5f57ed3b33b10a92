"""Fully associative TLB with tree pseudo-LRU, mode/VPID tags and guest-PTE back-pointers."""

from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from vmassist.formats.mmu import PA_BITS, VA_BITS, VPID_BITS, FlushOp, PageSize

from ..common.bits import encode, first_one, mux_onehot, popcount, sum_tree
from ..common.params import require

__all__ = ["TlbEntry", "Tlb", "plru_victim", "plru_touch", "plru_touch_onehot"]

VPN_BITS = VA_BITS - 12
PPN_BITS = PA_BITS - 12


class TlbEntry(data.Struct):
    """One TLB entry. ``ppn`` is aligned to ``size``; ``pte`` is the guest PTE's HPA >> 3."""

    valid: 1
    mode: 1
    vpid: VPID_BITS
    vpn: VPN_BITS
    size: 2
    ppn: PPN_BITS
    r: 1
    w: 1
    x: 1
    u: 1
    dirty: 1
    pte_valid: 1
    pte: PA_BITS - 3


def size_mask(size, bits: int):
    """Low page-number bits a page of ``size`` covers, as a ``bits``-wide value (so that ``~``
    of it keeps every high bit)."""
    return Mux(
        size == PageSize.SIZE_1G,
        Const((1 << 18) - 1, bits),
        Mux(size == PageSize.SIZE_2M, Const((1 << 9) - 1, bits), Const(0, bits)),
    )


#: Page-number chunks compared separately: the 4K-page bits a 2M or 1G page ignores, the 2M-page
#: bits a 1G page ignores, then the rest in chunks of at most nine bits. Each chunk's compare is
#: registered, so that a page-number compare against every entry is two short stages.
def page_chunks(bits: int):
    return [(0, 9), (9, 18)] + [(lo, min(lo + 9, bits)) for lo in range(18, bits, 9)]


def chunk_eqs(a, b, bits: int):
    """Equality of ``a`` and ``b`` in each of :func:`page_chunks`, as a vector."""
    return Cat(a[lo:hi] == b[lo:hi] for lo, hi in page_chunks(bits))


def page_parts(eqs, size):
    """Chunk equalities ``eqs`` (from :func:`chunk_eqs`) as three match parts under the mask of
    a page of ``size``: the 4K-page bits (ignored by 2M and 1G pages), the 2M-page bits (ignored
    by 1G pages), the rest. A match is all three."""
    return Cat(
        eqs[0] | (size == PageSize.SIZE_1G) | (size == PageSize.SIZE_2M),
        eqs[1] | (size == PageSize.SIZE_1G),
        eqs[2:].all(),
    )


def plru_victim(tree, n: int):
    """The tree-PLRU victim, one-hot: from the root, left on 0, right on 1 (heap indexing).

    Each leaf checks its own path in parallel (an AND of ``log2 n`` node bits), instead of
    walking the tree through ``log2 n`` dependent multiplexers."""
    depth = n.bit_length() - 1
    bits = []
    for i in range(n):
        on_path = Const(1, 1)
        for level in range(depth):
            node = (1 << level) + (i >> (depth - level))
            goes_right = (i >> (depth - level - 1)) & 1
            on_path = on_path & (tree[node] if goes_right else ~tree[node])
        bits.append(on_path)
    return Cat(*bits)


def plru_touch(m, domain, tree, n: int, idx):
    """Point every node on the path to entry ``idx`` away from it."""
    depth = n.bit_length() - 1
    for level in range(depth):
        for k in range(1 << level, 2 << level):
            on_path = (idx >> (depth - level)) == (k - (1 << level))
            with m.If(on_path):
                m.d[domain] += tree[k].eq(~idx[depth - level - 1])


def plru_touch_onehot(m, domain, tree, n: int, onehot):
    """:func:`plru_touch` of the entry whose bit is set in ``onehot``: a node is on its path when
    the entry is under it, and then points to the half the entry is not in (ORs of the one-hot
    bits, no index to decode)."""
    depth = n.bit_length() - 1
    for level in range(depth):
        span = n >> level  # leaves under a node of this level
        for k in range(1 << level, 2 << level):
            lo = (k - (1 << level)) * span
            with m.If(onehot[lo : lo + span].any()):
                m.d[domain] += tree[k].eq(onehot[lo : lo + span // 2].any())


class Tlb(wiring.Component):
    """Fully associative TLB, pipelined for a fast clock.

    A lookup takes four cycles: its page number is registered, compared against every entry
    (chunk by chunk), the lowest match is chosen (entries flushed meanwhile drop out), and that
    entry is read out. Context tags (valid, mode, VPID) are compared against a registered
    ``ctx_mode``/``ctx_vpid`` alongside the first, so a lookup matches the context given in the
    cycle *before* ``lk_valid``. A flush compares in its strobe cycle and the next, and takes effect
    at the end of the cycle after those (``FLUSH_DROP`` cycles after the strobe).

    The user's contract (the MMU keeps it by construction): no ``fill`` from the cycle before a
    lookup until its answer, nor from the cycle of a ``flush`` strobe until it takes effect; no
    ``pte_inv`` in the cycle a flush takes effect.

    Parameters
    ----------
    entries : int
        Number of entries, a power of two from 2 to 256.

    Members
    -------
    ctx_mode, ctx_vpid : In
        The current translation context.
    lk_valid, lk_vpn : In
        A lookup, one per cycle.
    hit, hit_idx, hit_entry : Out
        The answer to a lookup, ``LATENCY`` cycles after its ``lk_valid`` cycle.
    fill, fill_entry : In
        Install ``fill_entry`` into the lowest invalid entry, else the PLRU victim (both as of
        the previous cycle).
    touch, touch_idx : In
        Mark an entry most recently used (a served hit).
    kill, kill_idx : In
        Invalidate one entry (a hit that could not serve the access).
    flush, flush_op, flush_vpn, flush_vpid : In
        A :class:`FlushOp` (INVLPG, VPID, ALL, or PWC which drops every EPT-mode entry); the
        operands are those of the cycle before the ``flush`` strobe.
    pte_q : In
        A guest-PTE HPA >> 3; ``pte_match``, ``PTE_LATENCY`` cycles later, says whether any
        valid entry holds it (entries filled meanwhile are not seen).
    pte_inv : In
        Invalidate every entry that matched the ``pte_q`` of ``PTE_LATENCY`` cycles before (and
        is still valid).
    flushed : Out
        Entries invalidated by a flush or ``pte_inv`` ``FLUSHED_LATENCY`` cycles before (the
        cycle they were dropped in; a flush drops in the cycle after its strobe).
    inj, inj_idx, inj_mask : In
        Fault injection: XOR ``inj_mask`` into one entry's PPN, in the cycle after ``inj``.
    """

    LATENCY = 4
    PTE_LATENCY = 3
    FLUSH_DROP = 2
    FLUSHED_LATENCY = 3

    def __init__(self, entries: int = 32):
        require(
            self,
            isinstance(entries, int) and 2 <= entries <= 256 and not entries & (entries - 1),
            ValueError(f"entries must be a power of two from 2 to 256, not {entries!r}"),
        )
        self._entries = entries
        idx_bits = (entries - 1).bit_length()
        super().__init__(
            {
                "ctx_mode": In(1),
                "ctx_vpid": In(VPID_BITS),
                "lk_valid": In(1),
                "lk_vpn": In(VPN_BITS),
                "hit": Out(1),
                "hit_idx": Out(idx_bits),
                "hit_entry": Out(TlbEntry),
                "fill": In(1),
                "fill_entry": In(TlbEntry),
                "touch": In(1),
                "touch_idx": In(idx_bits),
                "kill": In(1),
                "kill_idx": In(idx_bits),
                "flush": In(1),
                "flush_op": In(2),
                "flush_vpn": In(VPN_BITS),
                "flush_vpid": In(VPID_BITS),
                "pte_q": In(PA_BITS - 3),
                "pte_match": Out(1),
                "pte_inv": In(1),
                "flushed": Out(idx_bits + 1),
                "inj": In(1),
                "inj_idx": In(idx_bits),
                "inj_mask": In(PPN_BITS),
            }
        )

    @property
    def entries(self) -> int:
        return self._entries

    def elaborate(self, platform):
        m = Module()
        n = self._entries
        ents = [Signal(TlbEntry, name=f"entry{i}") for i in range(n)]
        tree = [Signal(name=f"plru{k}") for k in range(n)]  # tree[0] unused
        valid = Signal(n)
        m.d.comb += valid.eq(Cat(e.valid for e in ents))

        # Lookup stage 0 (every cycle): the page number and the context are registered next to
        # the entries (they reach every entry), and the context tags are compared, for the next
        # cycle's compare of page numbers.
        s0, s1, s2 = Signal(), Signal(), Signal()
        lk_vpn = Signal(VPN_BITS)
        ctx_mode, ctx_vpid = Signal(), Signal(VPID_BITS)
        m.d.sync += [
            s0.eq(self.lk_valid),
            lk_vpn.eq(self.lk_vpn),
            ctx_mode.eq(self.ctx_mode),
            ctx_vpid.eq(self.ctx_vpid),
        ]
        tag_ok = Signal(n)
        for i, e in enumerate(ents):
            m.d.sync += tag_ok[i].eq(e.valid & (e.mode == ctx_mode) & (e.vpid == ctx_vpid))
        # Stage 1: compare the page numbers in three parts, each with the entry's size mask
        # applied (page_parts), and the context tag.
        lk_ok = [Signal(4, name=f"lk_ok{i}") for i in range(n)]
        m.d.sync += s1.eq(s0)
        for i, e in enumerate(ents):
            eqs = chunk_eqs(e.vpn, lk_vpn, VPN_BITS)
            m.d.sync += lk_ok[i].eq(Cat(page_parts(eqs, e.size), tag_ok[i]))
        # Stage 2: the lowest match still valid.
        match = Signal(n)
        for i in range(n):
            m.d.comb += match[i].eq(lk_ok[i].all())
        first_q = Signal(n)
        m.d.sync += [s2.eq(s1), first_q.eq(first_one(match & valid))]
        # Stage 3: read it out, unless a flush took it meanwhile.
        m.d.sync += [
            self.hit.eq(s2 & (first_q & valid).any()),
            self.hit_idx.eq(encode(first_q)),
            self.hit_entry.eq(mux_onehot(first_q, ents)),
        ]

        # Back-pointer match (WP check) in three registered stages, since ``pte_q`` reaches
        # every entry: ``pte_q`` registered next to the entries, byte-wide partial compares,
        # then their AND with the entry's flags. The answer to ``pte_q`` arrives
        # ``PTE_LATENCY`` cycles later, and ``pte_inv`` then drops the entries that matched and
        # are still valid.
        pte_q = Signal.like(self.pte_q)
        m.d.sync += pte_q.eq(self.pte_q)
        pte_w = len(pte_q)
        chunks = [(lo, min(lo + 8, pte_w)) for lo in range(0, pte_w, 8)]
        pte_hits = Signal(n)
        for i, e in enumerate(ents):
            part = Signal(len(chunks), name=f"pte_part{i}")
            for k, (lo, hi) in enumerate(chunks):
                m.d.sync += part[k].eq(e.pte[lo:hi] == pte_q[lo:hi])
            m.d.sync += pte_hits[i].eq(e.valid & e.pte_valid & part.all())
        m.d.comb += self.pte_match.eq((pte_hits & valid).any())

        # Flushes: the operands are registered next to the entries every cycle (a flush takes
        # those of the cycle before its strobe), compared in two registered stages from the
        # strobe cycle, and the entries dropped in the cycle after (FLUSH_DROP cycles after
        # the strobe).
        fl_vpn, fl_vpid, fl_op0 = Signal(VPN_BITS), Signal(VPID_BITS), Signal(2)
        m.d.sync += [
            fl_vpn.eq(self.flush_vpn),
            fl_vpid.eq(self.flush_vpid),
            fl_op0.eq(self.flush_op),
        ]
        fl1, fl2 = Signal(), Signal()
        op1, op2 = Signal(2), Signal(2)
        vpn_eq, vpid_eq = Signal(n), Signal(n)
        m.d.sync += [fl1.eq(self.flush), fl2.eq(fl1), op1.eq(fl_op0), op2.eq(op1)]
        for i, e in enumerate(ents):
            fl_parts = Signal(3, name=f"fl_parts{i}")
            vpid_halves = Signal(2, name=f"fl_vpid_eq{i}")
            h = VPID_BITS // 2
            m.d.sync += [
                fl_parts.eq(page_parts(chunk_eqs(e.vpn, fl_vpn, VPN_BITS), e.size)),
                vpid_halves.eq(Cat(e.vpid[:h] == fl_vpid[:h], e.vpid[h:] == fl_vpid[h:])),
                vpn_eq[i].eq(fl_parts.all()),
                vpid_eq[i].eq(vpid_halves.all()),
            ]
        fl_q, fl_op = fl2, op2
        drop = Signal(n)
        for i, e in enumerate(ents):
            with m.If(fl_q):
                with m.Switch(fl_op):
                    with m.Case(FlushOp.INVLPG):
                        m.d.comb += drop[i].eq(e.valid & vpid_eq[i] & vpn_eq[i])
                    with m.Case(FlushOp.VPID):
                        m.d.comb += drop[i].eq(e.valid & vpid_eq[i])
                    with m.Case(FlushOp.ALL):
                        m.d.comb += drop[i].eq(e.valid)
                    with m.Case(FlushOp.PWC):
                        m.d.comb += drop[i].eq(e.valid & (e.mode == 0))
            with m.Elif(self.pte_inv):
                m.d.comb += drop[i].eq(pte_hits[i] & e.valid)
        # The count of what was dropped, in three registered stages (groups of four, pairs of
        # groups, the rest): a flat popcount of the whole vector is too deep for one cycle.
        groups = [drop[i : i + 4] for i in range(0, n, 4)]
        quads = [Signal(range(len(g) + 1), name=f"dropped_cnt{k}") for k, g in enumerate(groups)]
        for cnt, g in zip(quads, groups, strict=True):
            m.d.sync += cnt.eq(popcount(g))
        pairs = [Signal(range(n + 1), name=f"dropped_pair{k}") for k in range(len(quads[::2]))]
        for k, cnt in enumerate(pairs):
            m.d.sync += cnt.eq(sum_tree(quads[2 * k : 2 * k + 2]))
        m.d.sync += self.flushed.eq(sum_tree(pairs))

        # Victim, registered: the lowest invalid entry, else the PLRU leaf.
        invalid = ~valid
        victim = Signal(n, init=1)  # after reset every entry is invalid: entry 0
        m.d.sync += victim.eq(Mux(invalid.any(), first_one(invalid), plru_victim(tree, n)))

        # Fault injection is registered first: the XOR lands the cycle after the strobe.
        inj_sel = Signal(n)
        inj_mask = Signal.like(self.inj_mask)
        m.d.sync += inj_mask.eq(self.inj_mask)
        for i in range(n):
            m.d.sync += inj_sel[i].eq(self.inj & (self.inj_idx == i))
        for i, e in enumerate(ents):
            with m.If(inj_sel[i]):
                m.d.sync += e.ppn.eq(e.ppn ^ inj_mask)
            with m.If(self.kill & (self.kill_idx == i)):
                m.d.sync += e.valid.eq(0)
            with m.If(drop[i]):
                m.d.sync += e.valid.eq(0)
            with m.If(self.fill & victim[i]):
                m.d.sync += e.eq(self.fill_entry)

        with m.If(self.fill):
            plru_touch_onehot(m, "sync", tree, n, victim)
        with m.Elif(self.touch):
            plru_touch(m, "sync", tree, n, self.touch_idx)

        # For formal harnesses (hdl/mmu/formal.py); no effect on the design.
        self.probe = SimpleNamespace(
            entries=ents,
            tag_ok=tag_ok,
            lk_vpn=lk_vpn,
            ctx_mode=ctx_mode,
            ctx_vpid=ctx_vpid,
            s0=s0,
            pte_q=pte_q,
            fl_op=fl_op0,
            fl_vpn=fl_vpn,
            fl_vpid=fl_vpid,
            match=match,
            first=first_q,
            s1=s1,
            s2=s2,
            flush_q1=fl1,
            flush_q=fl2,
        )
        return m
