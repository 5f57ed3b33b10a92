"""Every top-level block ``vmassist verilog`` can emit, with its constructor parameters."""

from .gpu import GpuTracker
from .mmu import MMU
from .nic import NicFilter

__all__ = ["TOPS"]

#: block name -> factory taking the block's keyword parameters
TOPS = {
    "mmu": MMU,
    "nic": NicFilter,
    "gpu": GpuTracker,
}
