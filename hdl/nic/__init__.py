"""NIC: cooperative packet filtering with side bounce to the VMM (``docs/nic.md``)."""

from .classify import Classifier
from .egress import Egress
from .filter import NicFilter
from .parser import Parser

__all__ = ["Parser", "Classifier", "Egress", "NicFilter"]
