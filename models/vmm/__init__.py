"""Golden model of the MMU system: guest paging, EPT, shadow tables, the MMU and the VMM.

Modules
-------
memory    :class:`Memory` protocol and :class:`SparseMemory`
paging    table builders (:class:`GuestTables`, :class:`EptTables`, :class:`ShadowTables`) and
          the reference walks (:func:`ref_translate`, :func:`walk_shadow`)
port      :class:`MmuPort`, the VMM's view of an MMU, and :class:`Response`
mmu       :class:`MMUModel`, the functional model of ``hdl/mmu``
vmm       :class:`VMM`, the hypervisor software
scenario  scenario files: :func:`load_scenario`, :func:`scenario_to_toml`, :func:`random_scenario`
run       :func:`run_scenario`, :func:`run_model`, :func:`write_outputs`
"""

from .memory import Memory, SparseMemory
from .mmu import MMUModel
from .paging import (
    Allocator,
    EptTables,
    GuestTables,
    ShadowTables,
    Translation,
    ref_translate,
    walk_shadow,
)
from .port import MmuPort, Response
from .run import ARCH_FIELDS, RunResult, run_model, run_scenario, write_outputs
from .scenario import Scenario, load_scenario, random_scenario, scenario_to_toml
from .vmm import VMM

__all__ = [
    "Memory",
    "SparseMemory",
    "Allocator",
    "GuestTables",
    "EptTables",
    "ShadowTables",
    "Translation",
    "ref_translate",
    "walk_shadow",
    "MmuPort",
    "Response",
    "MMUModel",
    "VMM",
    "Scenario",
    "load_scenario",
    "random_scenario",
    "scenario_to_toml",
    "RunResult",
    "ARCH_FIELDS",
    "run_scenario",
    "run_model",
    "write_outputs",
]
