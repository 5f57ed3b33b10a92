"""Gen9 command encoders and the decoder (the layouts are :mod:`vmassist.formats.gen9`).

Each encoder returns the command's dwords, ready to be written into a ring or a batch buffer;
:func:`decode` reads one command back from memory. Only the commands of
:mod:`vmassist.formats.gen9` are known: any other header, or a known header with a length the
PRM does not allow, is a :class:`CommandError`, as the GVT-g command parser rejects it.
Reserved bits are kept in :attr:`Command.dwords` but not checked.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from models.vmm.bits import Codec
from vmassist.formats.gen9 import (
    PIPE_CONTROL_OPCODE,
    PIPE_CONTROL_SUBOPCODE,
    PIPE_CONTROL_SUBTYPE,
    ROP_PATCOPY,
    ROP_SRCCOPY,
    BatchAddress,
    BatchBufferStartHeader,
    BltAddress,
    BltControl,
    BltHeader,
    BltOpcode,
    BltPoint,
    Client,
    ColorDepth,
    DwordAddress,
    GfxPipeHeader,
    LoadRegisterImmHeader,
    LriOffset,
    MiHeader,
    MiOpcode,
    NoopHeader,
    PipeControlFlags,
    PostSync,
    StoreDataImmHeader,
)

__all__ = [
    "Op",
    "Command",
    "CommandError",
    "Reader",
    "decode",
    "mi_noop",
    "mi_batch_buffer_end",
    "mi_batch_buffer_start",
    "mi_store_data_imm",
    "mi_load_register_imm",
    "pipe_control",
    "xy_color_blt",
    "xy_src_copy_blt",
    "PIPE_CONTROL_FLAGS",
]

Reader = Callable[[int], int]
"""Returns the dword at a (graphics) byte address."""

_MI = Codec(MiHeader)
_NOOP = Codec(NoopHeader)
_SDI = Codec(StoreDataImmHeader)
_LRI = Codec(LoadRegisterImmHeader)
_BBS = Codec(BatchBufferStartHeader)
_GFX = Codec(GfxPipeHeader)
_PC = Codec(PipeControlFlags)
_BLT = Codec(BltHeader)
_BR13 = Codec(BltControl)
_XY = Codec(BltPoint)
_DWA = Codec(DwordAddress)
_BBA = Codec(BatchAddress)
_BLTA = Codec(BltAddress)
_LRIO = Codec(LriOffset)

_MASK32 = (1 << 32) - 1

#: The PIPE_CONTROL DW1 flags :func:`pipe_control` takes as keywords (every DW1 field but the
#: reserved ones and those it has parameters for).
PIPE_CONTROL_FLAGS = tuple(
    n
    for n in _PC.fields
    if not n.startswith("rsvd") and n not in ("post_sync", "cs_stall", "dest_ggtt")
)


class Op(enum.StrEnum):
    """The commands the model knows."""

    MI_NOOP = "MI_NOOP"
    MI_BATCH_BUFFER_END = "MI_BATCH_BUFFER_END"
    MI_BATCH_BUFFER_START = "MI_BATCH_BUFFER_START"
    MI_STORE_DATA_IMM = "MI_STORE_DATA_IMM"
    MI_LOAD_REGISTER_IMM = "MI_LOAD_REGISTER_IMM"
    PIPE_CONTROL = "PIPE_CONTROL"
    XY_COLOR_BLT = "XY_COLOR_BLT"
    XY_SRC_COPY_BLT = "XY_SRC_COPY_BLT"


class CommandError(ValueError):
    """A header the decoder does not know, or a known one with a length it does not allow.

    Members
    -------
    address : int
        Graphics address of the header.
    header : int
        The header dword.
    problem : str
        What is wrong with it.
    """

    def __init__(self, address: int, header: int, problem: str) -> None:
        self.address = address
        self.header = header
        self.problem = problem
        super().__init__(f"command at {address:#x} (header {header:#010x}): {problem}")


@dataclass(frozen=True)
class Command:
    """One decoded command.

    Members
    -------
    op : Op
        Which command.
    dwords : tuple of int
        Its dwords, header first: ``len(dwords)`` is its length.
    fields : mapping of str to int
        The decoded fields (addresses in bytes), read-only; see each encoder for the names.
    registers : tuple of (int, int)
        MI_LOAD_REGISTER_IMM only: the (MMIO offset, value) pairs, in order.
    """

    op: Op
    dwords: tuple[int, ...]
    fields: Mapping[str, int] = field(default_factory=dict)
    registers: tuple[tuple[int, int], ...] = ()

    @property
    def name(self) -> str:
        return self.op.value

    @property
    def length(self) -> int:
        """Length in dwords."""
        return len(self.dwords)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))

    def __getitem__(self, name: str) -> int:
        return self.fields[name]

    def __hash__(self) -> int:  # the fields are derived from the dwords
        return hash((self.op, self.dwords))


def _flag(value: bool) -> int:
    return 1 if value else 0


def _split(qword: int) -> list[int]:
    return [qword & _MASK32, qword >> 32]


def _dword_address(address: int, what: str) -> list[int]:
    if address & 3:
        raise ValueError(f"{what} address {address:#x} is not dword aligned")
    return _split(_DWA.encode(address=address >> 2))


def _point(x: int, y: int) -> int:
    return _XY.encode(x=x, y=y)


def mi_noop(ident: int = 0, *, write_id: bool = False) -> list[int]:
    """MI_NOOP; ``ident`` goes to the identification-number register when ``write_id``.
    Fields: ``id``, ``id_write``."""
    return [_NOOP.encode(opcode=MiOpcode.NOOP, ident=ident, ident_write=_flag(write_id))]


def mi_batch_buffer_end() -> list[int]:
    """MI_BATCH_BUFFER_END (``0x05000000``). No fields."""
    return [_MI.encode(opcode=MiOpcode.BATCH_BUFFER_END)]


def mi_batch_buffer_start(
    address: int, *, second_level: bool = False, ppgtt: bool = False
) -> list[int]:
    """MI_BATCH_BUFFER_START to the batch at graphics ``address`` (dword aligned).
    Fields: ``address``, ``second_level``, ``address_space`` (1 PPGTT), ``predication``,
    ``add_offset``, ``resource_streamer``."""
    if address & 3:
        raise ValueError(f"batch buffer address {address:#x} is not dword aligned")
    header = _BBS.encode(
        client=Client.MI,
        opcode=MiOpcode.BATCH_BUFFER_START,
        length=1,
        address_space=_flag(ppgtt),
        second_level=_flag(second_level),
    )
    return [header, *_split(_BBA.encode(address=address >> 2))]


def mi_store_data_imm(
    address: int, value: int, *, qword: bool = False, ggtt: bool = True
) -> list[int]:
    """MI_STORE_DATA_IMM: store the dword (or, with ``qword``, the qword) ``value`` at
    graphics ``address``. Fields: ``address``, ``data``, ``store_qword``, ``use_ggtt``,
    ``core_mode``."""
    if not 0 <= value < 1 << (64 if qword else 32):
        raise ValueError(
            f"MI_STORE_DATA_IMM value {value:#x} does not fit a {'q' if qword else 'd'}word"
        )
    header = _SDI.encode(
        opcode=MiOpcode.STORE_DATA_IMM,
        length=3 if qword else 2,
        store_qword=_flag(qword),
        use_ggtt=_flag(ggtt),
    )
    data = _split(value) if qword else [value]
    return [header, *_dword_address(address, "MI_STORE_DATA_IMM"), *data]


def mi_load_register_imm(
    pairs: Sequence[tuple[int, int]], *, byte_write_disables: int = 0
) -> list[int]:
    """MI_LOAD_REGISTER_IMM: write each (MMIO offset, dword) pair, in order.
    Fields: ``byte_write_disables``; the pairs are :attr:`Command.registers`."""
    if not 1 <= len(pairs) <= 128:
        raise ValueError(f"MI_LOAD_REGISTER_IMM takes 1 to 128 pairs, not {len(pairs)}")
    header = _LRI.encode(
        opcode=MiOpcode.LOAD_REGISTER_IMM,
        length=2 * len(pairs) - 1,
        byte_write_disables=byte_write_disables,
    )
    out = [header]
    for offset, value in pairs:
        if offset & 3:
            raise ValueError(f"MI_LOAD_REGISTER_IMM register {offset:#x} is not dword aligned")
        if not 0 <= value <= _MASK32:
            raise ValueError(f"MI_LOAD_REGISTER_IMM value {value:#x} does not fit a dword")
        out += [_LRIO.encode(offset=offset >> 2), value]
    return out


def pipe_control(
    *,
    post_sync: PostSync = PostSync.NONE,
    address: int = 0,
    data: int = 0,
    cs_stall: bool = False,
    ggtt: bool = True,
    **flags: bool,
) -> list[int]:
    """PIPE_CONTROL (6 dwords): ``post_sync`` writes a qword at graphics ``address``
    (immediate ``data``, the depth count or the timestamp); ``cs_stall`` makes the command
    streamer wait for the work before it; ``flags`` sets other DW1 bits by name
    (:data:`PIPE_CONTROL_FLAGS`). Fields: the DW1 flags, ``address``, ``data``.
    """
    unknown = set(flags) - set(PIPE_CONTROL_FLAGS)
    if unknown:
        raise ValueError(f"PIPE_CONTROL has no flag {sorted(unknown)[0]!r}")
    if not 0 <= data < 1 << 64:
        raise ValueError(f"PIPE_CONTROL immediate data {data:#x} does not fit a qword")
    header = _GFX.encode(
        client=Client.GFXPIPE,
        subtype=PIPE_CONTROL_SUBTYPE,
        opcode=PIPE_CONTROL_OPCODE,
        subopcode=PIPE_CONTROL_SUBOPCODE,
        length=4,
    )
    dw1 = _PC.encode(
        post_sync=post_sync,
        cs_stall=_flag(cs_stall),
        dest_ggtt=_flag(ggtt),
        **{k: _flag(v) for k, v in flags.items()},
    )
    return [header, dw1, *_dword_address(address, "PIPE_CONTROL"), *_split(data)]


def _blt_head(
    opcode: BltOpcode,
    length: int,
    *,
    pitch: int,
    depth: ColorDepth,
    rop: int,
    write_rgb: bool,
    write_alpha: bool,
    dst_tiled: bool,
    src_tiled: bool,
    clip: bool,
) -> list[int]:
    header = _BLT.encode(
        client=Client.BLT,
        opcode=opcode,
        length=length,
        write_rgb=_flag(write_rgb),
        write_alpha=_flag(write_alpha),
        dst_tiled=_flag(dst_tiled),
        src_tiled=_flag(src_tiled),
    )
    br13 = _BR13.encode(pitch=pitch, rop=rop, depth=depth, clip=_flag(clip))
    return [header, br13]


def xy_color_blt(
    dst: int,
    pitch: int,
    rect: tuple[int, int, int, int],
    color: int,
    *,
    depth: ColorDepth = ColorDepth.B32,
    rop: int = ROP_PATCOPY,
    write_rgb: bool = True,
    write_alpha: bool = True,
    dst_tiled: bool = False,
    clip: bool = False,
) -> list[int]:
    """XY_COLOR_BLT (7 dwords): fill ``rect`` = (x1, y1, x2, y2), right and bottom exclusive,
    of the surface at graphics address ``dst`` (``pitch`` bytes a row) with ``color``.
    Fields: ``write_rgb``, ``write_alpha``, ``dst_tiled``, ``pitch``, ``rop``, ``depth``,
    ``clip``, ``x1``, ``y1``, ``x2``, ``y2``, ``dst``, ``color``."""
    if not 0 <= color <= _MASK32:
        raise ValueError(f"XY_COLOR_BLT colour {color:#x} does not fit a dword")
    x1, y1, x2, y2 = rect
    return [
        *_blt_head(
            BltOpcode.XY_COLOR_BLT,
            5,
            pitch=pitch,
            depth=depth,
            rop=rop,
            write_rgb=write_rgb,
            write_alpha=write_alpha,
            dst_tiled=dst_tiled,
            src_tiled=False,
            clip=clip,
        ),
        _point(x1, y1),
        _point(x2, y2),
        *_split(_BLTA.encode(address=dst)),
        color,
    ]


def xy_src_copy_blt(
    dst: int,
    pitch: int,
    rect: tuple[int, int, int, int],
    src: int,
    src_pitch: int,
    src_xy: tuple[int, int],
    *,
    depth: ColorDepth = ColorDepth.B32,
    rop: int = ROP_SRCCOPY,
    write_rgb: bool = True,
    write_alpha: bool = True,
    dst_tiled: bool = False,
    src_tiled: bool = False,
    clip: bool = False,
) -> list[int]:
    """XY_SRC_COPY_BLT (10 dwords): copy the rectangle at ``src_xy`` of the surface at ``src``
    (``src_pitch`` bytes a row) to ``rect`` of the surface at ``dst``. Fields: those of
    :func:`xy_color_blt` but ``color``, and ``src_tiled``, ``src_x``, ``src_y``,
    ``src_pitch``, ``src``."""
    x1, y1, x2, y2 = rect
    return [
        *_blt_head(
            BltOpcode.XY_SRC_COPY_BLT,
            8,
            pitch=pitch,
            depth=depth,
            rop=rop,
            write_rgb=write_rgb,
            write_alpha=write_alpha,
            dst_tiled=dst_tiled,
            src_tiled=src_tiled,
            clip=clip,
        ),
        _point(x1, y1),
        _point(x2, y2),
        *_split(_BLTA.encode(address=dst)),
        _point(*src_xy),
        _BR13.encode(pitch=src_pitch),
        *_split(_BLTA.encode(address=src)),
    ]


# --- decoding -------------------------------------------------------------------------------


def _read(read: Reader, address: int, n: int) -> tuple[int, ...]:
    return tuple(read(address + 4 * i) for i in range(n))


def _qword(lo: int, hi: int) -> int:
    return lo | hi << 32


def _decode_mi(read: Reader, address: int, header: int) -> Command:
    opcode = _MI["opcode"].get(header)
    if opcode == MiOpcode.NOOP:
        h = _NOOP.decode(header)
        return Command(Op.MI_NOOP, (header,), {"id": h["ident"], "id_write": h["ident_write"]})
    if opcode == MiOpcode.BATCH_BUFFER_END:
        return Command(Op.MI_BATCH_BUFFER_END, (header,))
    if opcode == MiOpcode.BATCH_BUFFER_START:
        h = _BBS.decode(header)
        if h["length"] != 1:
            raise CommandError(
                address, header, f"MI_BATCH_BUFFER_START length {h['length']}, not 1"
            )
        dw = (header, *_read(read, address + 4, 2))
        fields = {k: v for k, v in h.items() if not k.startswith("rsvd")}
        del fields["length"], fields["opcode"], fields["client"]
        fields["address"] = _BBA["address"].get(_qword(dw[1], dw[2])) << 2
        return Command(Op.MI_BATCH_BUFFER_START, dw, fields)
    if opcode == MiOpcode.STORE_DATA_IMM:
        h = _SDI.decode(header)
        if h["length"] != 2 + h["store_qword"]:
            want = "3 (Store Qword set)" if h["store_qword"] else "2"
            raise CommandError(
                address, header, f"MI_STORE_DATA_IMM length {h['length']}, not {want}"
            )
        dw = (header, *_read(read, address + 4, h["length"] + 1))
        a = _DWA.decode(_qword(dw[1], dw[2]))
        data = _qword(dw[3], dw[4]) if h["store_qword"] else dw[3]
        fields = {
            "use_ggtt": h["use_ggtt"],
            "store_qword": h["store_qword"],
            "core_mode": a["core_mode"],
            "address": a["address"] << 2,
            "data": data,
        }
        return Command(Op.MI_STORE_DATA_IMM, dw, fields)
    if opcode == MiOpcode.LOAD_REGISTER_IMM:
        h = _LRI.decode(header)
        if h["length"] % 2 == 0:
            raise CommandError(
                address, header, f"MI_LOAD_REGISTER_IMM length {h['length']} is not 2n - 1"
            )
        dw = (header, *_read(read, address + 4, h["length"] + 1))
        regs = tuple((_LRIO["offset"].get(dw[i]) << 2, dw[i + 1]) for i in range(1, len(dw), 2))
        fields = {"byte_write_disables": h["byte_write_disables"]}
        return Command(Op.MI_LOAD_REGISTER_IMM, dw, fields, regs)
    raise CommandError(address, header, f"unknown MI opcode {opcode:#x}")


def _decode_pipe_control(read: Reader, address: int, header: int) -> Command:
    h = _GFX.decode(header)
    kind = (h["subtype"], h["opcode"], h["subopcode"])
    if kind != (PIPE_CONTROL_SUBTYPE, PIPE_CONTROL_OPCODE, PIPE_CONTROL_SUBOPCODE):
        raise CommandError(
            address,
            header,
            "unknown GFXPIPE command (subtype, opcode, sub-opcode) = ({}, {}, {})".format(*kind),
        )
    if h["length"] != 4:
        raise CommandError(address, header, f"PIPE_CONTROL length {h['length']}, not 4")
    dw = (header, *_read(read, address + 4, 5))
    fields = {k: v for k, v in _PC.decode(dw[1]).items() if not k.startswith("rsvd")}
    fields["address"] = _DWA["address"].get(_qword(dw[2], dw[3])) << 2
    fields["data"] = _qword(dw[4], dw[5])
    return Command(Op.PIPE_CONTROL, dw, fields)


def _decode_blt(read: Reader, address: int, header: int) -> Command:
    h = _BLT.decode(header)
    opcode = h["opcode"]
    if opcode == BltOpcode.XY_COLOR_BLT:
        op, length = Op.XY_COLOR_BLT, 5
    elif opcode == BltOpcode.XY_SRC_COPY_BLT:
        op, length = Op.XY_SRC_COPY_BLT, 8
    else:
        raise CommandError(address, header, f"unknown blitter opcode {opcode:#x}")
    if h["length"] != length:
        raise CommandError(address, header, f"{op} length {h['length']}, not {length}")
    dw = (header, *_read(read, address + 4, length + 1))
    br13 = _BR13.decode(dw[1])
    p1, p2 = _XY.decode(dw[2]), _XY.decode(dw[3])
    fields = {
        "write_rgb": h["write_rgb"],
        "write_alpha": h["write_alpha"],
        "dst_tiled": h["dst_tiled"],
        "pitch": br13["pitch"],
        "rop": br13["rop"],
        "depth": br13["depth"],
        "clip": br13["clip"],
        "x1": p1["x"],
        "y1": p1["y"],
        "x2": p2["x"],
        "y2": p2["y"],
        "dst": _BLTA["address"].get(_qword(dw[4], dw[5])),
    }
    if op == Op.XY_COLOR_BLT:
        fields["color"] = dw[6]
    else:
        s = _XY.decode(dw[6])
        fields["src_tiled"] = h["src_tiled"]
        fields["src_x"] = s["x"]
        fields["src_y"] = s["y"]
        fields["src_pitch"] = _BR13["pitch"].get(dw[7])
        fields["src"] = _BLTA["address"].get(_qword(dw[8], dw[9]))
    return Command(op, dw, fields)


def decode(read: Reader, address: int) -> Command:
    """The command whose header is at graphics ``address``, read with ``read``.

    Raises
    ------
    CommandError
        An unknown header, or a length the command does not allow.
    Exception
        Whatever ``read`` raises (a GGTT fault for an unmapped address).
    """
    header = read(address)
    client = header >> 29
    if client == Client.MI:
        return _decode_mi(read, address, header)
    if client == Client.GFXPIPE:
        return _decode_pipe_control(read, address, header)
    if client == Client.BLT:
        return _decode_blt(read, address, header)
    raise CommandError(address, header, f"unknown command type {client}")
