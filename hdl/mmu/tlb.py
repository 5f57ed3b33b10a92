"""Fully associative TLB with tree pseudo-LRU, mode/VPID tags and guest-PTE back-pointers."""

import operator
from functools import reduce

from amaranth import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from vmassist.formats.mmu import PA_BITS, VA_BITS, VPID_BITS, FlushOp, PageSize

from ..common.params import require

__all__ = ["TlbEntry", "Tlb", "plru_victim", "plru_touch", "first_one", "encode", "mux_onehot"]

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


def first_one(vec):
    """The lowest set bit of ``vec`` alone, through the carry chain (``v & -v``), instead of an
    ``n``-deep priority mux."""
    return (vec & (~vec + 1))[: len(vec)]


def encode(onehot):
    """Index of the set bit of a one-hot vector, as a tree of ORs."""
    n = len(onehot)
    bits = max(1, (n - 1).bit_length())
    return Cat(
        *(
            Cat(*(onehot[i] for i in range(n) if i >> b & 1)).any() if n > 1 << b else Const(0, 1)
            for b in range(bits)
        )
    )


def mux_onehot(onehot, values):
    """AND-OR multiplexer: the value whose one-hot select bit is set (0 when none is)."""
    width = len(Value.cast(values[0]))
    terms = [Value.cast(v) & onehot[i].replicate(width) for i, v in enumerate(values)]
    return reduce(operator.or_, terms)


def plru_victim(tree, n: int):
    """Index of the tree-PLRU victim: from the root, left on 0, right on 1 (heap indexing)."""
    depth = n.bit_length() - 1
    node = Const(1, depth + 1)
    for _ in range(depth):
        node = Cat(Array(tree)[node], node)[: depth + 1]  # node = 2*node + bit
    return node[:depth]  # node is in [n, 2n): its low bits are the entry index


def plru_touch(m, domain, tree, n: int, idx):
    """Point every node on the path to entry ``idx`` away from it."""
    depth = n.bit_length() - 1
    for level in range(depth):
        for k in range(1 << level, 2 << level):
            on_path = (idx >> (depth - level)) == (k - (1 << level))
            with m.If(on_path):
                m.d[domain] += tree[k].eq(~idx[depth - level - 1])


class Tlb(wiring.Component):
    """Fully associative TLB.

    Parameters
    ----------
    entries : int
        Number of entries, a power of two from 2 to 256.

    Members
    -------
    lk_valid, lk_vpn, lk_mode, lk_vpid : In
        A lookup, one per cycle.
    hit, hit_idx, hit_entry : Out
        Registered: the lookup's answer arrives the next cycle.
    fill, fill_entry : In
        Install ``fill_entry`` into the lowest invalid entry, else the PLRU victim.
    touch, touch_idx : In
        Mark an entry most recently used (a served hit).
    kill, kill_idx : In
        Invalidate one entry (a hit that could not serve the access).
    flush, flush_op, flush_vpn, flush_vpid : In
        A :class:`FlushOp` (INVLPG, VPID, ALL, or PWC which drops every EPT-mode entry).
    pte_q : In
        A guest-PTE HPA >> 3; ``pte_match``, the next cycle, says whether any valid entry holds it.
    pte_inv : In
        Invalidate every entry that matched the previous cycle's ``pte_q`` (and is still valid).
    flushed : Out
        Entries invalidated by this cycle's ``flush`` or ``pte_inv`` (combinational count).
    inj, inj_idx, inj_mask : In
        Fault injection: XOR ``inj_mask`` into one entry's PPN.
    """

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
                "lk_valid": In(1),
                "lk_vpn": In(VPN_BITS),
                "lk_mode": In(1),
                "lk_vpid": In(VPID_BITS),
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
        self.probe_entries = ents  # for formal harnesses (hdl/mmu/formal.py)

        # Lookup: compare all, pick the lowest match, register the answer.
        match = Signal(n)
        for i, e in enumerate(ents):
            mask = size_mask(e.size, VPN_BITS)
            m.d.comb += match[i].eq(
                e.valid
                & (e.mode == self.lk_mode)
                & (e.vpid == self.lk_vpid)
                & (((e.vpn ^ self.lk_vpn) & ~mask) == 0)
            )
        first = Signal(n)
        m.d.comb += first.eq(first_one(match))
        m.d.sync += [
            self.hit.eq(self.lk_valid & match.any()),
            self.hit_idx.eq(encode(first)),
            self.hit_entry.eq(mux_onehot(first, ents)),
        ]

        # Back-pointer match (WP check), registered: the answer to ``pte_q`` arrives the next
        # cycle, and ``pte_inv`` then drops the entries that matched and are still valid.
        pte_hits = Signal(n)
        for i, e in enumerate(ents):
            m.d.sync += pte_hits[i].eq(e.valid & e.pte_valid & (e.pte == self.pte_q))
        m.d.comb += self.pte_match.eq((pte_hits & Cat(e.valid for e in ents)).any())

        drop = Signal(n)
        for i, e in enumerate(ents):
            mask = size_mask(e.size, VPN_BITS)
            gva_hit = ((e.vpn ^ self.flush_vpn) & ~mask) == 0
            vpid_hit = e.vpid == self.flush_vpid
            with m.If(self.flush):
                with m.Switch(self.flush_op):
                    with m.Case(FlushOp.INVLPG):
                        m.d.comb += drop[i].eq(e.valid & vpid_hit & gva_hit)
                    with m.Case(FlushOp.VPID):
                        m.d.comb += drop[i].eq(e.valid & vpid_hit)
                    with m.Case(FlushOp.ALL):
                        m.d.comb += drop[i].eq(e.valid)
                    with m.Case(FlushOp.PWC):
                        m.d.comb += drop[i].eq(e.valid & (e.mode == 0))
            with m.Elif(self.pte_inv):
                m.d.comb += drop[i].eq(pte_hits[i] & e.valid)
        m.d.comb += self.flushed.eq(sum(drop[i] for i in range(n)))

        # Victim: lowest invalid entry, else the PLRU leaf.
        invalid = Signal(n)
        m.d.comb += invalid.eq(Cat(~e.valid for e in ents))
        victim = Signal(range(n))
        m.d.comb += victim.eq(Mux(invalid.any(), encode(first_one(invalid)), plru_victim(tree, n)))

        for i, e in enumerate(ents):
            with m.If(self.inj & (self.inj_idx == i)):
                m.d.sync += e.ppn.eq(e.ppn ^ self.inj_mask)
            with m.If(self.kill & (self.kill_idx == i)):
                m.d.sync += e.valid.eq(0)
            with m.If(drop[i]):
                m.d.sync += e.valid.eq(0)
            # A fill never lands in the same cycle as a flush: the walker kills such refills.
            with m.If(self.fill & (victim == i)):
                m.d.sync += e.eq(self.fill_entry)

        with m.If(self.fill):
            plru_touch(m, "sync", tree, n, victim)
        with m.Elif(self.touch):
            plru_touch(m, "sync", tree, n, self.touch_idx)
        return m
