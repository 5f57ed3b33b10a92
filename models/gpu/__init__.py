"""Golden model of the GPU system: what the dirty tracker must record (``docs/gpu.md``).

Modules
-------
axi      AXI4 write bursts: :class:`Aw`, :class:`Burst`, :func:`byte_spans`, :func:`pages_touched`
tracker  the tracker's contract: :class:`DirtyTracker`, :class:`EpochReport`, :class:`LogEntry`
trace    write-address traces: :func:`load_trace`, :func:`run_model`, :func:`write_epochs`
"""

from .axi import Aw, Burst, byte_spans, pages_touched
from .trace import FLIP, load_trace, run_model, write_epochs
from .tracker import Counters, DirtyTracker, EpochReport, LogEntry, TrackerError

__all__ = [
    "Aw",
    "Burst",
    "byte_spans",
    "pages_touched",
    "Counters",
    "DirtyTracker",
    "EpochReport",
    "LogEntry",
    "TrackerError",
    "FLIP",
    "load_trace",
    "run_model",
    "write_epochs",
]
