"""The translation layer's memory behaviour as an MMU scenario, so it can drive the MMU hardware.

Every translation the softmmu asked of the VMM's tables (:attr:`AddressSpace.trace`) becomes an
``access`` op of a :class:`~models.vmm.scenario.Scenario` whose guest and EPT mappings are the
ones the guest's Linux built; replayed through the VMM model on the MMU (model or RTL, EPT or
shadow mode), each access must give the host-physical address the translation layer used.
"""

from __future__ import annotations

from models.vmm.paging import guest_leaf, ref_translate
from models.vmm.scenario import AccessOp, EptMapping, GuestMapping, Scenario
from vmassist.formats.mmu import AccessKind, PageSize

from .memory import RAM_HPA, AddressSpace

__all__ = ["mmu_scenario", "expected_hpas"]


def mmu_scenario(mem: AddressSpace, mode: str = "shadow", *, limit: int | None = None) -> Scenario:
    """The scenario replaying ``mem``'s translations (the first ``limit``) in ``mode``."""
    guest = []
    for gva, level, _ in mem.guest.mappings():
        leaf = guest_leaf(mem.tables, mem.gcr3, mem.eptp, gva)
        assert leaf is not None and level == 0
        guest.append(
            GuestMapping(gva, leaf.gpa, PageSize.SIZE_4K, writable=leaf.rw, user=True, nx=leaf.xd)
        )
    step = PageSize.SIZE_2M.bytes
    ept = [
        EptMapping(off, RAM_HPA + off, PageSize.SIZE_2M) for off in range(0, mem.ram_bytes, step)
    ]
    trace = mem.trace if limit is None else mem.trace[:limit]
    ops = tuple(AccessOp(page, kind, user=True) for page, kind in trace)
    return Scenario(vpid=1, mode=mode, guest=tuple(guest), ept=tuple(ept), ops=ops,
                    source="<xlate trace>")  # fmt: skip


def expected_hpas(mem: AddressSpace, scenario: Scenario) -> list[int]:
    """The host-physical address of each access of ``scenario`` in ``mem``'s own tables."""
    out = []
    for op in scenario.ops:
        assert isinstance(op, AccessOp)
        t = ref_translate(mem.tables, mem.gcr3, mem.eptp, op.gva, AccessKind(op.kind), True)
        assert t.ok
        out.append(t.hpa)
    return out
