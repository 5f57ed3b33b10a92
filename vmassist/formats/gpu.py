"""GPU bit formats: the AXI4 write-address fields the dirty tracker snoops (``docs/gpu.md``)."""

import enum

__all__ = ["Burst", "PAGE_BITS", "APERTURE", "LOG_DEPTH"]

PAGE_BITS = 12
"""Default page size: 4 KiB."""
APERTURE = 256 << 20
"""Default aperture: 256 MiB, addresses relative to its base."""
LOG_DEPTH = 512
"""Default depth of the PML-style log of newly dirtied pages."""


class Burst(enum.IntEnum):
    """``awburst``."""

    FIXED = 0
    INCR = 1
    WRAP = 2
    RESERVED = 3  #: not a burst type AXI4 allows; tracked conservatively (``docs/gpu.md``)
