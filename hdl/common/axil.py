"""AXI4-Lite: the bus signature and a single-outstanding master with a simple command port."""

from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .fsm import OneHotFSM

__all__ = ["AxiLiteSignature", "AxiLiteMaster", "MemCmd", "MemResp"]


class AxiLiteSignature(wiring.Signature):
    """AXI4-Lite, seen from the master. Member names match cocotbext-axi's ``AxiLiteBus``.

    Parameters
    ----------
    addr_width : int
    data_width : int
        32 or 64.
    """

    def __init__(self, *, addr_width: int, data_width: int):
        if not isinstance(addr_width, int) or addr_width < 1:
            raise TypeError(f"addr_width must be a positive integer, not {addr_width!r}")
        if data_width not in (32, 64):
            raise ValueError(f"data_width must be 32 or 64, not {data_width!r}")
        self.addr_width = addr_width
        self.data_width = data_width
        super().__init__(
            {
                "awaddr": Out(addr_width),
                "awprot": Out(3),
                "awvalid": Out(1),
                "awready": In(1),
                "wdata": Out(data_width),
                "wstrb": Out(data_width // 8),
                "wvalid": Out(1),
                "wready": In(1),
                "bresp": In(2),
                "bvalid": In(1),
                "bready": Out(1),
                "araddr": Out(addr_width),
                "arprot": Out(3),
                "arvalid": Out(1),
                "arready": In(1),
                "rdata": In(data_width),
                "rresp": In(2),
                "rvalid": In(1),
                "rready": Out(1),
            }
        )

    def __eq__(self, other):
        return (
            isinstance(other, AxiLiteSignature)
            and other.addr_width == self.addr_width
            and other.data_width == self.data_width
        )

    def __repr__(self):
        return f"AxiLiteSignature(addr_width={self.addr_width}, data_width={self.data_width})"


def MemCmd(addr_width: int, data_width: int = 64) -> data.StructLayout:
    """A memory command: a full-width read, or a full-width write of ``wdata``."""
    return data.StructLayout({"addr": addr_width, "we": 1, "wdata": data_width})


def MemResp(data_width: int = 64) -> data.StructLayout:
    """The answer to one :func:`MemCmd`: read data (meaningless for a write) and a bus-error
    flag."""
    return data.StructLayout({"rdata": data_width, "err": 1})


class AxiLiteMaster(wiring.Component):
    """Turns a command stream into AXI4-Lite transactions, one outstanding at a time.

    Addresses are aligned down to the bus width; writes use every byte strobe. Any latency and
    back-pressure on any channel is tolerated; AW and W are offered together and each is dropped
    once accepted, as the protocol allows. ``araddr`` and ``awaddr`` are one register, loaded
    (with ``wdata``) in every idle cycle.

    Attributes
    ----------
    fsm : OneHotFSM
        The transaction state machine (states IDLE, READ, RDATA, WRITE, BRESP), set by
        ``elaborate``, for formal harnesses.

    Members
    -------
    cmd : ``In(stream.Signature(MemCmd))``
    resp : ``Out(stream.Signature(MemResp))``
    bus : ``Out(AxiLiteSignature)``
    """

    def __init__(self, *, addr_width: int, data_width: int = 64):
        self._aw = addr_width
        self._dw = data_width
        super().__init__(
            {
                "cmd": In(stream.Signature(MemCmd(addr_width, data_width))),
                "resp": Out(stream.Signature(MemResp(data_width))),
                "bus": Out(AxiLiteSignature(addr_width=addr_width, data_width=data_width)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        align = ~((self._dw // 8) - 1)
        aw_done = Signal()
        w_done = Signal()

        # One address register serves AR and AW. It and the write data are loaded in every idle
        # cycle, whether or not a command comes: their enable is then the state alone, not the
        # command's valid, which is the end of the requester's decision logic.
        addr = Signal(self._aw)
        m.d.comb += [
            bus.wstrb.eq(-1),
            bus.awprot.eq(0),
            bus.arprot.eq(0),
            bus.awaddr.eq(addr),
            bus.araddr.eq(addr),
        ]
        # One-hot: "idle" is one flip-flop, which is both the command's ready and the enable of
        # the address and data registers. The read data is passed on in every state (``valid``
        # qualifies it), so nothing but the bus lies between it and the requester's decoding.
        self.fsm = fsm = OneHotFSM(m, ("IDLE", "READ", "RDATA", "WRITE", "BRESP"), name="axi")
        m.d.comb += self.resp.payload.rdata.eq(bus.rdata)
        with fsm.State("IDLE"):
            m.d.comb += self.cmd.ready.eq(1)
            m.d.sync += [
                addr.eq(self.cmd.payload.addr & align),
                bus.wdata.eq(self.cmd.payload.wdata),
                aw_done.eq(0),
                w_done.eq(0),
            ]
            with m.If(self.cmd.valid):
                with m.If(self.cmd.payload.we):
                    fsm.next = "WRITE"
                with m.Else():
                    fsm.next = "READ"
        with fsm.State("READ"):
            m.d.comb += bus.arvalid.eq(1)
            with m.If(bus.arready):
                fsm.next = "RDATA"
        with fsm.State("RDATA"):
            # The response passes straight through: no extra cycle per memory reference.
            m.d.comb += [
                self.resp.valid.eq(bus.rvalid),
                bus.rready.eq(self.resp.ready),
                self.resp.payload.rdata.eq(bus.rdata),
                self.resp.payload.err.eq(bus.rresp[1]),
            ]
            with m.If(bus.rvalid & self.resp.ready):
                fsm.next = "IDLE"
        with fsm.State("WRITE"):
            m.d.comb += [bus.awvalid.eq(~aw_done), bus.wvalid.eq(~w_done)]
            with m.If(bus.awready):
                m.d.sync += aw_done.eq(1)
            with m.If(bus.wready):
                m.d.sync += w_done.eq(1)
            with m.If((aw_done | bus.awready) & (w_done | bus.wready)):
                fsm.next = "BRESP"
        with fsm.State("BRESP"):
            m.d.comb += [
                self.resp.valid.eq(bus.bvalid),
                bus.bready.eq(self.resp.ready),
                self.resp.payload.err.eq(bus.bresp[1]),
            ]
            with m.If(bus.bvalid & self.resp.ready):
                fsm.next = "IDLE"
        return m
