"""The dirty tracker's registers seen from a testbench, by name and field
(:data:`~vmassist.formats.gpu.GPU_CSR`, the map the RTL decoder is rendered from)."""

from __future__ import annotations

from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from hdl.gpu import DirtyTracker
from vmassist.formats.gpu import GPU_CSR

__all__ = ["Registers"]


class Registers:
    """cocotbext-axi's ``AxiLiteMaster`` on the ``csr`` port of ``dut``."""

    def __init__(self, dut):
        self.master = AxiLiteMaster(
            AxiLiteBus.from_prefix(dut, "csr", bus_separator="__"), dut.clk, dut.rst
        )

    async def read(self, name: str) -> dict[str, int]:
        reg = GPU_CSR[name]
        return reg.unpack(await self.master.read_qword(reg.offset))

    async def write(self, name: str, **fields: int) -> None:
        reg = GPU_CSR[name]
        await self.master.write_qword(reg.offset, reg.pack(**fields))

    async def counters(self) -> dict[str, int]:
        """Every counter, named as the tracker's counter ports."""
        return {n: (await self.read(n.upper()))["count"] for n in DirtyTracker.COUNTERS}
