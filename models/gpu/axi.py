"""What an AXI4 write burst touches: the bytes and the pages an accepted AW may write.

The dirty tracker sees only the write-address channel, so a page counts as written when any
byte the burst addresses lies in it, whatever the write strobes later say (a superset of the
bytes actually written, as KVM's dirty logging is: a page may be reported dirty and be
unchanged, never the other way round).

Addresses follow the AXI4 specification (ARM IHI 0022, "Burst address"): the first beat at
``awaddr``, every later beat at the aligned address plus its index times the beat size, and a
WRAP burst wrapping at the boundary aligned to its total size. The specification forbids some
bursts; the tracker may still see them from a faulty master, so it tracks them rather than
refusing them. An INCR that crosses 4 KiB and an unaligned WRAP get the same arithmetic. A WRAP
that is not 2, 4, 8 or 16 beats long, and the reserved burst type, have no defined addresses,
so they are taken to address every byte of any container of their total size that holds
``awaddr``: ``[awaddr - total + 1, awaddr + total)``, which holds the INCR bytes too.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmassist.formats.gpu import APERTURE, PAGE_BITS, Burst

__all__ = ["Burst", "Aw", "byte_spans", "pages_touched"]


@dataclass(frozen=True)
class Aw:
    """One accepted write address: ``len`` is ``awlen`` (beats - 1), ``size`` is ``awsize``
    (log2 of the bytes per beat)."""

    addr: int
    len: int
    size: int
    burst: Burst

    def __post_init__(self) -> None:
        if self.addr < 0:
            raise ValueError(f"awaddr must not be negative, not {self.addr}")
        if not 0 <= self.len <= 255:
            raise ValueError(f"awlen must be 0 to 255, not {self.len}")
        if not 0 <= self.size <= 7:
            raise ValueError(f"awsize must be 0 to 7, not {self.size}")
        object.__setattr__(self, "burst", Burst(self.burst))

    @property
    def beats(self) -> int:
        return self.len + 1

    @property
    def beat_bytes(self) -> int:
        return 1 << self.size


def byte_spans(aw: Aw) -> list[tuple[int, int]]:
    """The bytes ``aw`` addresses, as one or two half-open ``[lo, hi)`` intervals.

    FIXED writes one beat's bytes again and again; INCR runs from ``awaddr`` to the end of its
    last beat; WRAP covers its whole wrap container except the bytes of the first beat's slot
    below ``awaddr`` (none when the burst is aligned, as the specification requires), so the
    second interval is the part of the container below the first beat. A WRAP of another
    length and the reserved type get the conservative span of the module's docstring.
    """
    nb = aw.beat_bytes
    aligned = aw.addr & ~(nb - 1)
    if aw.burst == Burst.FIXED:
        return [(aw.addr, aligned + nb)]
    total = nb * aw.beats
    if aw.burst == Burst.INCR:
        return [(aw.addr, aligned + total)]
    if aw.burst == Burst.RESERVED or aw.beats not in (2, 4, 8, 16):
        return [(max(0, aw.addr - total + 1), aw.addr + total)]
    boundary = aw.addr // total * total
    spans = [(aw.addr, boundary + total)]
    if aligned > boundary:
        spans.append((boundary, aligned))
    return spans


def pages_touched(aw: Aw, *, page_bits: int = PAGE_BITS, aperture: int = APERTURE) -> list[int]:
    """The page numbers (``addr >> page_bits``) below ``aperture`` bytes that ``aw`` touches,
    in ascending order; empty for a burst wholly outside the aperture.

    Raises
    ------
    ValueError
        ``aperture`` is not a positive whole number of pages.
    """
    if aperture <= 0 or aperture % (1 << page_bits):
        raise ValueError(f"aperture must be a positive multiple of {1 << page_bits}: {aperture}")
    pages: set[int] = set()
    last_page = (aperture - 1) >> page_bits
    for lo, hi in byte_spans(aw):
        first, last = lo >> page_bits, min((hi - 1) >> page_bits, last_page)
        pages.update(range(first, last + 1))
    return sorted(pages)
