"""A simple dual-port RAM with a registered read: block RAM with its output register."""

from types import SimpleNamespace

from amaranth import ClockSignal, Const, Module, Shape, Signal
from amaranth.hdl import Instance
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .params import require, require_shape

__all__ = ["PipelinedRam", "dp16kd_mode", "formal_words"]

#: ECP5 DP16KD aspect ratios: data width -> (words, lowest address pin used).
_DP16KD_MODES = {18: (1024, 4), 9: (2048, 3), 4: (4096, 2), 2: (8192, 1), 1: (16384, 0)}


def dp16kd_mode(depth: int) -> tuple[int, int]:
    """The widest DP16KD data width that holds ``depth`` words, and the lowest address pin that
    mode uses (the pins below it are 0, or the byte enables at width 18)."""
    for width, (words, low) in _DP16KD_MODES.items():
        if depth <= words:
            return width, low
    raise ValueError(f"a DP16KD holds at most 16384 words, not {depth}")


def formal_words(m: Module, mem: Memory, platform) -> list:
    """``mem``'s words by address, read through asynchronous read ports, so that formal
    invariants can speak of the contents; only the ``"formal"`` platform adds the ports (a
    synthesised memory keeps the ports its design gave it), so the list is empty otherwise."""
    if platform != "formal":
        return []
    words = []
    for addr in range(mem.depth):
        port = mem.read_port(domain="comb")
        m.d.comb += port.addr.eq(addr)
        words.append(port.data)
    return words


def _is_ecp5(platform) -> bool:
    return getattr(platform, "family", None) == "ecp5"


class PipelinedRam(wiring.Component):
    """``depth`` words of ``shape``, one write port and one read port with two registers.

    The read is FPGA block RAM with its output register switched on: ``r_en`` loads the RAM's
    read latch with the word at ``r_addr``, ``r_oe`` loads the output register ``r_data`` from
    the latch (its value before the same edge). With both held high a word is on ``r_data`` two
    cycles after its address. A block RAM's output leaves its clock edge late (5.8 ns on ECP5
    speed grade 6, against 1.0 ns from its output register), so any logic after an unregistered
    block RAM read costs a clock at 156 MHz.

    A read of the address written in the same cycle is undefined (as for block RAM's two ports);
    the caller never does one.

    Built from :class:`~amaranth.lib.memory.Memory` plus a register, except for a platform whose
    ``family`` is ``"ecp5"`` (as :class:`amaranth.vendor.LatticePlatform` and
    ``vmassist.synth`` pass), where DP16KD primitives are instantiated with ``REGMODE = OUTREG``
    (yosys never infers it): one per ``dp16kd_mode(depth)[0]`` bits of the word.

    Parameters
    ----------
    shape : shape-castable
        Shape of one word.
    depth : int
        Words, 2 to 16384.
    copies : int
        The write enable and the two addresses come in this many copies, which must be equal:
        on ECP5 block RAM ``k`` (of :meth:`columns`) takes copy ``k % copies``, so that each
        copy can be a register next to its block RAMs (see :func:`~hdl.common.replicas`);
        the ``Memory`` build takes copy 0. 1 by default.

    Members
    -------
    w_en, w_addr : ``In(...).array(copies)``
    w_data : In
        Write ``w_data`` (of ``shape``) to ``w_addr`` at the end of the cycle, when ``w_en``.
    r_addr : ``In(range(depth)).array(copies)``
    r_en : In
        Load the read latch with the word at ``r_addr``.
    r_oe : In
        Load ``r_data`` from the read latch.
    r_data : Out
        The output register.

    Attributes
    ----------
    probe : SimpleNamespace
        Set by ``elaborate`` when built from ``Memory``, for formal harnesses: ``latch``, the
        read latch, and ``words``, the memory's words by address, which only the ``"formal"``
        platform reads out (through asynchronous read ports); empty otherwise.

    Raises
    ------
    TypeError
        ``shape`` is not shape-castable.
    ValueError
        ``depth`` is out of range.
    """

    def __init__(self, shape, depth: int, *, copies: int = 1):
        require_shape(self, shape)
        require(
            self,
            isinstance(depth, int) and not isinstance(depth, bool) and 2 <= depth <= 16384,
            ValueError(f"depth must be an integer from 2 to 16384, not {depth!r}"),
        )
        require(
            self,
            isinstance(copies, int) and not isinstance(copies, bool) and copies >= 1,
            ValueError(f"copies must be a positive integer, not {copies!r}"),
        )
        self._shape = shape
        self._depth = depth
        self._copies = copies
        super().__init__(
            {
                "w_en": In(1).array(copies),
                "w_addr": In(range(depth)).array(copies),
                "w_data": In(shape),
                "r_addr": In(range(depth)).array(copies),
                "r_en": In(1),
                "r_oe": In(1),
                "r_data": Out(shape),
            }
        )

    @property
    def shape(self):
        return self._shape

    @property
    def depth(self) -> int:
        return self._depth

    @staticmethod
    def columns(shape, depth: int) -> int:
        """Block RAMs the ECP5 build of a ``depth``-word RAM of ``shape`` instantiates."""
        return -(-Shape.cast(shape).width // dp16kd_mode(depth)[0])

    def elaborate(self, platform):
        if _is_ecp5(platform):
            return self._dp16kd()
        m = Module()
        m.submodules.mem = mem = Memory(shape=self._shape, depth=self._depth, init=[])
        wport = mem.write_port()
        rport = mem.read_port()
        m.d.comb += [
            wport.en.eq(self.w_en[0]),
            wport.addr.eq(self.w_addr[0]),
            wport.data.eq(self.w_data),
            rport.en.eq(self.r_en),
            rport.addr.eq(self.r_addr[0]),
        ]
        with m.If(self.r_oe):
            m.d.sync += self.r_data.eq(rport.data)
        self.probe = SimpleNamespace(latch=rport.data, words=formal_words(m, mem, platform))
        return m

    def _dp16kd(self):
        m = Module()
        self.probe = SimpleNamespace()
        bits = Shape.cast(self._shape).width
        width, low = dp16kd_mode(self._depth)
        abits = len(self.w_addr[0])
        w_data, r_data = Signal(bits), Signal(bits)
        m.d.comb += [w_data.eq(self.w_data), self.r_data.eq(r_data)]

        def addr_pins(port, addr, byte_enables):
            pins = {}
            for pin in range(14):
                if pin >= low and pin - low < abits:
                    value = addr[pin - low]
                elif pin < 2 and width == 18:
                    value = Const(byte_enables, 1)
                else:
                    value = Const(0, 1)
                pins[f"i_AD{port}{pin}"] = value
            return pins

        for n, lo in enumerate(range(0, bits, width)):
            hi = min(lo + width, bits)
            c = n % self._copies
            pins = {
                "p_DATA_WIDTH_A": width,
                "p_DATA_WIDTH_B": width,
                "p_REGMODE_A": "NOREG",
                "p_REGMODE_B": "OUTREG",
                "p_RESETMODE": "SYNC",
                "p_WRITEMODE_A": "NORMAL",
                "p_WRITEMODE_B": "NORMAL",
                "p_GSR": "DISABLED",
                "i_CLKA": ClockSignal(),
                "i_CEA": self.w_en[c],
                "i_OCEA": Const(0, 1),
                "i_WEA": self.w_en[c],
                "i_RSTA": Const(0, 1),
                "i_CLKB": ClockSignal(),
                "i_CEB": self.r_en,
                "i_OCEB": self.r_oe,
                "i_WEB": Const(0, 1),
                "i_RSTB": Const(0, 1),
            }
            for port in "AB":
                for cs in range(3):
                    pins[f"i_CS{port}{cs}"] = Const(0, 1)
            pins |= addr_pins("A", self.w_addr[c], 1)
            pins |= addr_pins("B", self.r_addr[c], 0)
            dout = Signal(18, name=f"dout{n}")
            for i in range(18):
                pins[f"i_DIA{i}"] = w_data[lo + i] if lo + i < hi else Const(0, 1)
                pins[f"i_DIB{i}"] = Const(0, 1)
                pins[f"o_DOB{i}"] = dout[i]
            m.submodules[f"bram{n}"] = Instance("DP16KD", **pins)
            m.d.comb += r_data[lo:hi].eq(dout[: hi - lo])
        return m
