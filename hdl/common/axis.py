"""AXI4-Stream: the bus signature, and the beat layout of frame streams inside the design."""

from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AxiStreamSignature", "FrameBeat"]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class AxiStreamSignature(wiring.Signature):
    """AXI4-Stream, seen from the master. Member names match cocotbext-axi's ``AxiStreamBus``.

    A top-level port ``rx`` becomes ``rx__tdata``, ``rx__tkeep``, ... in the generated Verilog,
    which ``AxiStreamBus.from_prefix(dut, "rx", bus_separator="__")`` binds.

    Parameters
    ----------
    data_width : int
        A multiple of 8 from 8 to 1024.
    user_width : int
        Width of ``tuser``; 0 (the default) leaves the member out.
    dest_width : int
        Width of ``tdest``; 0 (the default) leaves the member out.

    Members
    -------
    tdata : ``Out(data_width)``
    tkeep : ``Out(data_width // 8)``
    tvalid : ``Out(1)``
    tready : ``In(1)``
    tlast : ``Out(1)``
    tuser : ``Out(user_width)``
        Only when ``user_width > 0``.
    tdest : ``Out(dest_width)``
        Only when ``dest_width > 0``.

    Raises
    ------
    TypeError
        A width is not an integer.
    ValueError
        A width is out of range.
    """

    def __init__(self, data_width: int, *, user_width: int = 0, dest_width: int = 0):
        for name, value in (
            ("data_width", data_width),
            ("user_width", user_width),
            ("dest_width", dest_width),
        ):
            if not _is_int(value):
                raise TypeError(f"{name} must be an integer, not {value!r}")
        if not (8 <= data_width <= 1024 and data_width % 8 == 0):
            raise ValueError(f"data_width must be a multiple of 8 from 8 to 1024, not {data_width}")
        if user_width < 0:
            raise ValueError(f"user_width must be 0 or more, not {user_width}")
        if dest_width < 0:
            raise ValueError(f"dest_width must be 0 or more, not {dest_width}")
        self._data_width = data_width
        self._user_width = user_width
        self._dest_width = dest_width
        members = {
            "tdata": Out(data_width),
            "tkeep": Out(data_width // 8),
            "tvalid": Out(1),
            "tready": In(1),
            "tlast": Out(1),
        }
        # Absent rather than zero-width: cocotbext-axi treats a missing tuser/tdest as unused.
        if user_width:
            members["tuser"] = Out(user_width)
        if dest_width:
            members["tdest"] = Out(dest_width)
        super().__init__(members)

    @property
    def data_width(self) -> int:
        return self._data_width

    @property
    def user_width(self) -> int:
        return self._user_width

    @property
    def dest_width(self) -> int:
        return self._dest_width

    def __eq__(self, other):
        return (
            isinstance(other, AxiStreamSignature)
            and other.data_width == self.data_width
            and other.user_width == self.user_width
            and other.dest_width == self.dest_width
        )

    def __hash__(self):
        return hash((AxiStreamSignature, self._data_width, self._user_width, self._dest_width))

    def __repr__(self):
        args = [str(self.data_width)]
        if self.user_width:
            args.append(f"user_width={self.user_width}")
        if self.dest_width:
            args.append(f"dest_width={self.dest_width}")
        return f"AxiStreamSignature({', '.join(args)})"


def FrameBeat(shape) -> data.StructLayout:
    """One beat of a frame stream: a ``data`` word of ``shape`` and ``last`` on a frame's final
    beat. The payload of the streams :class:`PacketFifo` and :class:`FrameArbiter` carry."""
    return data.StructLayout({"data": shape, "last": 1})
