"""A FIFO in distributed RAM for a writer that never waits: it holds a credit for every word."""

from amaranth import Module, Mux, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .params import require, require_shape
from .replica import replicas

__all__ = ["CreditFifo", "Credits"]

#: Bits of a word per RAM column; each column has its own pointer registers.
COLUMN = 64


class CreditFifo(wiring.Component):
    """``depth`` words of ``shape``, first-word-fall-through, for a writer that knows there is
    room (it admits no more than ``depth`` words that have not left on ``r``, as credits do).

    Nothing decoded reaches the RAM's cells, so the FIFO can be wide (a parsed header) and still
    run at the speed of a register-to-register path:

    * The RAM is written every cycle, at the write pointer, with or without ``w_en``: the word
      there is free (past every stored word), and a word that is kept moves the pointer past it.
      So the write enable is constant and the write address a register.
    * The RAM is cut into columns of :data:`COLUMN` bits, and each column has its own copy of
      both pointers, so no pointer fans out to more than one column's cells. Copy ``k`` counts
      from ``k`` (its column keeps word ``s`` at row ``s + k``), which keeps synthesis from
      merging the copies. Each column also works out the read (``r.ready`` taken) itself, from
      copies of the FIFO's flags, so no one net carries it to every column.
    * ``r.payload`` is a register, loaded from the RAM's asynchronous read.

    Parameters
    ----------
    shape : shape-castable
        Shape of one word.
    depth : int
        Words, the output register included: 2 to 16, so that each column is one
        distributed-RAM cell deep.

    Members
    -------
    w_en, w_data : In
        Store ``w_data``; the writer must hold a credit for it (at most ``depth`` words between
        ``w_en`` and their transfer on ``r``). A word written while the FIFO is full is lost
        and may corrupt another: the writer's credits are the only guard.
    r : ``Out(stream.Signature(shape))``
        The words in order; ``valid`` and ``payload`` are registers. A word written in cycle
        ``t`` is on ``r`` from cycle ``t + 2`` if the FIFO was empty.

    Raises
    ------
    TypeError
        ``shape`` is not shape-castable.
    ValueError
        ``depth`` is out of range.
    """

    #: Cycles from ``w_en`` to the word on ``r``, the FIFO empty.
    LATENCY = 2

    def __init__(self, shape, depth: int):
        require_shape(self, shape)
        require(
            self,
            isinstance(depth, int) and not isinstance(depth, bool) and 2 <= depth <= 16,
            ValueError(f"depth must be an integer from 2 to 16, not {depth!r}"),
        )
        self._shape = shape
        self._depth = depth
        super().__init__({"w_en": In(1), "w_data": In(shape), "r": Out(stream.Signature(shape))})

    @property
    def shape(self):
        return self._shape

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        bits = Shape.cast(self._shape).width
        abits = (depth - 1).bit_length()

        # The RAM holds the words not yet loaded into ``r``'s register: ``held`` of them, and
        # ``some`` == ``held != 0``, ``one`` == ``held == 1`` as registers, so that the load
        # decision is one LUT of registers.
        held = Signal(range(depth + 1))
        some, one = Signal(), Signal()
        load = Signal()
        m.d.comb += load.eq(some & (~self.r.valid | self.r.ready))
        up, down = self.w_en & ~load, load & ~self.w_en
        # The sums from the register, then picked: ``load`` is late (``r.ready``).
        m.d.sync += held.eq(Mux(up, held + 1, Mux(down, held - 1, held)))
        some_next = Mux(up, 1, Mux(down, ~one, some))
        valid_next = Mux(load, 1, Mux(self.r.ready, 0, self.r.valid))
        m.d.sync += [
            some.eq(some_next),
            one.eq(Mux(up, ~some, Mux(down, held == 2, one))),
            self.r.valid.eq(valid_next),
        ]
        # Each column works out ``load`` for itself, from copies of ``some`` and ``r.valid`` of
        # its own, so that only ``r.ready`` travels to the columns, and the load of each
        # column's pointer and output register is a LUT by them rather than one net across
        # every column.
        cols = -(-bits // COLUMN)
        some_c = replicas(m, platform, some_next, cols, name="some")
        valid_c = replicas(m, platform, valid_next, cols, name="valid")

        data = Signal(bits)
        m.d.comb += data.eq(self.w_data)
        out = Signal(bits)
        m.d.comb += self.r.payload.eq(out)
        for k, lo in enumerate(range(0, bits, COLUMN)):
            hi = min(lo + COLUMN, bits)
            mem = Memory(
                shape=hi - lo, depth=1 << abits, init=[], attrs={"ram_style": "distributed"}
            )
            m.submodules[f"col{k}"] = mem
            wr = mem.write_port()
            rd = mem.read_port(domain="comb")
            w_ptr = Signal(abits, init=k % (1 << abits), name=f"w_ptr{k}")
            r_ptr = Signal(abits, init=k % (1 << abits), name=f"r_ptr{k}")
            col_load = Signal(name=f"load{k}")
            m.d.comb += col_load.eq(some_c[k] & (~valid_c[k] | self.r.ready))
            m.d.sync += [w_ptr.eq(w_ptr + self.w_en), r_ptr.eq(r_ptr + col_load)]
            m.d.comb += [
                wr.en.eq(1),
                wr.addr.eq(w_ptr),
                wr.data.eq(data[lo:hi]),
                rd.addr.eq(r_ptr),
            ]
            with m.If(col_load):
                m.d.sync += out[lo:hi].eq(rd.data)
        return m


class Credits:
    """Room for ``depth`` words in a queue (a :class:`CreditFifo` and the stages before it),
    taken by ``push`` and given back by ``pop``, with the room as registers.

    ``some`` (``free > 0``) admits a word pushed in the cycle it is read. ``two`` (``free >= 2``)
    admits one whose push comes a cycle later (the NIC admits a frame at its last beat and
    pushes it the cycle after): there is room for it whether or not the word before is being
    pushed in the same cycle. Both are flip-flops, not compares of a sum, as they gate
    handshakes and aborts. Their next values are picked by ``push`` and ``pop`` from the flags
    and a compare of ``free``.
    """

    def __init__(self, m: Module, name: str, depth: int, push, pop):
        self.free = Signal(range(depth + 1), init=depth, name=f"{name}_free")
        m.d.sync += self.free.eq(self.free - push + pop)
        self.some = Signal(init=depth > 0, name=f"{name}_some")  # free > 0
        self.two = Signal(init=depth > 1, name=f"{name}_two")  # free > 1
        three = self.free > 2
        up, down = pop & ~push, push & ~pop
        m.d.sync += [
            self.some.eq(Mux(up, 1, Mux(down, self.two, self.some))),
            self.two.eq(Mux(up, self.some, Mux(down, three, self.two))),
        ]
