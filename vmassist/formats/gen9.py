"""Intel Gen9 (Skylake) GPU formats: the command encodings the vGPU model handles, the GGTT
page-table entry, and the MMIO offsets it traps.

Every layout follows the public Skylake PRM (Volume 2a, "Command Reference: Instructions";
Volume 5, "Memory Views"), in the Gen8+ forms with 48-bit graphics addresses, as Linux i915
(``intel_gpu_commands.h``) and Mesa (``genxml/gen9.xml``) emit them. Command lengths, in
dwords, including the header:

====================== ====== ==================================================
command                dwords DWord Length field (total - 2)
====================== ====== ==================================================
MI_NOOP                1      none
MI_BATCH_BUFFER_END    1      none
MI_BATCH_BUFFER_START  3      1
MI_STORE_DATA_IMM      4 / 5  2 (one dword stored) / 3 (a qword, Store Qword = 1)
MI_LOAD_REGISTER_IMM   1 + 2n 2n - 1 (n register/value pairs)
PIPE_CONTROL           6      4
XY_COLOR_BLT           7      5
XY_SRC_COPY_BLT        10     8
====================== ====== ==================================================

Layouts are little-endian bit fields of one dword, or of two consecutive dwords for a 64-bit
address (the low dword first).
"""

import enum

from amaranth.lib import (
    data,
)  # no "from __future__ import annotations": Struct reads real annotations

__all__ = [
    "Client",
    "MiOpcode",
    "BltOpcode",
    "PostSync",
    "ColorDepth",
    "PIPE_CONTROL_SUBTYPE",
    "PIPE_CONTROL_OPCODE",
    "PIPE_CONTROL_SUBOPCODE",
    "ROP_PATCOPY",
    "ROP_SRCCOPY",
    "MiHeader",
    "NoopHeader",
    "StoreDataImmHeader",
    "LoadRegisterImmHeader",
    "BatchBufferStartHeader",
    "GfxPipeHeader",
    "PipeControlFlags",
    "BltHeader",
    "BltControl",
    "BltPoint",
    "DwordAddress",
    "BatchAddress",
    "BltAddress",
    "LriOffset",
    "GgttPte",
    "RingCtl",
    "RingHead",
    "RingTail",
    "RENDER_RING_BASE",
    "RING_TAIL",
    "RING_HEAD",
    "RING_START",
    "RING_CTL",
    "CS_GPR_BASE",
    "CS_GPR_COUNT",
    "MI_PREDICATE_SRC0",
    "MI_PREDICATE_SRC1",
    "GGTT_BASE",
    "GGTT_SIZE",
    "GGTT_PTE_BYTES",
    "GGTT_ENTRIES",
    "GTT_PAGE_BITS",
    "GPA_BITS",
    "GFX_ADDR_BITS",
]


class Client(enum.IntEnum):
    """Command Type, bits [31:29] of every command header."""

    MI = 0  #: memory interface: the command streamer's own commands
    BLT = 2  #: 2D blitter
    GFXPIPE = 3  #: 3D/media pipeline (PIPE_CONTROL)


class MiOpcode(enum.IntEnum):
    """MI Command Opcode, bits [28:23] of an MI header."""

    NOOP = 0x00
    BATCH_BUFFER_END = 0x0A
    STORE_DATA_IMM = 0x20
    LOAD_REGISTER_IMM = 0x22
    BATCH_BUFFER_START = 0x31


class BltOpcode(enum.IntEnum):
    """Blitter instruction opcode, bits [28:22] of a BLT header."""

    XY_COLOR_BLT = 0x50
    XY_SRC_COPY_BLT = 0x53


#: PIPE_CONTROL is GFXPIPE Command SubType 3, 3D Command Opcode 2, Sub Opcode 0.
PIPE_CONTROL_SUBTYPE = 3
PIPE_CONTROL_OPCODE = 2
PIPE_CONTROL_SUBOPCODE = 0

ROP_PATCOPY = 0xF0  #: raster operation "pattern copy": XY_COLOR_BLT's solid fill
ROP_SRCCOPY = 0xCC  #: raster operation "source copy": XY_SRC_COPY_BLT's copy


class PostSync(enum.IntEnum):
    """PIPE_CONTROL Post Sync Operation, DW1 [15:14]."""

    NONE = 0
    IMMEDIATE = 1  #: write the Immediate Data qword (DW4-5)
    DEPTH_COUNT = 2  #: write the PS depth count (a qword)
    TIMESTAMP = 3  #: write the timestamp (a qword)


class ColorDepth(enum.IntEnum):
    """Blitter Color Depth, BR13 [25:24]."""

    B8 = 0  #: 8 bits per pixel
    B16_565 = 1  #: 16 bits per pixel, RGB 565
    B16_1555 = 2  #: 16 bits per pixel, ARGB 1555
    B32 = 3  #: 32 bits per pixel

    @property
    def bytes_per_pixel(self) -> int:
        return (1, 2, 2, 4)[self.value]


class MiHeader(data.Struct):
    """The header of an MI command: client 0, opcode [28:23], DWord Length in the low bits.

    MI_NOOP and MI_BATCH_BUFFER_END are one dword and have no length field (MI_NOOP's low 22
    bits are an identification number); the command-specific headers below give the exact
    width of each length field and the flags.
    """

    length: 8  #: [7:0], DWord Length of the multi-dword MI commands
    flags: 15  #: [22:8], command specific
    opcode: 6  #: [28:23], :class:`MiOpcode`
    client: 3  #: [31:29], :attr:`Client.MI`


class NoopHeader(data.Struct):
    """MI_NOOP (one dword)."""

    ident: 22  #: [21:0], Identification Number
    ident_write: 1  #: [22], write ``ident`` to the identification-number register
    opcode: 6
    client: 3


class StoreDataImmHeader(data.Struct):
    """MI_STORE_DATA_IMM DW0."""

    length: 10  #: [9:0], 2 for a dword, 3 for a qword
    rsvd0: 11
    store_qword: 1  #: [21]
    use_ggtt: 1  #: [22], the address is a global (GGTT) graphics address
    opcode: 6
    client: 3


class LoadRegisterImmHeader(data.Struct):
    """MI_LOAD_REGISTER_IMM DW0."""

    length: 8  #: [7:0], 2n - 1 for n register/value pairs
    byte_write_disables: 4  #: [11:8], one bit per byte of every data dword
    rsvd0: 11
    opcode: 6
    client: 3


class BatchBufferStartHeader(data.Struct):
    """MI_BATCH_BUFFER_START DW0 (Gen8+, 3 dwords)."""

    length: 8  #: [7:0], 1
    address_space: 1  #: [8], 0 GGTT, 1 PPGTT
    rsvd0: 1
    resource_streamer: 1  #: [10]
    rsvd1: 4
    predication: 1  #: [15]
    add_offset: 1  #: [16]
    rsvd2: 5
    second_level: 1  #: [22]
    opcode: 6
    client: 3


class GfxPipeHeader(data.Struct):
    """A GFXPIPE (3D) command header, as PIPE_CONTROL's DW0."""

    length: 8  #: [7:0], 4 for PIPE_CONTROL
    rsvd0: 8
    subopcode: 8  #: [23:16] 3D Command Sub Opcode
    opcode: 3  #: [26:24] 3D Command Opcode
    subtype: 2  #: [28:27] Command SubType
    client: 3  #: [31:29], :attr:`Client.GFXPIPE`


class PipeControlFlags(data.Struct):
    """PIPE_CONTROL DW1."""

    depth_cache_flush: 1  #: [0]
    stall_at_scoreboard: 1  #: [1]
    state_cache_invalidate: 1  #: [2]
    constant_cache_invalidate: 1  #: [3]
    vf_cache_invalidate: 1  #: [4]
    dc_flush: 1  #: [5]
    rsvd0: 1
    pipe_control_flush: 1  #: [7]
    notify: 1  #: [8]
    indirect_state_disable: 1  #: [9]
    texture_cache_invalidate: 1  #: [10]
    instruction_cache_invalidate: 1  #: [11]
    render_target_cache_flush: 1  #: [12]
    depth_stall: 1  #: [13]
    post_sync: 2  #: [15:14], :class:`PostSync`
    generic_media_state_clear: 1  #: [16]
    rsvd1: 1
    tlb_invalidate: 1  #: [18]
    global_snapshot_count_reset: 1  #: [19]
    cs_stall: 1  #: [20], Command Streamer Stall Enable
    store_data_index: 1  #: [21], the address is an offset in the hardware status page
    rsvd2: 1
    lri_post_sync: 1  #: [23], the post-sync write goes to an MMIO register
    dest_ggtt: 1  #: [24], Destination Address Type: 0 PPGTT, 1 GGTT
    rsvd3: 1
    flush_llc: 1  #: [26]
    rsvd4: 5


class BltHeader(data.Struct):
    """A 2D blitter command's DW0 (BR00)."""

    length: 8  #: [7:0], 5 for XY_COLOR_BLT, 8 for XY_SRC_COPY_BLT
    rsvd0: 3
    dst_tiled: 1  #: [11]
    rsvd1: 3
    src_tiled: 1  #: [15] (XY_SRC_COPY_BLT)
    rsvd2: 4
    write_rgb: 1  #: [20], 32 bpp: write bytes 0-2 of each pixel
    write_alpha: 1  #: [21], 32 bpp: write byte 3 of each pixel
    opcode: 7  #: [28:22], :class:`BltOpcode`
    client: 3  #: [31:29], :attr:`Client.BLT`


class BltControl(data.Struct):
    """A blitter command's DW1 (BR13): destination pitch, raster operation, colour depth."""

    pitch: 16  #: [15:0], bytes between rows, linear surfaces (the sign bit must be 0)
    rop: 8  #: [23:16], raster operation
    depth: 2  #: [25:24], :class:`ColorDepth`
    rsvd0: 4
    clip: 1  #: [30], clipping enabled
    rsvd1: 1


class BltPoint(data.Struct):
    """A blitter coordinate dword: X [15:0], Y [31:16], in pixels."""

    x: 16
    y: 16


class DwordAddress(data.Struct):
    """A dword-aligned 48-bit graphics address over two dwords (MI_STORE_DATA_IMM DW1-2,
    PIPE_CONTROL DW2-3): ``address`` is the graphics address >> 2."""

    core_mode: 1  #: [0], MI_STORE_DATA_IMM Core Mode Enable (reserved in PIPE_CONTROL)
    rsvd0: 1
    address: 46  #: address bits [47:2]
    rsvd1: 16


class BatchAddress(data.Struct):
    """MI_BATCH_BUFFER_START DW1-2: ``address`` is the graphics address >> 2."""

    rsvd0: 2
    address: 62  #: address bits [63:2]


class BltAddress(data.Struct):
    """A blitter surface base address over two dwords: byte granular, 48 bits."""

    address: 48
    rsvd0: 16


class LriOffset(data.Struct):
    """The register dword of an MI_LOAD_REGISTER_IMM pair: ``offset`` is the MMIO offset >> 2."""

    rsvd0: 2
    offset: 21  #: MMIO offset bits [22:2]
    rsvd1: 9


class GgttPte(data.Struct):
    """A Gen8+ GGTT page-table entry (64 bits): maps one 4 KiB graphics page."""

    present: 1  #: [0]
    rsvd0: 11  #: [11:1], caching and PAT bits (not modelled)
    pfn: 27  #: [38:12], physical page frame
    rsvd1: 25


class RingCtl(data.Struct):
    """RING_BUFFER_CTL."""

    valid: 1  #: [0], Ring Buffer Enable
    rsvd0: 11
    pages: 9  #: [20:12], Buffer Length: 4 KiB pages - 1
    rsvd1: 11


class RingHead(data.Struct):
    """RING_BUFFER_HEAD: the offset the command streamer fetches next."""

    rsvd0: 2
    offset: 19  #: [20:2], Head Offset >> 2 (dword aligned)
    wrap: 11  #: [31:21], Wrap Count: times the head has wrapped


class RingTail(data.Struct):
    """RING_BUFFER_TAIL: where software has written up to."""

    rsvd0: 3
    offset: 18  #: [20:3], Tail Offset >> 3 (qword aligned)
    rsvd1: 11


RENDER_RING_BASE = 0x2000  #: MMIO base of the render command streamer
RING_TAIL = RENDER_RING_BASE + 0x30
RING_HEAD = RENDER_RING_BASE + 0x34
RING_START = RENDER_RING_BASE + 0x38  #: graphics address of the ring (4 KiB aligned)
RING_CTL = RENDER_RING_BASE + 0x3C
CS_GPR_BASE = RENDER_RING_BASE + 0x600  #: CS_GPR(n): 16 64-bit general purpose registers
CS_GPR_COUNT = 16
MI_PREDICATE_SRC0 = 0x2400  #: 64-bit predicate operand
MI_PREDICATE_SRC1 = 0x2408  #: 64-bit predicate operand

GGTT_BASE = 8 << 20  #: the GGTT's PTEs in the MMIO BAR (GTTMMADR) of Gen8+ parts
GGTT_SIZE = 8 << 20  #: bytes of PTEs: 1 Mi entries, 4 GiB of graphics memory
GGTT_PTE_BYTES = 8
GGTT_ENTRIES = GGTT_SIZE // GGTT_PTE_BYTES
GTT_PAGE_BITS = 12  #: GGTT pages are 4 KiB
GPA_BITS = 39  #: guest-physical address bits a GGTT PTE holds
GFX_ADDR_BITS = 48  #: graphics address bits the commands carry
