"""The interface between the VMM and an MMU: the functional model or the RTL under cocotb.

The VMM is written against :class:`MmuPort` with ``async`` methods, so the same code drives
:class:`~models.vmm.mmu.MMUModel` under :mod:`asyncio` and the RTL under cocotb, whose port
awaits simulator triggers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from vmassist.formats.mmu import AccessKind, Fault, PageSize

from .memory import Memory

__all__ = ["Response", "MmuPort"]


@dataclass
class Response:
    """One ``MmuResp``, decoded.

    Members
    -------
    hpa : int
        The translation; for WP the HPA of the protected location. Meaningless (the model gives
        0) for GUEST_PF, EPT_VIOLATION and SHADOW_PF.
    fault : Fault
    size : PageSize
        Size of the TLB entry used or filled (meaningless on those faults too).
    hit : bool
        Served from the TLB without a walk.
    walk_reads : int
        Memory reads the walk issued (0 on a hit).
    flushed : int
        TLB entries a WP fault invalidated.
    cycles : int or None
        Request-to-response latency, when the port measures it (the RTL port does).
    """

    hpa: int
    fault: Fault
    size: PageSize
    hit: bool
    walk_reads: int
    flushed: int
    cycles: int | None = None


@runtime_checkable
class MmuPort(Protocol):
    """What the VMM needs from an MMU.

    Members
    -------
    mem : Memory
        The host-physical memory the MMU walks and stores to (the VMM's backdoor to it).
    """

    mem: Memory

    async def csr_write(self, name: str, value: int) -> None:
        """Write the 64-bit ``value`` to the register ``name`` of ``MMU_CSR``."""
        ...

    async def csr_read(self, name: str) -> int:
        """Read the register ``name`` of ``MMU_CSR``."""
        ...

    async def access(self, gva: int, kind: AccessKind, user: bool, wdata: int = 0) -> Response:
        """Issue one request and return its response (requests are served in order)."""
        ...
