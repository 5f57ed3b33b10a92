"""An AXI4-Lite register block rendered from a :class:`~vmassist.formats.csr.RegisterMap`."""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from vmassist.formats.csr import Access, RegisterMap

from .axil import AxiLiteSignature
from .bits import mux_onehot

__all__ = ["CsrBlock"]

OKAY, SLVERR = 0b00, 0b10


class CsrBlock(wiring.Component):
    """AXI4-Lite slave holding the registers of ``regmap``.

    RW registers are held here and honour ``wstrb``; RO registers read signals the parent
    drives; a write to a WO register pulses its strobe for one cycle with the written data.
    An address that names no register answers SLVERR.

    Parameters
    ----------
    regmap : RegisterMap
    read_stages : int
        1 (default): the read data is registered from the address in one cycle. 2: the
        address decode is registered first (R answers a cycle later), for a block with so many
        registers that decoding and multiplexing them in one cycle is too slow.

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

    def __init__(self, regmap: RegisterMap, *, read_stages: int = 1):
        if not isinstance(regmap, RegisterMap):
            raise TypeError(f"regmap must be a RegisterMap, not {regmap!r}")
        if read_stages not in (1, 2):
            raise ValueError(f"read_stages must be 1 or 2, not {read_stages!r}")
        self._regmap = regmap
        self._read_stages = read_stages
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
        take_w = bus.awvalid & bus.wvalid & ~bus.bvalid
        m.d.comb += [bus.awready.eq(take_w), bus.wready.eq(take_w)]
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += bus.bvalid.eq(0)
        with m.If(take_w):
            m.d.sync += [bus.bvalid.eq(1), bus.bresp.eq(SLVERR)]
            with m.Switch(bus.awaddr >> shift):
                for reg in self._regmap:
                    with m.Case(reg.offset >> shift):
                        m.d.sync += bus.bresp.eq(OKAY)
                        if reg.access is Access.RW:
                            sig = self.rw[reg.name]
                            for lane in range(dw // 8):
                                with m.If(bus.wstrb[lane]):
                                    m.d.sync += sig[lane * 8 : lane * 8 + 8].eq(
                                        bus.wdata[lane * 8 : lane * 8 + 8]
                                    )
                        elif reg.access is Access.WO:
                            stb, data_ = self.wo[reg.name]
                            m.d.sync += [stb.eq(1), data_.eq(bus.wdata)]

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
            # in the cycle AR is taken; the next cycle multiplexes with that select.
            pending = Signal()
            known = Signal()
            sel = Signal(len(readable))
            m.d.comb += bus.arready.eq(~bus.rvalid & ~pending)
            with m.If(bus.arvalid & bus.arready):
                addr = bus.araddr >> shift
                offsets = {reg.name: reg.offset >> shift for reg in self._regmap}
                m.d.sync += [
                    pending.eq(1),
                    known.eq(Cat(addr == off for off in offsets.values()).any()),
                    sel.eq(Cat(addr == offsets[name] for name in readable)),
                ]
            with m.If(pending):
                m.d.sync += [
                    pending.eq(0),
                    bus.rvalid.eq(1),
                    bus.rresp.eq(Mux(known, OKAY, SLVERR)),
                    bus.rdata.eq(mux_onehot(sel, list(readable.values()))),
                ]
        return m
