"""Every top-level block ``vmassist verilog`` can emit, with its constructor parameters."""

from .mmu import MMU

__all__ = ["TOPS"]

#: block name -> factory taking the block's keyword parameters
TOPS = {
    "mmu": MMU,
}
