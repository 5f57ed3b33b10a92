"""Fast integer codecs for the :mod:`vmassist.formats.mmu` entry layouts.

Decoding through Amaranth's ``Layout.from_bits`` costs tens of microseconds per field; the
walkers decode several entries per access. :class:`Codec` derives each field's offset and width
from the ``data.Struct`` itself (never re-typed by hand) and exposes them as
:class:`~vmassist.formats.csr.Field` helpers.
"""

from __future__ import annotations

from amaranth.lib import data

from vmassist.formats.csr import Field
from vmassist.formats.mmu import EPTE, X86PTE, ShadowPTE

__all__ = ["Codec", "X86", "EPT", "SHADOW"]


class Codec:
    """Integer encode/decode for one :class:`~amaranth.lib.data.Struct` layout.

    Parameters
    ----------
    struct : type
        A ``data.Struct`` subclass (or anything ``data.Layout.cast`` accepts).

    Members
    -------
    width : int
        Width of the layout in bits.
    fields : dict of str to Field
        Offset and width of every field, taken from the layout.
    """

    def __init__(self, struct: type) -> None:
        layout = data.Layout.cast(struct)
        self.name = getattr(struct, "__name__", repr(struct))
        self.width: int = layout.size
        self.fields: dict[str, Field] = {name: Field(name, f.offset, f.width) for name, f in layout}

    def __getitem__(self, name: str) -> Field:
        return self.fields[name]

    def decode(self, value: int) -> dict[str, int]:
        """Every field of ``value``, by name."""
        return {name: f.get(value) for name, f in self.fields.items()}

    def encode(self, **values: int) -> int:
        """An entry with the named fields set and all others zero.

        Raises
        ------
        KeyError
            A field the layout does not have.
        ValueError
            A value that does not fit its field.
        """
        word = 0
        for name, value in values.items():
            word |= self.fields[name].put(int(value))
        return word

    def replace(self, word: int, **values: int) -> int:
        """``word`` with the named fields replaced."""
        for name, value in values.items():
            f = self.fields[name]
            word = (word & ~(((1 << f.width) - 1) << f.offset)) | f.put(int(value))
        return word

    def __repr__(self) -> str:
        return f"Codec({self.name})"


X86 = Codec(X86PTE)  #: x86-64 paging-structure entries
EPT = Codec(EPTE)  #: EPT paging-structure entries
SHADOW = Codec(ShadowPTE)  #: VMM-built shadow entries
