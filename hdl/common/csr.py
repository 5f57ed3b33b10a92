"""An AXI4-Lite register block rendered from a :class:`~vmassist.formats.csr.RegisterMap`."""

import operator
from functools import reduce

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from vmassist.formats.csr import Access, RegisterMap

from .axil import AxiLiteSignature
from .bits import mux_onehot

__all__ = ["CsrBlock"]

OKAY, SLVERR = 0b00, 0b10
#: Registers per group in the first level of a two-level read multiplexer.
_GROUP = 4


class CsrBlock(wiring.Component):
    """AXI4-Lite slave holding the registers of ``regmap``.

    RW registers are held here and honour ``wstrb``; RO registers read signals the parent
    drives; a write to a WO register pulses its strobe for one cycle with the written data.
    An address that names no register answers SLVERR.

    Parameters
    ----------
    regmap : RegisterMap
    read_stages : int
        Cycles from AR taken to R valid, 1 to 8. 1 (default): the read data is registered from
        the address. 2: the address decode is registered first, then the registers are
        multiplexed, for a block with so many registers that decoding and multiplexing them
        in one cycle is too slow. 3 or more: the decode, ``read_stages - 3`` idle cycles, then the
        multiplexer in two registered levels; the registers are sampled ``read_stages - 2``
        cycles after AR is taken, which gives registers that settle a few cycles after a
        write (a read issued after the write's B response) time to settle.
    write_stages : int
        1 (default): a write lands, and B answers, the cycle after AW and W are taken. 2: the
        address decode is registered first, and the write lands (B answers) a cycle later, so
        that the bus's valid signals reach no register's enable through a decoder.

    Members
    -------
    bus : ``In(AxiLiteSignature)``
        The slave port.

    Attributes
    ----------
    rw : dict of str to Signal
        Value of each RW register (driven here).
    ro : dict of str to Signal
        Value of each RO register (driven by the parent).
    wo : dict of str to (Signal, Signal)
        Strobe and data of each WO register (driven here).
    """

    def __init__(self, regmap: RegisterMap, *, read_stages: int = 1, write_stages: int = 1):
        if not isinstance(regmap, RegisterMap):
            raise TypeError(f"regmap must be a RegisterMap, not {regmap!r}")
        if not isinstance(read_stages, int) or not 1 <= read_stages <= 8:
            raise ValueError(f"read_stages must be 1 to 8, not {read_stages!r}")
        if write_stages not in (1, 2):
            raise ValueError(f"write_stages must be 1 or 2, not {write_stages!r}")
        self._regmap = regmap
        self._read_stages = read_stages
        self._write_stages = write_stages
        dw = regmap.data_width
        super().__init__({"bus": In(AxiLiteSignature(addr_width=regmap.addr_width, data_width=dw))})
        self.rw = {
            r.name: Signal(dw, init=r.reset, name=f"csr_{r.name.lower()}")
            for r in regmap
            if r.access is Access.RW
        }
        self.ro = {
            r.name: Signal(dw, name=f"csr_{r.name.lower()}")
            for r in regmap
            if r.access is Access.RO
        }
        self.wo = {
            r.name: (
                Signal(name=f"csr_{r.name.lower()}_stb"),
                Signal(dw, name=f"csr_{r.name.lower()}_data"),
            )
            for r in regmap
            if r.access is Access.WO
        }

    @property
    def regmap(self) -> RegisterMap:
        return self._regmap

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        dw = self._regmap.data_width
        shift = (dw // 8 - 1).bit_length()

        for stb, _ in self.wo.values():
            m.d.sync += stb.eq(0)

        # Write: take AW and W together, answer B, then take the next pair.
        regs = list(self._regmap)
        offsets = [reg.offset >> shift for reg in regs]
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += bus.bvalid.eq(0)
        if self._write_stages == 1:
            take_w = bus.awvalid & bus.wvalid & ~bus.bvalid
            addr = bus.awaddr >> shift
            sel = Cat(addr == off for off in offsets)
            known = sel.any()
            go, wdata, wstrb = take_w, bus.wdata, bus.wstrb
        else:
            # The address is decoded into a one-hot register select in the cycle AW and W
            # are taken; the write lands the next cycle, from registers only.
            w_pending = Signal()
            take_w = bus.awvalid & bus.wvalid & ~bus.bvalid & ~w_pending
            addr = bus.awaddr >> shift
            sel, known = Signal(len(regs)), Signal()
            wdata, wstrb = Signal.like(bus.wdata), Signal.like(bus.wstrb)
            m.d.sync += w_pending.eq(take_w)
            with m.If(take_w):
                m.d.sync += [
                    sel.eq(Cat(addr == off for off in offsets)),
                    known.eq(Cat(addr == off for off in offsets).any()),
                    wdata.eq(bus.wdata),
                    wstrb.eq(bus.wstrb),
                ]
            go = w_pending
        m.d.comb += [bus.awready.eq(take_w), bus.wready.eq(take_w)]
        with m.If(go):
            m.d.sync += [bus.bvalid.eq(1), bus.bresp.eq(Mux(known, OKAY, SLVERR))]
        for i, reg in enumerate(regs):
            if reg.access is Access.RW:
                sig = self.rw[reg.name]
                for lane in range(dw // 8):
                    with m.If(go & sel[i] & wstrb[lane]):
                        m.d.sync += sig[lane * 8 : lane * 8 + 8].eq(wdata[lane * 8 : lane * 8 + 8])
            elif reg.access is Access.WO:
                stb, data_ = self.wo[reg.name]
                with m.If(go & sel[i]):
                    m.d.sync += [stb.eq(1), data_.eq(wdata)]

        # Read: one outstanding; data registered.
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        readable = {
            reg.name: self.rw[reg.name] if reg.access is Access.RW else self.ro[reg.name]
            for reg in self._regmap
            if reg.access in (Access.RW, Access.RO)
        }
        if self._read_stages == 1:
            m.d.comb += bus.arready.eq(~bus.rvalid)
            with m.If(bus.arvalid & ~bus.rvalid):
                m.d.sync += [bus.rvalid.eq(1), bus.rresp.eq(SLVERR), bus.rdata.eq(0)]
                with m.Switch(bus.araddr >> shift):
                    for reg in self._regmap:
                        with m.Case(reg.offset >> shift):
                            m.d.sync += bus.rresp.eq(OKAY)
                            if reg.name in readable:
                                m.d.sync += bus.rdata.eq(readable[reg.name])
        else:
            # The address is decoded into a one-hot register select (and "names a register")
            # in the cycle AR is taken; ``read_stages - 1`` cycles later the select multiplexes.
            r_pending = Signal(self._read_stages - 1)  # a shift register: the read in flight
            known = Signal()
            sel = Signal(len(readable))
            m.d.comb += bus.arready.eq(~bus.rvalid & ~r_pending.any())
            m.d.sync += r_pending.eq(Cat(bus.arvalid & bus.arready, r_pending[:-1]))
            with m.If(bus.arvalid & bus.arready):
                addr = bus.araddr >> shift
                offsets = {reg.name: reg.offset >> shift for reg in self._regmap}
                m.d.sync += [
                    known.eq(Cat(addr == off for off in offsets.values()).any()),
                    sel.eq(Cat(addr == offsets[name] for name in readable)),
                ]
            values = list(readable.values())
            if self._read_stages == 2:
                rdata = mux_onehot(sel, values)
            else:
                # The multiplexer in two registered levels: each group of registers, then the
                # groups (their selects are zero but for the register read).
                parts = []
                for lo in range(0, len(values), _GROUP):
                    part = Signal(dw, name=f"rd_part{lo // _GROUP}")
                    with m.If(r_pending[-2]):
                        m.d.sync += part.eq(
                            mux_onehot(sel[lo : lo + _GROUP], values[lo : lo + _GROUP])
                        )
                    parts.append(part)
                rdata = reduce(operator.or_, parts)
            with m.If(r_pending[-1]):
                m.d.sync += [
                    bus.rvalid.eq(1),
                    bus.rresp.eq(Mux(known, OKAY, SLVERR)),
                    bus.rdata.eq(rdata),
                ]
        return m
