"""Building blocks shared by every system: AXI4-Lite master, CSR slave, AXI4-Stream signature,
frame FIFO, frame arbiter and pipelined block RAM."""

from .arbiter import FrameArbiter
from .axil import AxiLiteMaster, AxiLiteSignature, MemCmd, MemResp
from .axis import AxiStreamSignature, FrameBeat
from .csr import CsrBlock
from .fifo import PacketFifo
from .ram import PipelinedRam

__all__ = [
    "AxiLiteSignature",
    "AxiLiteMaster",
    "MemCmd",
    "MemResp",
    "CsrBlock",
    "AxiStreamSignature",
    "FrameBeat",
    "PacketFifo",
    "PipelinedRam",
    "FrameArbiter",
]
