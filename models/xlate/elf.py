"""Loading a static RISC-V Linux executable into an :class:`~models.xlate.memory.AddressSpace`."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from vmassist.errors import UserError

from .memory import PAGE_BYTES, AddressSpace

__all__ = ["Image", "load_elf", "read_elf"]

USER_LOW, USER_HIGH = 0x1000, 0x3F_0000_0000
"""Where a program's segments may lie: below the stack, inside both Sv39's and x86-64's lower
half, above the zero page."""
EM_RISCV = 243
EF_RISCV_FLOAT_ABI = 0x6
_PF_X, _PF_W, _PF_R = 1, 2, 4


@dataclass
class Segment:
    vaddr: int
    memsz: int
    data: bytes
    r: bool
    w: bool
    x: bool


@dataclass
class Image:
    """A checked executable: its entry point, loadable segments and program headers."""

    path: str
    entry: int
    segments: list[Segment]
    phdrs: bytes
    phoff_vaddr: int
    phnum: int
    symbols: dict[str, int]

    @property
    def end(self) -> int:
        """First address after the highest segment (where ``brk`` starts)."""
        return max(s.vaddr + s.memsz for s in self.segments)


def read_elf(path: str | os.PathLike[str]) -> Image:
    """Read and check ``path``: a static little-endian ELF64 RISC-V executable, soft-float ABI.

    Raises
    ------
    UserError
        Unreadable, not ELF, the wrong class, machine or type, a floating-point ABI, or a
        truncated file (a segment or header past its end).
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise UserError(name, f"cannot read: {e.strerror or e}") from None
    if raw[:4] != b"\x7fELF":
        raise UserError(name, "not an ELF file (no \\x7fELF magic)", "e_ident")
    if len(raw) < 64:
        raise UserError(
            name, f"truncated: {len(raw)} bytes, shorter than an ELF64 header", "header"
        )
    if raw[4] != 2:
        raise UserError(name, f"ELF class {raw[4]}: need ELFCLASS64 (RV64)", "e_ident[EI_CLASS]")
    if raw[5] != 1:
        raise UserError(name, "big-endian: RISC-V is little-endian", "e_ident[EI_DATA]")
    shoff, shentsize, shnum = (
        int.from_bytes(raw[a:b], "little") for a, b in ((40, 48), (58, 60), (60, 62))
    )
    if shoff + shentsize * shnum > len(raw):
        raise UserError(
            name, f"truncated: section headers end past the file's {len(raw)} bytes", "e_shoff"
        )
    try:
        elf = ELFFile(io.BytesIO(raw))
        machine = elf.header["e_machine"]
        if machine not in ("EM_RISCV", EM_RISCV):
            raise UserError(name, f"machine {machine}: need EM_RISCV (243)", "e_machine")
        if elf.header["e_type"] != "ET_EXEC":
            raise UserError(
                name, f"{elf.header['e_type']}: need a static executable (ET_EXEC)", "e_type"
            )
        if elf.header["e_flags"] & EF_RISCV_FLOAT_ABI:
            raise UserError(
                name,
                "hardware floating-point ABI: the guest is RV64IMAC, build with -mabi=lp64",
                "e_flags",
            )
        phoff, phnum, phentsize = (elf.header[k] for k in ("e_phoff", "e_phnum", "e_phentsize"))
        if phoff + phnum * phentsize > len(raw):
            raise UserError(
                name, f"truncated: program headers end past {len(raw)} bytes", "e_phoff"
            )
        segments = []
        phoff_vaddr = 0
        for i, seg in enumerate(elf.iter_segments()):
            h = seg.header
            if h["p_type"] == "PT_INTERP":
                raise UserError(name, "dynamically linked: need a static executable", "PT_INTERP")
            if h["p_type"] != "PT_LOAD" or h["p_memsz"] == 0:
                continue
            if h["p_offset"] + h["p_filesz"] > len(raw):
                raise UserError(
                    name,
                    f"truncated: segment ends at byte {h['p_offset'] + h['p_filesz']}, "
                    f"the file has {len(raw)}",
                    f"program header {i}",
                )
            if h["p_filesz"] > h["p_memsz"]:
                raise UserError(name, "p_filesz > p_memsz", f"program header {i}")
            if not USER_LOW <= h["p_vaddr"] <= h["p_vaddr"] + h["p_memsz"] <= USER_HIGH:
                raise UserError(
                    name,
                    f"segment [{h['p_vaddr']:#x}, {h['p_vaddr'] + h['p_memsz']:#x}) is outside "
                    f"the guest's user range [{USER_LOW:#x}, {USER_HIGH:#x})",
                    f"program header {i}",
                )
            if h["p_offset"] <= phoff < h["p_offset"] + h["p_filesz"]:
                phoff_vaddr = h["p_vaddr"] + phoff - h["p_offset"]
            f = h["p_flags"]
            segments.append(
                Segment(
                    h["p_vaddr"],
                    h["p_memsz"],
                    raw[h["p_offset"] : h["p_offset"] + h["p_filesz"]],
                    bool(f & _PF_R),
                    bool(f & _PF_W),
                    bool(f & _PF_X),
                )
            )
        if not segments:
            raise UserError(name, "no loadable segment", "program headers")
        symbols: dict[str, int] = {}
        symtab = elf.get_section_by_name(".symtab")
        if symtab is not None:
            for sym in symtab.iter_symbols():
                if sym.name and sym["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE"):
                    symbols.setdefault(sym.name, sym["st_value"])
    except ELFError as e:
        raise UserError(name, f"malformed ELF: {e}") from None
    except (ValueError, KeyError, IndexError) as e:  # pyelftools on a cut-off structure
        raise UserError(name, f"truncated or malformed ELF: {e}") from None
    return Image(
        name, elf.header["e_entry"], segments, raw[phoff : phoff + phnum * phentsize],
        phoff_vaddr, phnum, symbols,
    )  # fmt: skip


def load_elf(mem: AddressSpace, image: Image) -> None:
    """Map ``image``'s segments into ``mem`` (one area each) and copy their bytes in."""
    for i, s in enumerate(image.segments):
        end = s.vaddr + s.memsz
        start = s.vaddr & ~(PAGE_BYTES - 1)
        # Segments may share a page at their boundary (Linux maps it twice); merge into one area.
        prev = mem.area(start)
        if prev is not None:
            prev.r |= s.r
            prev.w |= s.w
            prev.x |= s.x
            start = prev.end
        if end > start:
            try:
                mem.add_area(start, end, r=s.r, w=s.w, x=s.x, name=f"segment {i}")
            except ValueError as e:  # two segments overlapping beyond a shared page
                raise UserError(image.path, str(e), f"PT_LOAD segment {i}") from None
    for s in image.segments:  # after the areas, so a shared page is mapped with both rights
        mem.poke(s.vaddr, s.data)
