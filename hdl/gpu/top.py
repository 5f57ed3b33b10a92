"""The dirty tracker with its AXI4-Lite registers (:data:`~vmassist.formats.gpu.GPU_CSR`): the
block an SoC instantiates, and the one ``vmassist verilog --block gpu`` emits."""

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from vmassist.formats.gpu import GPU_CSR, GPU_ID, LOG_DEPTH, PAGE_BITS

from ..common.axil import AxiLiteSignature
from ..common.csr import CsrBlock
from .tracker import AwSnoopSignature, DirtyTracker

__all__ = ["GpuTracker"]


class _Head:
    """A one-entry holding register that software reads through a RO register and empties by
    writing a WO one. It takes the next element only once it is empty, so a read issued after
    the pop's response never sees the popped element again."""

    def __init__(self, m, name, src, pop, here, shape):
        self.valid = Signal(name=f"{name}_valid")
        self.payload = Signal(shape, name=f"{name}_payload")
        self.ready = ~self.valid
        with m.If(here & src.valid & self.ready):
            m.d.sync += [self.valid.eq(1), self.payload.eq(src.payload)]
        with m.Elif(pop):
            m.d.sync += self.valid.eq(0)


class GpuTracker(wiring.Component):
    """A :class:`~hdl.gpu.tracker.DirtyTracker` behind the registers of
    :data:`~vmassist.formats.gpu.GPU_CSR` (``docs/registers.md``).

    Software flips epochs through ``CTRL``, and takes the ended epoch's pages and the log
    either through ``DIRTY``/``LOG`` (read, then pop) or, with ``CONFIG.stream`` set, on the
    ``dirty`` and ``log`` streams (a DMA engine's input, say).

    Parameters
    ----------
    page_bits, aperture_bits, addr_width, log_depth, op_depth : int
        As :class:`~hdl.gpu.tracker.DirtyTracker`'s.

    Members
    -------
    aw : ``In(AwSnoopSignature(addr_width))``
        The snooped write-address channel.
    csr : ``In(AxiLiteSignature)``
        The registers, 64-bit.
    dirty, log : Out(stream.Signature)
        The read-out and the log, while ``CONFIG.stream`` is set.
    irq : Out(1)
        The log interrupt, when ``CONFIG.irq_en`` is set.
    """

    def __init__(
        self,
        *,
        page_bits: int = PAGE_BITS,
        aperture_bits: int = 28,
        addr_width: int = 32,
        log_depth: int = LOG_DEPTH,
        op_depth: int = 16,
    ):
        self._tracker = DirtyTracker(
            page_bits=page_bits,
            aperture_bits=aperture_bits,
            addr_width=addr_width,
            log_depth=log_depth,
            op_depth=op_depth,
        )
        t = self._tracker
        if log_depth >= 1 << 24:  # STATUS.log_level and CONFIG.threshold are 24 bits
            raise ValueError(f"log_depth must be below 2**24: {log_depth}")
        super().__init__(
            {
                "aw": In(AwSnoopSignature(addr_width)),
                "csr": In(AxiLiteSignature(addr_width=GPU_CSR.addr_width, data_width=64)),
                "dirty": Out(stream.Signature(range(t.pages))),
                "log": Out(stream.Signature(t.log_layout)),
                "irq": Out(1),
            }
        )

    @property
    def tracker(self) -> DirtyTracker:
        return self._tracker

    def elaborate(self, platform):
        m = Module()
        m.submodules.tracker = t = self._tracker
        m.submodules.csrs = csrs = CsrBlock(GPU_CSR, write_stages=2)
        wiring.connect(m, wiring.flipped(self.csr), csrs.bus)
        wiring.connect(m, wiring.flipped(self.aw), t.aw)

        cfg = csrs.rw["CONFIG"]
        fields = {f.name: cfg[f.offset : f.offset + f.width] for f in GPU_CSR["CONFIG"].fields}
        streamed = fields["stream"]
        m.d.comb += [
            t.log_threshold.eq(fields["threshold"]),
            self.irq.eq(fields["irq_en"] & t.irq),
        ]
        flip_stb, flip_data = csrs.wo["CTRL"]
        m.d.comb += t.flip.eq(flip_stb & flip_data[0])

        # The streams go out, or into the holding registers DIRTY and LOG.
        heads = {}
        for name, src, out in (("DIRTY", t.dirty, self.dirty), ("LOG", t.log, self.log)):
            head = _Head(
                m, name.lower(), src, csrs.wo[f"{name}_POP"][0], ~streamed, src.payload.shape()
            )
            heads[name] = head
            m.d.comb += [
                out.valid.eq(streamed & src.valid),
                out.payload.eq(src.payload),
                src.ready.eq(Mux(streamed, out.ready, head.ready)),
            ]
        log = data.View(t.log_layout, heads["LOG"].payload)

        def place(reg, **values):
            """The RO register's value: each field's signal at its offset."""
            word = Signal(64, name=f"ro_{reg.lower()}")
            for f in GPU_CSR[reg].fields:
                if f.name in values:
                    m.d.comb += word[f.offset : f.offset + f.width].eq(values[f.name])
            return word

        params = GPU_CSR["PARAMS"].pack(
            page_bits=t.page_bits,
            aperture_bits=t.aperture.bit_length() - 1,
            log_depth=t.log_depth,
        )
        ro = {
            "ID": GPU_ID,
            "PARAMS": params,
            "STATUS": place(
                "STATUS",
                epoch=t.epoch,
                flip_ready=t.flip_ready,
                readout_done=t.flip_ready & ~heads["DIRTY"].valid,
                overflow=t.readout_overflow,
                irq=t.irq,
                log_level=t.log_level,
            ),
            "DIRTY": place("DIRTY", page=heads["DIRTY"].payload, valid=heads["DIRTY"].valid),
            "LOG": place("LOG", page=log.page, epoch=log.epoch, valid=heads["LOG"].valid),
            **{name: getattr(t, name.lower()) for name in _COUNTER_REGS},
        }
        for name, value in ro.items():
            m.d.comb += csrs.ro[name].eq(value)
        return m


#: The counter registers, named as the tracker's counter ports (upper case).
_COUNTER_REGS = tuple(name.upper() for name in DirtyTracker.COUNTERS)
