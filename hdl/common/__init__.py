"""Building blocks shared by every system: AXI4-Lite master, CSR slave, AXI4-Stream signature,
frame FIFO, credit FIFO, frame arbiter, stream register slice and pipelined block RAM."""

from .arbiter import FrameArbiter
from .axil import AxiLiteMaster, AxiLiteSignature, MemCmd, MemResp
from .axis import AxiStreamSignature, FrameBeat
from .creditfifo import CreditFifo, Credits
from .csr import CsrBlock
from .fifo import PacketFifo
from .ram import PipelinedRam
from .regslice import StreamRegister

__all__ = [
    "AxiLiteSignature",
    "AxiLiteMaster",
    "MemCmd",
    "MemResp",
    "CsrBlock",
    "AxiStreamSignature",
    "FrameBeat",
    "PacketFifo",
    "CreditFifo",
    "Credits",
    "PipelinedRam",
    "FrameArbiter",
    "StreamRegister",
]
