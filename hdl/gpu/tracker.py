"""The GPU dirty tracker: AW snoop, dirty bitmap with two epochs, read-out, log (``docs/gpu.md``).

Data path, one AW per cycle::

    aw snoop ─> span (first, last page) ─> op queue ─> one page per cycle ─> bitmap RMW ─┬─> log
                                                                                        │
    flip ─> read-out of the ended epoch's bitmap (read-and-clear) ─> dirty page numbers ─┘

Each epoch has a bitmap of its own (block RAM, 32 pages a word), so the read-out of the ended
epoch and the new epoch's writes never share a port.
"""

from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from vmassist.formats.gpu import LOG_DEPTH, PAGE_BITS, Burst

from ..common import PipelinedRam
from ..common.bits import encode, first_one, mux_onehot
from ..common.bramfifo import BramFifo
from ..common.params import require
from ..common.ram import dp16kd_mode
from ..common.replica import replicas

__all__ = ["AwSnoopSignature", "DirtyTracker"]

#: Pages per bitmap word.
WORD = 32
#: Bits of a word the read-out takes its lowest set bit from at once.
GROUP = 8


def _onehot(bit):
    """``bit`` (an epoch parity) as a 2-bit one-hot."""
    return Cat(~bit, bit)


class AwSnoopSignature(wiring.Signature):
    """An AXI4 write-address channel as a snoop sees it, from the bus's side: every signal
    flows to the snoop (``In(AwSnoopSignature(...))`` on the snooping component)."""

    def __init__(self, addr_width: int):
        super().__init__(
            {
                "awvalid": Out(1),
                "awready": Out(1),
                "awaddr": Out(addr_width),
                "awlen": Out(8),
                "awsize": Out(3),
                "awburst": Out(2),
            }
        )


class DirtyTracker(wiring.Component):
    """Dirty-page tracker for one aperture (``docs/gpu.md``).

    Parameters
    ----------
    page_bits : int
        log2 of the page size, 7 to 16 (12: 4 KiB).
    aperture_bits : int
        log2 of the aperture in bytes (28: 256 MiB), addresses relative to its base.
    addr_width : int
        Width of ``awaddr``, at least ``aperture_bits``.
    log_depth : int
        Entries of the log (512), at least 3.
    op_depth : int
        AWs the tracker holds while a burst of several pages is written page by page (16).

    Members
    -------
    aw : ``In(AwSnoopSignature(addr_width))``
        The snooped channel; every AW with ``awvalid & awready`` is tracked.
    flip, flip_ready : In, Out
        End the current epoch: taken in a cycle with both high. ``flip_ready`` is low from a
        flip until the ended epoch is read out.
    epoch : Out
        The current epoch's parity.
    dirty : ``Out(stream.Signature(range(pages)))``
        The ended epoch's dirty pages, ascending, each read and cleared from its bitmap.
    readout_overflow : Out
        The ended epoch lost an update (a log entry or an AW): take every page as dirty.
    log : ``Out(stream.Signature(LogEntry))``
        The first dirty of each page in its epoch, in order.
    log_level, log_threshold, irq : Out, In, Out
        Entries in the log; the interrupt, while ``log_level >= log_threshold`` or the log is
        full.
    writes, new_pages, log_overflows, outside, op_drops : Out(32)
        Counters (wrapping): AWs taken, pages dirtied for the first time in their epoch, log
        entries lost, AWs wholly outside the aperture, AWs lost for want of room.
    """

    #: The counters' ports, in the order of their numbers (``docs/gpu.md``).
    COUNTERS = ("writes", "new_pages", "log_overflows", "outside", "op_drops")

    def __init__(
        self,
        *,
        page_bits: int = PAGE_BITS,
        aperture_bits: int = 28,
        addr_width: int = 32,
        log_depth: int = LOG_DEPTH,
        op_depth: int = 16,
    ):
        for name, value in (
            ("page_bits", page_bits),
            ("aperture_bits", aperture_bits),
            ("addr_width", addr_width),
            ("log_depth", log_depth),
            ("op_depth", op_depth),
        ):
            require(
                self,
                isinstance(value, int) and not isinstance(value, bool),
                TypeError(f"{name} must be an integer, not {value!r}"),
            )
        require(self, 7 <= page_bits <= 16, ValueError(f"page_bits must be 7 to 16: {page_bits}"))
        pages = 1 << max(0, aperture_bits - page_bits)
        require(
            self,
            aperture_bits >= page_bits and WORD * 2 <= pages <= WORD * 16384,
            ValueError(
                f"aperture_bits must give {2 * WORD} to {16384 * WORD} pages, not {aperture_bits}"
            ),
        )
        require(
            self,
            aperture_bits <= addr_width <= 64,
            ValueError(f"addr_width must be aperture_bits to 64, not {addr_width}"),
        )
        # The least log the contract has known (a SyncFIFOBuffered of 2 refused a write while
        # the word in its memory moved to its output register, losing an entry with room).
        require(self, log_depth >= 3, ValueError(f"log_depth must be at least 3: {log_depth}"))
        require(self, op_depth >= 2, ValueError(f"op_depth must be at least 2: {op_depth}"))
        self._page_bits = page_bits
        self._aperture_bits = aperture_bits
        self._addr_width = addr_width
        self._log_depth = log_depth
        self._op_depth = op_depth
        self._pages = pages
        page = range(pages)
        self._log_layout = data.StructLayout({"page": page, "epoch": 1})
        super().__init__(
            {
                "aw": In(AwSnoopSignature(addr_width)),
                "flip": In(1),
                "flip_ready": Out(1),
                "epoch": Out(1),
                "dirty": Out(stream.Signature(page)),
                "readout_overflow": Out(1),
                "log": Out(stream.Signature(self._log_layout)),
                "log_level": Out(range(log_depth + 1)),
                "log_threshold": In(range(log_depth + 1)),
                "irq": Out(1),
                **{name: Out(32) for name in self.COUNTERS},
            }
        )

    @property
    def page_bits(self) -> int:
        return self._page_bits

    @property
    def aperture(self) -> int:
        return 1 << self._aperture_bits

    @property
    def pages(self) -> int:
        return self._pages

    @property
    def addr_width(self) -> int:
        return self._addr_width

    @property
    def log_depth(self) -> int:
        return self._log_depth

    @property
    def log_layout(self) -> data.StructLayout:
        """A log entry: the page and its epoch's parity."""
        return self._log_layout

    def elaborate(self, platform):
        m = Module()
        pb, npages = self._page_bits, self._pages
        nwords = npages // WORD
        cols = PipelinedRam.columns(WORD, nwords)  # block RAMs per bitmap on ECP5
        ncopy = -(-cols // 4)  # copies of their address and enable registers: one per 4
        pbits = (npages - 1).bit_length()
        wide = self._addr_width + 17  # room for an address plus a burst's 2**15 bytes

        def count(counter, cond):
            with m.If(cond):
                m.d.sync += counter.eq(counter + 1)

        # ---- 1. the AW, registered ----
        aw = self.aw
        cur = Signal()  # the current epoch's parity
        m.d.comb += self.epoch.eq(cur)
        a_valid, a_addr, a_len = Signal(), Signal(self._addr_width), Signal(8)
        a_size, a_burst, a_epoch = Signal(3), Signal(2), Signal()
        taken = aw.awvalid & aw.awready
        m.d.sync += [
            a_valid.eq(taken),
            a_addr.eq(aw.awaddr),
            a_len.eq(aw.awlen),
            a_size.eq(aw.awsize),
            a_burst.eq(aw.awburst),
            a_epoch.eq(cur),
        ]
        count(self.writes, a_valid)

        # ---- 2. the burst's shape: its bytes less one, the beat's, and its kind ----
        # The byte range takes two stages, so that no adder follows the shifter that sizes the
        # burst (one AW a cycle, at the GPU's clock); the shifter itself has no adder around it.
        k_valid, k_addr, k_epoch = Signal(), Signal(self._addr_width), Signal()
        k_total_m1 = Signal(15)  # burst bytes - 1 (a burst is at most 2**15 bytes)
        k_beat_m1 = Signal(7)  # beat bytes - 1
        k_kind = Signal(2)  # 0 FIXED, 1 INCR, 2 a defined WRAP, 3 undefined (conservative)
        k_base_lo = Signal(7)  # the low bits of the sum's base: aligned (INCR) or addr
        beat_m1 = Cat(*(a_size > i for i in range(7)))  # 2**size - 1, a thermometer code
        defined_wrap = Cat(a_len == 1, a_len == 3, a_len == 7, a_len == 15).any()
        m.d.sync += [
            k_valid.eq(a_valid),
            k_addr.eq(a_addr),
            k_epoch.eq(a_epoch),
            # (len + 1) * beat - 1 = len * beat + (beat - 1), whose terms share no bit: an OR
            k_total_m1.eq((a_len << a_size) | beat_m1),
            k_beat_m1.eq(beat_m1),
            k_base_lo.eq(Mux(a_burst == Burst.INCR, a_addr[:7] & ~beat_m1, a_addr[:7])),
            k_kind.eq(
                Mux(
                    a_burst == Burst.WRAP,
                    Mux(defined_wrap, 2, 3),
                    Mux(a_burst == Burst.RESERVED, 3, a_burst),
                )
            ),
        ]

        # ---- 3. the bytes it addresses, [lo, hi] (docs/gpu.md) ----
        # FIXED: [addr, aligned + beat); INCR: [addr, aligned + total); a defined WRAP: the
        # container of its total size that holds addr; undefined: [addr - total + 1, addr +
        # total). ``aligned`` is addr rounded down to the beat, so aligned + beat - 1 is addr |
        # (beat - 1), and a WRAP's container is addr with the low bits cleared or set.
        addr = k_addr
        low = min(len(k_total_m1), self._addr_width)  # ``~`` of a narrower mask is zero-extended
        sum_hi = Cat(k_base_lo, addr[7:]) + k_total_m1  # INCR (from aligned) and undefined
        below = addr - k_total_m1  # undefined: saturates at 0
        l_valid, l_epoch = Signal(), Signal()
        lo, hi = Signal(wide), Signal(wide)  # the bytes, hi inclusive
        m.d.sync += [l_valid.eq(k_valid), l_epoch.eq(k_epoch)]
        with m.Switch(k_kind):
            with m.Case(0):
                m.d.sync += [lo.eq(addr), hi.eq(addr | k_beat_m1)]
            with m.Case(1):
                m.d.sync += [lo.eq(addr), hi.eq(sum_hi)]
            with m.Case(2):
                m.d.sync += [
                    lo.eq(Cat(addr[:low] & ~k_total_m1[:low], addr[low:])),
                    hi.eq(addr | k_total_m1),
                ]
            with m.Case(3):
                m.d.sync += [lo.eq(Mux(addr >= k_total_m1, below, 0)), hi.eq(sum_hi)]

        # ---- 4. its pages, first and last, clipped to the aperture ----
        ab = self._aperture_bits
        b_valid, b_first, b_last, b_epoch = Signal(), Signal(pbits), Signal(pbits), Signal()
        inside = lo[ab:] == 0
        m.d.sync += [
            b_valid.eq(l_valid & inside),
            b_first.eq(lo[pb:ab]),
            b_last.eq(Mux(hi[ab:] == 0, hi[pb:ab], npages - 1)),
            b_epoch.eq(l_epoch),
        ]
        count(self.outside, l_valid & ~inside)

        # ---- 5. the op queue, then one page per cycle ----
        op = data.StructLayout({"first": pbits, "last": pbits, "epoch": 1})
        m.submodules.ops = ops = fifo.SyncFIFOBuffered(width=op.size, depth=self._op_depth)
        ov = Signal(2)  # per epoch parity: an update of that epoch was lost
        ov_set = Signal(2)
        m.d.comb += [ops.w_en.eq(b_valid), ops.w_data.eq(Cat(b_first, b_last, b_epoch))]
        dropped = b_valid & ~ops.w_rdy
        count(self.op_drops, dropped)
        m.d.comb += ov_set.eq(Mux(dropped, _onehot(b_epoch), 0))
        head = data.View(op, ops.r_data)
        s_active, s_epoch = Signal(name="s_active"), Signal(name="s_epoch")
        s_page, s_last = Signal(pbits, name="s_page"), Signal(pbits, name="s_last")
        # ``s_last - s_page``, and whether it is 0 (the page issued now is the AW's last), kept
        # ahead in registers so that the splitter's decision compares nothing.
        s_rem, s_one = Signal(pbits, name="s_rem"), Signal(name="s_one")
        s_done = s_active & s_one
        load = ops.r_rdy & (~s_active | s_one)
        m.d.comb += ops.r_en.eq(load)
        with m.If(load):
            m.d.sync += [
                s_active.eq(1),
                s_page.eq(head.first),
                s_last.eq(head.last),
                s_rem.eq(head.last - head.first),
                s_one.eq(head.first == head.last),
                s_epoch.eq(head.epoch),
            ]
        with m.Elif(s_done):
            m.d.sync += s_active.eq(0)
        with m.Elif(s_active):
            m.d.sync += [s_page.eq(s_page + 1), s_rem.eq(s_rem - 1), s_one.eq(s_rem == 1)]
        # AWs of each epoch parity in the queue or the splitter, not yet fully issued.
        pending = [Signal(range(self._op_depth + 2), name=f"pending{e}") for e in range(2)]
        for e in range(2):
            inc = b_valid & ops.w_rdy & (b_epoch == e)
            dec = s_done & (s_epoch == e)
            up, down = inc & ~dec, dec & ~inc  # late: they pick a sum, none follows them
            p = pending[e]
            m.d.sync += p.eq(Mux(up, p + 1, Mux(down, p - 1, p)))

        # ---- 6. the bitmap read-modify-write, one page per cycle, never stalling ----
        # R1 issues the read; the word is on the RAM's output register at R3, which sets the
        # page's bit; R4 writes it back. The read misses the writes of the three pages ahead (R4
        # now, and the two before, kept in R5 and R6); every other page of its epoch is in it.
        # Both kinds of match with those three are found at R1 from the page numbers, and
        # carried along: ``fwd`` is the three word matches (the pages now at R4, R5, R6), then
        # the three page matches. Within an epoch a word only gains bits, and a page's word,
        # once written, holds every bit its word had in the bitmap and ahead of it; so:
        #
        # * the word to write is the read word ORed with the words of those of the three that
        #   have the same word, and the page's bit;
        # * the page is new unless its bit was in the bitmap or one of the three is that page.
        #
        # The read is undefined when it met R4's write to the same word (the page now at R6:
        # ``fwd[2]``); that page's word then stands for it (it holds every bit the read would
        # have), so the read is masked off, and R2 picks the page's bit of that word (from R5,
        # where it is then) in its place (``fb``). The bit read is found in two halves: R3
        # ANDs each bitmap's word with the page's one-hot mask for it (``m0``/``m1``, set up at
        # R2 from the mask R1 decodes: zero but for the page's epoch, and without a collision)
        # and ORs it in groups of four, R4 ORs the groups.
        groups = WORD // 4

        def stage(name):
            return {
                "valid": Signal(name=f"{name}_valid"),
                "epoch": Signal(name=f"{name}_epoch"),
                "word": Signal(range(nwords), name=f"{name}_word"),
                "bit": Signal(range(WORD), name=f"{name}_bit"),
                "fwd": Signal(6, name=f"{name}_fwd"),
                "mask": Signal(WORD, name=f"{name}_mask"),
                "m0": Signal(WORD, name=f"{name}_m0"),
                "m1": Signal(WORD, name=f"{name}_m1"),
                "rd": Signal(2, name=f"{name}_rd"),  # each bitmap's read is the word's
                "fb": Signal(name=f"{name}_fb"),
                "seen": Signal(groups + 2, name=f"{name}_seen"),
                "new": Signal(name=f"{name}_new"),
                "data": Signal(WORD, name=f"{name}_data"),
            }

        r = [stage(f"r{i}") for i in range(1, 7)]
        r1, r2, r3, r4, r5, r6 = r
        m.d.sync += [
            r1["valid"].eq(s_active),
            r1["epoch"].eq(s_epoch),
            r1["word"].eq(s_page[5:]),
            r1["bit"].eq(s_page[:5]),
            r2["mask"].eq(Const(1, WORD) << r1["bit"]),
        ]

        def same(a, b):
            return b["valid"] & (a["word"] == b["word"]) & (a["epoch"] == b["epoch"])

        ahead = (r2, r3, r4)
        m.d.sync += r2["fwd"].eq(
            Cat(
                *(same(r1, b) for b in ahead),
                *(same(r1, b) & (r1["bit"] == b["bit"]) for b in ahead),
            )
        )
        for a, b in ((r2, r1), (r3, r2)):
            m.d.sync += [a[k].eq(b[k]) for k in ("valid", "epoch", "word", "bit")]
        mask2 = r2["mask"]
        rd2 = Mux(r2["fwd"][2], 0, _onehot(r2["epoch"]))
        m.d.sync += [
            r3["fwd"].eq(r2["fwd"]),
            r3["mask"].eq(mask2),
            r3["rd"].eq(rd2),
            r3["m0"].eq(Mux(rd2[0], mask2, 0)),
            r3["m1"].eq(Mux(rd2[1], mask2, 0)),
            r3["fb"].eq(r2["fwd"][2] & (r5["data"] & mask2).any()),
        ]
        rams = [PipelinedRam(WORD, nwords, copies=ncopy) for _ in range(2)]
        for e, ram in enumerate(rams):
            m.submodules[f"bitmap{e}"] = ram
        fwd = r3["fwd"]
        read = Cat(
            (rams[0].r_data[i] & r3["rd"][0]) | (rams[1].r_data[i] & r3["rd"][1])
            for i in range(WORD)
        )
        hit = Cat(
            (rams[0].r_data[i] & r3["m0"][i]) | (rams[1].r_data[i] & r3["m1"][i])
            for i in range(WORD)
        )
        old = read | mux_onehot(fwd[:3], [r4["data"], r5["data"], r6["data"]])
        m.d.sync += [
            *(r4[k].eq(r3[k]) for k in ("valid", "epoch", "word", "bit")),
            r4["data"].eq(old | r3["mask"]),
            r4["seen"].eq(
                Cat(
                    *(hit[4 * g : 4 * g + 4].any() for g in range(groups)),
                    fwd[3:].any(),
                    r3["fb"],
                )
            ),
        ]
        m.d.comb += r4["new"].eq(~r4["seen"].any())
        for a, b in ((r5, r4), (r6, r5)):
            m.d.sync += [a[k].eq(b[k]) for k in ("valid", "epoch", "word", "data")]

        # ---- 7. the log: a page's first dirty in its epoch ----
        # The entry is offered a cycle after R4 (``lw``), from registers, so that the log's
        # count and its full flag are a LUT or two from flip-flops.
        lw_valid, lw_epoch = Signal(name="lw_valid"), Signal(name="lw_epoch")
        lw_page = Signal(range(npages), name="lw_page")
        m.d.sync += [
            lw_valid.eq(r4["valid"] & r4["new"]),
            lw_page.eq(Cat(r4["bit"], r4["word"])),
            lw_epoch.eq(r4["epoch"]),
        ]
        count(self.new_pages, lw_valid)
        m.submodules.logq = logq = BramFifo(width=self._log_layout.size, depth=self._log_depth)
        m.d.comb += [
            logq.w_en.eq(lw_valid),
            logq.w_data.eq(Cat(lw_page, lw_epoch)),
            self.log.valid.eq(logq.r_rdy),
            self.log.payload.eq(logq.r_data),
            logq.r_en.eq(self.log.ready),
            self.log_level.eq(logq.level),
            self.irq.eq((logq.level >= self.log_threshold) | ~logq.w_rdy),
        ]
        lost = lw_valid & ~logq.w_rdy
        count(self.log_overflows, lost)

        # ---- 8. flips and the read-out of the ended epoch ----
        # ``busy`` from a flip until the ended epoch is read out. The read-out waits until no
        # page of that epoch is queued or in the read-modify-write, then reads each word of its
        # bitmap, clears it, and offers its set bits, lowest first, one per cycle.
        # The word is taken in groups of ``GROUP`` bits: per group a registered flag (bits set)
        # and the index of its lowest set bit, worked out in ``prep`` and then kept up as its
        # bits are offered (each from the group's bits alone), so that the page offered is the
        # lowest group's index, picked by the flags, never a priority encoder of the word.
        busy = Signal()
        scan_on = Signal()  # past the drain: the ended epoch's bitmap is the read-out's
        prev = ~cur
        m.d.comb += [self.flip_ready.eq(~busy), self.readout_overflow.eq(ov.bit_select(prev, 1))]
        flipped = self.flip & ~busy
        in_pipe = Cat(
            *(s["valid"] & (s["epoch"] == prev) for s in (r1, r2, r3, r4)),
            s_active & (s_epoch == prev),
            b_valid & (b_epoch == prev),
            l_valid & (l_epoch == prev),
            k_valid & (k_epoch == prev),
            a_valid & (a_epoch == prev),
        ).any()
        quiet = (Mux(prev, pending[1], pending[0]) == 0) & ~in_pipe
        idx = Signal(range(nwords + 1))  # the next word to read
        word = Signal(range(nwords))  # the word being offered
        last = Signal()  # ... is the last
        bits = Signal(WORD)
        ngroups = WORD // GROUP
        gbits = [bits[k * GROUP : (k + 1) * GROUP] for k in range(ngroups)]
        nz = Signal(ngroups)  # in ``emit``: each group's bits, any set
        lows = [Signal(range(GROUP), name=f"low{k}") for k in range(ngroups)]  # ... the lowest
        lowm = [Signal(GROUP, name=f"lowm{k}") for k in range(ngroups)]  # ... it, one-hot

        def lowest(v):
            return encode(first_one(v))

        # The read-out's address is ``idx`` a cycle late (copies by the block RAMs), and ``idx``
        # moves on as soon as its word is taken, so the next word is read while this one is
        # offered: ``settle`` counts the cycles until the bitmap's output register holds it.
        settle = Signal(range(3))
        ready = settle == 0
        to_take = Signal()  # the next cycle is ``take``
        with m.If(~ready):
            m.d.sync += settle.eq(settle - 1)
        with m.FSM() as fsm:
            with m.State("idle"):  # idx is 0
                with m.If(flipped):
                    m.d.sync += [cur.eq(~cur), busy.eq(1)]
                    m.next = "drain"
            with m.State("drain"):  # word 0 is read now, with the drained pages' writes in it
                with m.If(quiet):
                    m.d.sync += scan_on.eq(1)
                    m.next = "wait"
            with m.State("wait"):
                with m.If(ready):
                    m.d.comb += to_take.eq(1)
                    m.next = "take"
            with m.State("take"):  # the word, and a write of 0 over it
                m.d.sync += [
                    bits.eq(Mux(prev, rams[1].r_data, rams[0].r_data)),
                    word.eq(idx),
                    last.eq(idx == nwords - 1),
                    idx.eq(idx + 1),
                    settle.eq(2),
                ]
                m.next = "prep"
            with m.State("prep"):
                m.d.sync += nz.eq(Cat(g.any() for g in gbits))
                for g, low, lm in zip(gbits, lows, lowm, strict=True):
                    m.d.sync += [low.eq(lowest(g)), lm.eq(first_one(g))]
                m.next = "emit"
            with m.State("emit"):
                with m.If(~nz.any()):
                    with m.If(last):
                        m.d.sync += [busy.eq(0), scan_on.eq(0), idx.eq(0)]
                        m.next = "idle"
                    with m.Elif(ready):
                        m.d.comb += to_take.eq(1)
                        m.next = "take"
                    with m.Else():
                        m.next = "wait"
        # The pages on offer: ``nz`` is zero but in ``emit`` (it is loaded at the end of ``prep``
        # and ``emit`` ends once it is zero), so no state decode lies before the offer.
        group = first_one(nz)
        m.d.comb += [
            self.dirty.valid.eq(nz.any()),
            self.dirty.payload.eq(Cat(mux_onehot(group, lows), encode(group), word)),
        ]
        # The group's lowest bit goes; the next is its second lowest.
        for k, (g, low, lm) in enumerate(zip(gbits, lows, lowm, strict=True)):
            rest = g & ~lm
            with m.If(group[k] & self.dirty.ready):
                m.d.sync += [
                    g.eq(rest),
                    low.eq(lowest(g & ~first_one(g))),
                    lm.eq(first_one(g & ~first_one(g))),
                    nz[k].eq((g & ~first_one(g)).any()),
                ]
        # The epoch that becomes current starts clean: its flag was read with its read-out.
        ov_clear = Mux(flipped, _onehot(prev), 0)
        m.d.sync += ov.eq((ov & ~ov_clear) | ov_set | Mux(lost, _onehot(lw_epoch), 0))

        # ---- the bitmaps' ports: the current epoch's for the RMW, the other's for the read-out
        # Every address and enable is picked, by a LUT by each block RAM, from registers that
        # come in a copy per four block RAMs (``replicas``), each loaded a cycle ahead: the RMW's
        # read address (R1's word) and its write (R4's), the read-out's address (``idx``) and
        # its clear (in ``take``). The RMW never reads or writes the bitmap being read out (its
        # epoch's updates have drained), so an enable alone picks each address.
        ports = []
        for e, ram in enumerate(rams):
            rmw_rd = replicas(m, platform, s_active & (s_epoch == e), ncopy, name=f"rmw_rd{e}")
            rmw_ra = replicas(m, platform, s_page[5:], ncopy, name=f"rmw_ra{e}")
            rmw_wr = replicas(
                m, platform, r3["valid"] & (r3["epoch"] == e), ncopy, name=f"rmw_wr{e}"
            )
            rmw_wa = replicas(m, platform, r3["word"], ncopy, name=f"rmw_wa{e}")
            scan_a = replicas(m, platform, idx[: len(r1["word"])], ncopy, name=f"scan_a{e}")
            clear_next = to_take & (prev == e)  # the clear is in ``take``
            clear = replicas(m, platform, clear_next, ncopy, name=f"clear{e}")
            ports.append(
                SimpleNamespace(
                    rmw_rd=rmw_rd,
                    rmw_ra=rmw_ra,
                    rmw_wr=rmw_wr,
                    rmw_wa=rmw_wa,
                    scan_a=scan_a,
                    clear=clear,
                )
            )
            width = dp16kd_mode(nwords)[0]
            m.d.comb += [
                ram.r_en.eq(1),
                ram.r_oe.eq(1),
                ram.w_data.eq(Cat(r4["data"][i] & ~clear[i // width % ncopy] for i in range(WORD))),
            ]
            for k in range(ncopy):
                m.d.comb += [
                    ram.r_addr[k].eq(Mux(rmw_rd[k], rmw_ra[k], scan_a[k])),
                    ram.w_en[k].eq(clear[k] | rmw_wr[k]),
                    ram.w_addr[k].eq(Mux(clear[k], scan_a[k], rmw_wa[k])),
                ]
        # For the formal harnesses (``hdl/gpu/formal.py``): the state their invariants name.
        self.probe = SimpleNamespace(
            cur=cur,
            a_valid=a_valid,
            a_epoch=a_epoch,
            k_valid=k_valid,
            k_epoch=k_epoch,
            l_valid=l_valid,
            l_epoch=l_epoch,
            b_valid=b_valid,
            b_first=b_first,
            b_last=b_last,
            b_epoch=b_epoch,
            ops=ops,
            dropped=dropped,
            s_active=s_active,
            s_page=s_page,
            s_last=s_last,
            s_epoch=s_epoch,
            s_rem=s_rem,
            s_one=s_one,
            pending=pending,
            r=r,
            rams=rams,
            ports=ports,
            lw_valid=lw_valid,
            lw_page=lw_page,
            lw_epoch=lw_epoch,
            logq=logq,
            ov=ov,
            busy=busy,
            scan_on=scan_on,
            fsm=fsm,
            idx=idx,
            settle=settle,
            word=word,
            last=last,
            bits=bits,
            nz=nz,
            lows=lows,
            lowm=lowm,
        )
        return m
