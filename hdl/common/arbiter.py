"""A round-robin arbiter that merges frame streams without interleaving their beats."""

from amaranth import Module, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .axis import FrameBeat
from .params import require

__all__ = ["FrameArbiter"]


class FrameArbiter(wiring.Component):
    """Merges ``n`` frame streams into one, a whole frame at a time, round-robin.

    Between frames the grant goes to the first valid input after the one that sent the last
    frame (cyclically; input 0 first after reset), so an input that keeps offering frames cannot
    starve another. Once a beat is offered the grant is held until that input's ``last`` beat
    transfers, so beats of two frames never interleave and the output payload stays stable
    while stalled, as the stream rules require.

    The data path is combinational (a multiplexer, no register, no added latency): a beat
    offered on the granted input is on ``o`` in the same cycle, one beat per cycle, with no
    bubble between back-to-back frames. ``o.valid`` and ``o.payload`` depend on the inputs'
    ``valid`` and ``payload``; each input's ``ready`` on ``o.ready`` and the inputs' ``valid``.
    Put a register slice after it where timing needs one.

    Parameters
    ----------
    layout : shape-castable
        Shape of one data word.
    n : int
        Number of inputs, at least 1.

    Members
    -------
    i : ``In(stream.Signature(FrameBeat(layout))).array(n)``
        The inputs.
    o : ``Out(stream.Signature(FrameBeat(layout)))``
        The merged frames.
    src : ``Out(range(n))``
        The input ``o``'s beat comes from; meaningful while ``o.valid``.

    Raises
    ------
    TypeError
        ``layout`` is not shape-castable.
    ValueError
        ``n`` is not a positive integer.
    """

    def __init__(self, layout, n: int):
        try:
            Shape.cast(layout)
        except TypeError as e:
            require(self, False, TypeError(f"layout must be shape-castable, not {layout!r}: {e}"))
        require(
            self,
            isinstance(n, int) and not isinstance(n, bool) and n >= 1,
            ValueError(f"n must be a positive integer, not {n!r}"),
        )
        self._layout = layout
        self._n = n
        sig = stream.Signature(FrameBeat(layout))
        super().__init__({"i": In(sig).array(n), "o": Out(sig), "src": Out(range(n))})

    @property
    def layout(self):
        return self._layout

    @property
    def n(self) -> int:
        return self._n

    def elaborate(self, platform):
        m = Module()
        n = self._n

        locked = Signal()  # a frame has been offered and its last beat has not transferred
        sel = Signal(range(n))  # the input holding the grant while locked
        prev = Signal(range(n), init=n - 1)  # the input that sent the last whole frame

        # Round-robin pick: the first valid input after `prev`. Later assignments win, so the
        # candidates are listed from the lowest priority (`prev` itself) to the highest.
        pick = Signal(range(n))
        with m.Switch(prev):
            for p in range(n):
                with m.Case(p):
                    for off in range(n, 0, -1):
                        j = (p + off) % n
                        with m.If(self.i[j].valid):
                            m.d.comb += pick.eq(j)

        cur = Signal(range(n))
        with m.If(locked):
            m.d.comb += cur.eq(sel)
        with m.Else():
            m.d.comb += cur.eq(pick)

        m.d.comb += self.src.eq(cur)
        with m.Switch(cur):
            for k in range(n):
                with m.Case(k):
                    m.d.comb += [
                        self.o.valid.eq(self.i[k].valid),
                        self.o.payload.eq(self.i[k].payload),
                        self.i[k].ready.eq(self.o.ready),
                    ]

        with m.If(self.o.valid):
            with m.If(self.o.ready & self.o.payload.last):
                m.d.sync += [locked.eq(0), prev.eq(cur)]
            with m.Else():
                # Lock on the first offer, not the first transfer: a stalled output must keep
                # its payload even if a higher-priority input becomes valid meanwhile.
                m.d.sync += [locked.eq(1), sel.eq(cur)]
        return m
