"""GPU system hardware: the dirty tracker."""

from .tracker import AwSnoopSignature, DirtyTracker

__all__ = ["AwSnoopSignature", "DirtyTracker"]
