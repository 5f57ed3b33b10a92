"""An AXI4-Lite register block rendered from a :class:`~vmassist.formats.csr.RegisterMap`."""

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from vmassist.formats.csr import Access, RegisterMap

from .axil import AxiLiteSignature

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

    def __init__(self, regmap: RegisterMap):
        if not isinstance(regmap, RegisterMap):
            raise TypeError(f"regmap must be a RegisterMap, not {regmap!r}")
        self._regmap = regmap
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
        m.d.comb += bus.arready.eq(~bus.rvalid)
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        with m.If(bus.arvalid & ~bus.rvalid):
            m.d.sync += [bus.rvalid.eq(1), bus.rresp.eq(SLVERR), bus.rdata.eq(0)]
            with m.Switch(bus.araddr >> shift):
                for reg in self._regmap:
                    with m.Case(reg.offset >> shift):
                        m.d.sync += bus.rresp.eq(OKAY)
                        if reg.access is Access.RW:
                            m.d.sync += bus.rdata.eq(self.rw[reg.name])
                        elif reg.access is Access.RO:
                            m.d.sync += bus.rdata.eq(self.ro[reg.name])
        return m
