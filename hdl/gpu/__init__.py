"""GPU system hardware: the dirty tracker."""

from .harness import AxiWriteSignature, TrackedWrites
from .tracker import AwSnoopSignature, DirtyTracker

__all__ = ["AwSnoopSignature", "AxiWriteSignature", "DirtyTracker", "TrackedWrites"]
