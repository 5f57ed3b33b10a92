"""A register slice for a stream: every signal across it, both ways, leaves a flip-flop."""

from amaranth import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .params import require_shape

__all__ = ["StreamRegister"]


class StreamRegister(wiring.Component):
    """A two-word skid buffer: ``o.valid`` and ``o.payload`` are registers, and so is
    ``i.ready``, so no combinational path crosses it in either direction (as Corundum's
    ``axis_register`` in its skid-buffer mode). One word per cycle while ``o.ready`` is held;
    a word taken on ``i`` is on ``o`` the next cycle.

    Parameters
    ----------
    shape : shape-castable
        Shape of one word.

    Members
    -------
    i : ``In(stream.Signature(shape))``
    o : ``Out(stream.Signature(shape))``

    Raises
    ------
    TypeError
        ``shape`` is not shape-castable.
    """

    def __init__(self, shape):
        require_shape(self, shape)
        self._shape = shape
        sig = stream.Signature(shape)
        super().__init__({"i": In(sig), "o": Out(sig)})

    @property
    def shape(self):
        return self._shape

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        # The skid word: taken on ``i`` while ``o`` was stalled; ``i.ready`` is its absence.
        skid_valid = Signal()
        skid = Signal(self._shape)
        m.d.comb += i.ready.eq(~skid_valid)
        with m.If(o.ready | ~o.valid):
            m.d.sync += [
                o.valid.eq(i.valid | skid_valid),
                o.payload.eq(Mux(skid_valid, skid, i.payload)),
                skid_valid.eq(0),
            ]
        with m.Elif(i.valid & ~skid_valid):
            m.d.sync += [skid_valid.eq(1), skid.eq(i.payload)]
        return m
