"""The dirty tracker on an AXI4 write channel: what a testbench (or an SoC) wires it into."""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .top import GpuTracker
from .tracker import DirtyTracker

__all__ = ["AxiWriteSignature", "TrackedWrites"]


class AxiWriteSignature(wiring.Signature):
    """An AXI4 write channel (AW, W, B) from the master's side."""

    def __init__(self, *, addr_width: int, data_width: int, id_width: int):
        super().__init__(
            {
                "awid": Out(id_width),
                "awaddr": Out(addr_width),
                "awlen": Out(8),
                "awsize": Out(3),
                "awburst": Out(2),
                "awvalid": Out(1),
                "awready": In(1),
                "wdata": Out(data_width),
                "wstrb": Out(data_width // 8),
                "wlast": Out(1),
                "wvalid": Out(1),
                "wready": In(1),
                "bid": In(id_width),
                "bresp": In(2),
                "bvalid": In(1),
                "bready": Out(1),
            }
        )


class TrackedWrites(wiring.Component):
    """An AXI4 write channel passed from ``s_axi`` (a master) to ``m_axi`` (a memory) untouched,
    with a :class:`~hdl.gpu.top.GpuTracker` snooping its AW handshakes; the tracker's other
    ports are this component's, and ``epoch`` (the current epoch's parity) shows a testbench
    which epoch each AW lands in. Parameters as :class:`~hdl.gpu.top.GpuTracker`'s, and the
    channel's ``data_width`` and ``id_width``."""

    def __init__(self, *, data_width: int = 64, id_width: int = 4, **tracker):
        self._top = GpuTracker(**tracker)
        t = self._top.tracker
        sig = AxiWriteSignature(
            addr_width=t.addr_width,
            data_width=data_width,
            id_width=id_width,
        )
        super().__init__(
            {
                "s_axi": In(sig),
                "m_axi": Out(sig),
                "csr": In(self._top.csr.signature.flip()),
                "dirty": Out(self._top.dirty.signature),
                "log": Out(self._top.log.signature),
                "irq": Out(1),
                "epoch": Out(1),
            }
        )

    @property
    def tracker(self) -> DirtyTracker:
        return self._top.tracker

    def elaborate(self, platform):
        m = Module()
        m.submodules.top = top = self._top
        s, d = self.s_axi, self.m_axi
        for name, member in s.signature.members.items():
            src, dst = (s, d) if member.flow == In else (d, s)
            m.d.comb += getattr(dst, name).eq(getattr(src, name))
        for name in top.aw.signature.members:
            m.d.comb += getattr(top.aw, name).eq(getattr(d if name == "awready" else s, name))
        wiring.connect(m, wiring.flipped(self.csr), top.csr)
        wiring.connect(m, wiring.flipped(self.dirty), top.dirty)
        wiring.connect(m, wiring.flipped(self.log), top.log)
        m.d.comb += [self.irq.eq(top.irq), self.epoch.eq(top.tracker.epoch)]
        return m
