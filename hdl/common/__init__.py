"""Building blocks shared by every system: AXI4-Lite master, CSR slave."""

from .axil import AxiLiteMaster, AxiLiteSignature, MemCmd, MemResp
from .csr import CsrBlock

__all__ = ["AxiLiteSignature", "AxiLiteMaster", "MemCmd", "MemResp", "CsrBlock"]
