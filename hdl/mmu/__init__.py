"""MMU: TLB plus 2-D (EPT) / 1-D (shadow) page walker with runtime switch and flush-on-fault."""

from .mmu import MMU
from .pwc import Pwc, PwcEntry
from .tlb import Tlb, TlbEntry

__all__ = ["MMU", "Pwc", "PwcEntry", "Tlb", "TlbEntry"]
