"""GPU system hardware: the dirty tracker."""

from .harness import AxiWriteSignature, TrackedWrites
from .top import GpuTracker
from .tracker import AwSnoopSignature, DirtyTracker

__all__ = ["AwSnoopSignature", "AxiWriteSignature", "DirtyTracker", "GpuTracker", "TrackedWrites"]
