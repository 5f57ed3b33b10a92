"""A store-and-forward frame FIFO: a reader only ever sees whole frames."""

from types import SimpleNamespace

from amaranth import Module, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .axis import FrameBeat
from .params import require

__all__ = ["PacketFifo"]


class PacketFifo(wiring.Component):
    """Frames in, whole frames out, stored in one :class:`~amaranth.lib.memory.Memory` of
    ``depth`` words (one block RAM for any sensible width).

    Write side: a writer never waits. Each beat goes to the tentative write pointer; the beat
    with ``w_last`` commits the frame, which the reader can see from the cycle after next. A
    beat that finds the memory full (``level == depth`` at the start of its cycle) marks its
    frame overflowed: the rest of the frame is ignored and at its ``w_last`` the tentative
    pointer rolls back to the last commit, so no beat of it is ever read. A frame of more than
    ``depth`` beats therefore never fits; one of ``depth`` beats fits in an empty FIFO.

    Read side: first-word-fall-through, one beat per cycle while ``r.ready`` is held. The
    payload comes straight from the memory's synchronous read port, ``r.valid`` from a
    register; neither depends combinationally on ``r.ready`` (the read port's enable does).

    Parameters
    ----------
    shape : shape-castable
        Shape of one data word.
    depth : int
        Words of memory; a power of two, at least 2.

    Members
    -------
    w_valid, w_data, w_last : In
        A beat of the frame being written; ``w_data`` has ``shape``.
    w_abort : In
        Discard the frame being written (back to the last commit, no pulse), including a beat
        offered in the same cycle. Harmless between frames.
    committed : Out
        One-cycle pulse, the cycle after a ``w_last`` beat that committed its frame.
    overflow : Out
        One-cycle pulse, the cycle after the ``w_last`` beat of an overflowed frame.
    r : ``Out(stream.Signature(FrameBeat(shape)))``
        The frames, each whole, in the order they were committed.
    level : Out
        Memory words in use, the frame being written included; a beat offered while
        ``level == depth`` overflows its frame. The beat waiting on ``r`` is not counted: it
        has left the memory.
    frames : Out
        Committed frames not yet fully read, the one on ``r`` included (up to ``depth + 1``).

    Attributes
    ----------
    probe : SimpleNamespace
        Set by ``elaborate``, for formal harnesses: the pointers ``wr_ptr``, ``commit_ptr`` and
        ``rd_ptr`` (one bit wider than an address), ``dropping``, and ``words``, the memory's
        words by address, which only the ``"formal"`` platform reads out (through asynchronous
        read ports, so that invariants can speak of the contents); empty otherwise.

    Raises
    ------
    TypeError
        ``shape`` is not shape-castable.
    ValueError
        ``depth`` is not a power of two of at least 2.
    """

    def __init__(self, shape, depth: int):
        try:
            Shape.cast(shape)
        except TypeError as e:
            require(self, False, TypeError(f"shape must be shape-castable, not {shape!r}: {e}"))
        require(
            self,
            isinstance(depth, int) and depth >= 2 and not depth & (depth - 1),
            ValueError(f"depth must be a power of two of at least 2, not {depth!r}"),
        )
        self._shape = shape
        self._depth = depth
        super().__init__(
            {
                "w_valid": In(1),
                "w_data": In(shape),
                "w_last": In(1),
                "w_abort": In(1),
                "committed": Out(1),
                "overflow": Out(1),
                "r": Out(stream.Signature(FrameBeat(shape))),
                "level": Out(range(depth + 1)),
                "frames": Out(range(depth + 2)),
            }
        )

    @property
    def shape(self):
        return self._shape

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        abits = (depth - 1).bit_length()

        m.submodules.mem = mem = Memory(shape=FrameBeat(self._shape), depth=depth, init=[])
        wport = mem.write_port()
        rport = mem.read_port()

        # Pointers carry one bit more than the address so that full and empty differ.
        wr_ptr = Signal(abits + 1)  # tentative: next word of the frame being written
        commit_ptr = Signal(abits + 1)  # end of the last committed frame
        rd_ptr = Signal(abits + 1)  # next word to fetch into the read port
        dropping = Signal()  # the frame being written has overflowed
        commit = Signal()  # this cycle's beat commits its frame

        m.d.comb += self.level.eq(wr_ptr - rd_ptr)
        full = self.level == depth

        # Write side.
        m.d.comb += [
            wport.addr.eq(wr_ptr[:abits]),
            wport.data.data.eq(self.w_data),
            wport.data.last.eq(self.w_last),
        ]
        m.d.sync += [self.committed.eq(0), self.overflow.eq(0)]
        with m.If(self.w_abort):
            m.d.sync += [wr_ptr.eq(commit_ptr), dropping.eq(0)]
        with m.Elif(self.w_valid):
            with m.If(dropping | full):
                with m.If(self.w_last):
                    m.d.sync += [wr_ptr.eq(commit_ptr), dropping.eq(0), self.overflow.eq(1)]
                with m.Else():
                    m.d.sync += dropping.eq(1)
            with m.Else():
                m.d.comb += wport.en.eq(1)
                m.d.sync += wr_ptr.eq(wr_ptr + 1)
                with m.If(self.w_last):
                    m.d.comb += commit.eq(1)
                    m.d.sync += [commit_ptr.eq(wr_ptr + 1), self.committed.eq(1)]

        # Read side: the read port's data register is the output register. It is refilled when
        # empty or being emptied, and its enable is low otherwise, so the payload holds while
        # the consumer stalls. Only committed words are fetched, so a reader never reaches the
        # frame being written (nor a word in the same cycle as it is written).
        fetch = (~self.r.valid | self.r.ready) & (rd_ptr != commit_ptr)
        m.d.comb += [
            rport.addr.eq(rd_ptr[:abits]),
            rport.en.eq(fetch),
            self.r.payload.eq(rport.data),
        ]
        with m.If(fetch):
            m.d.sync += [rd_ptr.eq(rd_ptr + 1), self.r.valid.eq(1)]
        with m.Elif(self.r.ready):
            m.d.sync += self.r.valid.eq(0)

        # Counted from the cycle its commit takes effect, as `committed` pulses.
        frame_out = self.r.valid & self.r.ready & self.r.payload.last
        with m.If(commit & ~frame_out):
            m.d.sync += self.frames.eq(self.frames + 1)
        with m.Elif(frame_out & ~commit):
            m.d.sync += self.frames.eq(self.frames - 1)

        # For formal harnesses; only the formal platform adds the read ports, so the synthesised
        # memory keeps one write and one read port.
        words = []
        if platform == "formal":
            for addr in range(depth):
                port = mem.read_port(domain="comb")
                m.d.comb += port.addr.eq(addr)
                words.append(port.data)
        self.probe = SimpleNamespace(
            wr_ptr=wr_ptr, commit_ptr=commit_ptr, rd_ptr=rd_ptr, dropping=dropping, words=words
        )
        return m
