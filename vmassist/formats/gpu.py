"""GPU bit formats: the AXI4 write-address fields the dirty tracker snoops (``docs/gpu.md``)."""

import enum

from .csr import Access, RegisterMap, reg

__all__ = ["Burst", "PAGE_BITS", "APERTURE", "LOG_DEPTH", "GPU_ID", "GPU_CSR"]

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


GPU_ID = (0x47505544 << 32) | 1  # 'GPUD', version 1


#: The dirty tracker's AXI4-Lite registers (:class:`hdl.gpu.GpuTracker`).
GPU_CSR = RegisterMap(
    "gpu",
    [
        reg(
            "ID",
            0x000,
            Access.RO,
            "Identification: ASCII 'GPUD' and the version.",
            ("version", 0, 16, "register-map version"),
            ("magic", 32, 32, "0x47505544 ('GPUD')"),
        ),
        reg(
            "PARAMS",
            0x008,
            Access.RO,
            "The instance's parameters.",
            ("page_bits", 0, 8, "log2 of the page size"),
            ("aperture_bits", 8, 8, "log2 of the aperture in bytes"),
            ("log_depth", 16, 24, "entries of the log"),
        ),
        reg(
            "CTRL",
            0x010,
            Access.WO,
            "Commands. `flip` ends the current epoch; it is ignored while STATUS.flip_ready "
            "is low (the previous epoch not yet read out).",
            ("flip", 0, 1, "end the current epoch"),
        ),
        reg(
            "CONFIG",
            0x018,
            Access.RW,
            "Where the read-out and the log go, and the interrupt.",
            ("irq_en", 0, 1, "drive `irq` (level: log at or above the threshold, or full)"),
            (
                "stream",
                1,
                1,
                "1: read-out and log leave on the `dirty` and `log` streams; "
                "0: through DIRTY and LOG",
            ),
            ("threshold", 16, 24, "log level that raises the interrupt"),
        ),
        reg(
            "STATUS",
            0x020,
            Access.RO,
            "The tracker's state.",
            ("epoch", 0, 1, "the current epoch's parity"),
            ("flip_ready", 1, 1, "a flip would be taken: the previous epoch is read out"),
            ("readout_done", 2, 1, "flip_ready, and DIRTY holds no page"),
            ("overflow", 3, 1, "the ended epoch lost an update: take every page as dirty"),
            ("irq", 4, 1, "the interrupt condition, whatever irq_en says"),
            ("log_level", 32, 24, "entries in the log"),
        ),
        reg(
            "DIRTY",
            0x028,
            Access.RO,
            "The ended epoch's next dirty page, ascending (CONFIG.stream = 0). Read it, then "
            "write DIRTY_POP; `valid` low with STATUS.readout_done high: the read-out is over.",
            ("page", 0, 32, "page number within the aperture"),
            ("valid", 63, 1, "a page is here"),
        ),
        reg("DIRTY_POP", 0x030, Access.WO, "Clears the page in DIRTY; the next one follows."),
        reg(
            "LOG",
            0x038,
            Access.RO,
            "The log's oldest entry (CONFIG.stream = 0): a page's first dirty in its epoch.",
            ("page", 0, 32, "page number within the aperture"),
            ("epoch", 32, 1, "the epoch's parity"),
            ("valid", 63, 1, "an entry is here"),
        ),
        reg("LOG_POP", 0x040, Access.WO, "Removes the entry in LOG; the next one follows."),
        *(
            reg(name, 0x048 + 8 * i, Access.RO, doc, ("count", 0, 32, "wrapping count"))
            for i, (name, doc) in enumerate(
                (
                    ("WRITES", "AWs taken."),
                    ("NEW_PAGES", "Pages dirtied for the first time in their epoch."),
                    ("LOG_OVERFLOWS", "Log entries lost to a full log."),
                    ("OUTSIDE", "AWs wholly outside the aperture."),
                    ("OP_DROPS", "AWs lost for want of room (their epoch's overflow is set)."),
                )
            )
        ),
    ],
)
