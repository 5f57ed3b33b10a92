"""The dirty tracker on an AXI4 write channel: what a testbench (or an SoC) wires it into."""

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

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
    with a :class:`DirtyTracker` snooping its AW handshakes; the tracker's other ports are
    this component's. Parameters as :class:`DirtyTracker`'s, and the channel's ``data_width``
    and ``id_width``."""

    def __init__(self, *, data_width: int = 64, id_width: int = 4, **tracker):
        self._tracker = DirtyTracker(**tracker)
        t = self._tracker
        sig = AxiWriteSignature(
            addr_width=t.addr_width,
            data_width=data_width,
            id_width=id_width,
        )
        super().__init__(
            {
                "s_axi": In(sig),
                "m_axi": Out(sig),
                "flip": In(1),
                "flip_ready": Out(1),
                "epoch": Out(1),
                "dirty": Out(stream.Signature(range(t.pages))),
                "readout_overflow": Out(1),
                "log": Out(stream.Signature(t.log_layout)),
                "log_level": Out(range(t.log_depth + 1)),
                "log_threshold": In(range(t.log_depth + 1)),
                "irq": Out(1),
                **{name: Out(32) for name in DirtyTracker.COUNTERS},
            }
        )

    @property
    def tracker(self) -> DirtyTracker:
        return self._tracker

    def elaborate(self, platform):
        m = Module()
        m.submodules.tracker = t = self._tracker
        s, d = self.s_axi, self.m_axi
        for name, member in s.signature.members.items():
            src, dst = (s, d) if member.flow == In else (d, s)
            m.d.comb += getattr(dst, name).eq(getattr(src, name))
        for name in t.aw.signature.members:
            m.d.comb += getattr(t.aw, name).eq(getattr(d if name == "awready" else s, name))
        wiring.connect(m, wiring.flipped(self.dirty), t.dirty)
        wiring.connect(m, wiring.flipped(self.log), t.log)
        m.d.comb += [
            t.flip.eq(self.flip),
            self.flip_ready.eq(t.flip_ready),
            self.epoch.eq(t.epoch),
            self.readout_overflow.eq(t.readout_overflow),
            self.log_level.eq(t.log_level),
            t.log_threshold.eq(self.log_threshold),
            self.irq.eq(t.irq),
            *(getattr(self, n).eq(getattr(t, n)) for n in DirtyTracker.COUNTERS),
        ]
        return m
