"""The hypervisor software of ``docs/mmu.md`` ("VMM"), driving any MMU port.

It builds the guest's x86-64 tables, the EPT and the shadow tables in the port's memory, programs
the MMU's registers, switches between EPT and shadow mode at run time, handles WP and SHADOW_PF
faults, and in shadow mode checks every hardware answer against the reference 2-D walk (runtime
verification). Everything it does besides answering accesses is recorded in :attr:`VMM.events`.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any

from vmassist.formats.mmu import (
    GPT_GPA_BASE,
    GPT_PAGES,
    MMU_CSR,
    PAGE_SHIFT,
    AccessKind,
    Fault,
    FlushOp,
    PageSize,
)

from .bits import X86
from .memory import PAGE_BYTES, Memory
from .paging import (
    GUEST_TABLE_PAGES,
    HOST_TABLE_BASE,
    PT_BASE_DEFAULT,
    VA_MASK,
    WINDOW_GVA,
    Allocator,
    EptTables,
    GuestTables,
    ShadowTables,
    Translation,
    canonical,
    ref_translate,
    zero_page,
)
from .port import MmuPort, Response
from .scenario import (
    AccessOp,
    InjectOp,
    InvlpgOp,
    Op,
    PteWriteOp,
    Scenario,
    SwitchOp,
)

__all__ = ["VMM", "MODES", "FAULT_NAMES", "fault_name"]

MODES = ("ept", "shadow")
FAULT_NAMES: dict[Fault, str | None] = {
    Fault.NONE: None,
    Fault.GUEST_PF: "guest_pf",
    Fault.EPT_VIOLATION: "ept_violation",
}
_KIND_NAMES = {AccessKind.READ: "read", AccessKind.WRITE: "write", AccessKind.FETCH: "fetch"}
_PTE_FIELDS = {"present": "p", "writable": "rw", "user": "us", "nx": "xd"}
_HOST_TABLE_PAGES = 1 << 24


def fault_name(fault: Fault) -> str | None:
    """The results-file name of an architectural fault (None for success)."""
    try:
        return FAULT_NAMES[fault]
    except KeyError:
        raise ValueError(f"{fault!r} is not an architectural result") from None


@dataclass
class _Outcome:
    """The architectural answer to one access, and what the hardware did for it."""

    fault: Fault
    hpa: int | None
    hit: bool
    walk_reads: int
    cycles: int | None
    verified: bool


class VMM:
    """The VMM model.

    Parameters
    ----------
    port : MmuPort
        The MMU (functional model or RTL) and its memory.
    log : logging.Logger, optional
        Debug log of every operation.
    verify : bool
        Runtime verification in shadow mode (``docs/mmu.md``); on by default.

    Members
    -------
    events : list of dict
        ``{"op": index or None, "type": ..., ...}`` for everything but the access results:
        ``setup``, ``switch``, ``pte_write``, ``wp``, ``shadow_pf``, ``shadow_fill``,
        ``emulate``, ``rv_mismatch``, ``flush``, ``inject``.
    mode : str
        ``"ept"`` or ``"shadow"``.
    vpid, gcr3, eptp, pt_base : int
        As programmed into the MMU.
    guest : GuestTables
    ept : EptTables
    shadow : ShadowTables
    """

    def __init__(
        self, port: MmuPort, *, log: logging.Logger | None = None, verify: bool = True
    ) -> None:
        self.port = port
        self.mem: Memory = port.mem
        self.log = log or logging.getLogger("models.vmm")
        self.verify = verify
        self.events: list[dict[str, Any]] = []
        self.op: int | None = None
        self.mode = "ept"
        self.vpid = 0
        self.pt_base = PT_BASE_DEFAULT
        self.gcr3 = 0
        self.eptp = 0
        self._wpt: list[int] = []

    # ---- helpers -----------------------------------------------------------------------------

    def _event(self, type_: str, **fields: Any) -> None:
        ev = {"op": self.op, "type": type_, **fields}
        self.events.append(ev)
        self.log.debug("event %s", ev)

    async def _csr(self, name: str, **fields: int) -> None:
        await self.port.csr_write(name, MMU_CSR[name].pack(**fields))

    def reference(self, gva: int, kind: AccessKind, user: bool) -> Translation:
        """The reference 2-D translation of the tables in force (pure)."""
        return ref_translate(self.mem, self.gcr3, self.eptp, gva, kind, user)

    def _in_pt_region(self, hpa: int) -> bool:
        return self.pt_base <= hpa < self.pt_base + GPT_PAGES * PAGE_BYTES

    # ---- set-up and mode switches --------------------------------------------------------------

    async def setup(self, scenario: Scenario) -> None:
        """Build the EPT, the guest tables and the PT window; program GCR3, EPTP, PT_BASE and
        CTRL (vpid, pwc_en=1); enter shadow mode when the scenario starts there.

        First waits for the MMU to finish clearing its write-protect table after reset
        (STATUS.init), as WPT writes before then are ignored."""
        status = MMU_CSR["STATUS"]
        while status.unpack(await self.port.csr_read("STATUS"))["init"]:
            pass
        self.vpid = scenario.vpid
        self.host_alloc = Allocator(
            HOST_TABLE_BASE,
            _HOST_TABLE_PAGES,
            name="host table",
            zero=lambda a: zero_page(self.mem, a),
        )
        self.guest_alloc = Allocator(GPT_GPA_BASE, GUEST_TABLE_PAGES, name="guest table")
        self.ept = EptTables(self.mem, self.host_alloc)
        for m in scenario.ept:
            self.ept.map(m.gpa, m.hpa, m.size, r=m.r, w=m.w, x=m.x)
        for off in range(0, GPT_PAGES * PAGE_BYTES, PageSize.SIZE_2M.bytes):
            self.ept.map(
                GPT_GPA_BASE + off, self.pt_base + off, PageSize.SIZE_2M, r=True, w=True, x=False
            )
        self.guest = GuestTables(self.mem, self.guest_alloc, self.pt_base)
        for g in scenario.guest:
            self.guest.map(g.gva, g.gpa, g.size, writable=g.writable, user=g.user, nx=g.nx)
        for off in range(0, GPT_PAGES * PAGE_BYTES, PageSize.SIZE_2M.bytes):
            self.guest.map(
                WINDOW_GVA + off,
                GPT_GPA_BASE + off,
                PageSize.SIZE_2M,
                writable=True,
                user=False,
                nx=True,
            )
        self.gcr3 = self.guest.cr3
        self.eptp = self.ept.eptp
        self.shadow = ShadowTables(
            self.mem, self.host_alloc, gcr3=self.gcr3, eptp=self.eptp, pt_base=self.pt_base
        )
        await self._csr("GCR3", pfn=self.gcr3 >> PAGE_SHIFT)
        await self._csr("EPTP", pfn=self.eptp >> PAGE_SHIFT)
        await self._csr("PT_BASE", pfn=self.pt_base >> PAGE_SHIFT)
        self.mode = "ept"
        await self._csr("CTRL", mode=0, pwc_en=1, vpid=self.vpid)
        self._event(
            "setup",
            mode=scenario.mode,
            vpid=self.vpid,
            guest_tables=len(self.guest.pages()),
            ept_tables=len(self.host_alloc),
        )
        if scenario.mode == "shadow":
            await self.switch("shadow")

    async def switch(self, mode: str) -> None:
        """Switch mode at run time. To shadow: prepopulate the shadow, protect every guest
        page-table page in the WPT, set SCR3, then CTRL.mode. To EPT: clear the WPT, then
        CTRL.mode. TLB entries are mode-tagged: no flush either way."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if mode == "shadow":
            leaves = self.shadow.prepopulate()
            pages = [(gpa - GPT_GPA_BASE) >> PAGE_SHIFT for gpa in self.guest.pages()]
            for page in pages:
                await self._csr("WPT", page=page, set=1)
            self._wpt = pages
            await self._csr("SCR3", pfn=self.shadow.scr3 >> PAGE_SHIFT)
            await self._csr("CTRL", mode=1, pwc_en=1, vpid=self.vpid)
            self._event(
                "switch",
                mode=mode,
                shadow_leaves=leaves,
                shadow_tables=len(self.shadow.pages),
                protected=len(pages),
            )
        else:
            for page in self._wpt:
                await self._csr("WPT", page=page, set=0)
            n = len(self._wpt)
            self._wpt = []
            await self._csr("CTRL", mode=0, pwc_en=1, vpid=self.vpid)
            self._event("switch", mode=mode, unprotected=n)
        self.mode = mode

    # ---- accesses ----------------------------------------------------------------------------

    async def _hw(self, gva: int, kind: AccessKind, user: bool, data: int) -> Response:
        resp = await self.port.access(gva & VA_MASK, kind, user, data)
        if resp.fault == Fault.BUS_ERROR:
            raise RuntimeError(f"bus error on access to GVA {canonical(gva):#x}")
        return resp

    async def _translate(self, gva: int, kind: AccessKind, user: bool, data: int) -> _Outcome:
        """One access with the VMM's fault handling, verification and store emulation."""
        kind = AccessKind(kind)
        shadow = self.mode == "shadow"
        ref = self.reference(gva, kind, user) if shadow else None
        resp = await self._hw(gva, kind, user, data)
        hit, reads, cycles = resp.hit, resp.walk_reads, resp.cycles
        answer: tuple[Fault, int | None]
        stored_at: int | None = None  # where the hardware performed the store
        wp: Response | None = None
        if resp.fault == Fault.SHADOW_PF:
            ref = ref or self.reference(gva, kind, user)
            if not ref.ok:
                self._event(
                    "shadow_pf",
                    gva=canonical(gva),
                    kind=_KIND_NAMES[kind],
                    resolution=fault_name(ref.fault),
                )
                resp = None
                answer = ref.arch()
            else:
                present = self.shadow.fill(gva)
                self._event("shadow_fill", gva=canonical(gva), present=present)
                resp = await self._hw(gva, kind, user, data)
                reads += resp.walk_reads
                cycles = None if cycles is None or resp.cycles is None else cycles + resp.cycles
                if resp.fault == Fault.SHADOW_PF:
                    self._event("emulate", gva=canonical(gva), kind=_KIND_NAMES[kind], hpa=ref.hpa)
                    resp = None
                    answer = ref.arch()
        if resp is not None:
            if resp.fault == Fault.NONE:
                answer = (Fault.NONE, resp.hpa)
                if kind == AccessKind.WRITE:
                    stored_at = resp.hpa
            elif resp.fault == Fault.WP:
                answer = (Fault.NONE, resp.hpa)
                wp = resp
            elif resp.fault in (Fault.GUEST_PF, Fault.EPT_VIOLATION):
                answer = (resp.fault, None)
            else:  # a SHADOW_PF in EPT mode, or after a fill: the hardware broke its contract
                answer = (resp.fault, None)

        verified = False
        if shadow and self.verify:
            assert ref is not None
            if answer == ref.arch():
                verified = True
            else:
                self._event(
                    "rv_mismatch",
                    gva=canonical(gva),
                    kind=_KIND_NAMES[kind],
                    hw_fault=answer[0].name.lower(),
                    hw_hpa=answer[1],
                    ref_fault=fault_name(ref.fault),
                    ref_hpa=ref.arch()[1],
                )
                answer = ref.arch()
                await self._flush_invlpg(gva, reason="rv")
        if answer[0] not in FAULT_NAMES:
            raise RuntimeError(f"MMU answered {answer[0].name} to GVA {canonical(gva):#x}")

        if kind == AccessKind.WRITE and answer[0] == Fault.NONE and stored_at != answer[1]:
            # A WP fault, an emulated access or a corrected answer: the VMM does the store.
            hpa = answer[1]
            assert hpa is not None
            self.mem.write64(hpa & ~7, data)
            resynced = None
            if self.mode == "shadow" and self._in_pt_region(hpa):
                resynced = self.shadow.resync(GPT_GPA_BASE + ((hpa & ~7) - self.pt_base))
            if wp is not None:
                self._event(
                    "wp",
                    gva=canonical(gva),
                    hpa=wp.hpa,
                    data=data,
                    flushed=wp.flushed,
                    resynced=resynced,
                )
        return _Outcome(answer[0], answer[1], hit, reads, cycles, verified)

    async def access(
        self, gva: int, kind: AccessKind, user: bool = False, data: int = 0
    ) -> dict[str, Any]:
        """A guest access; returns its result record (``results.jsonl``)::

            {"op", "gva", "kind", "user", "hpa" (int or None),
             "fault" (None, "guest_pf" or "ept_violation"), "hit", "walk_reads",
             "cycles" (the port's, or None), "verified" (shadow mode: checked and equal)}

        ``hit`` is the first hardware attempt's; ``walk_reads`` and ``cycles`` add up every
        hardware attempt the access took (a SHADOW_PF retry).
        """
        kind = AccessKind(kind)
        out = await self._translate(gva, kind, bool(user), data)
        result = {
            "op": self.op,
            "gva": canonical(gva),
            "kind": _KIND_NAMES[kind],
            "user": bool(user),
            "hpa": out.hpa,
            "fault": fault_name(out.fault),
            "hit": out.hit,
            "walk_reads": out.walk_reads,
            "cycles": out.cycles,
            "verified": out.verified,
        }
        self.log.debug("access %s", result)
        return result

    # ---- guest page-table writes ---------------------------------------------------------------

    def pte_hpa(self, gva: int) -> int:
        """HPA of the guest leaf entry that maps ``gva`` (a scenario mapping)."""
        return self.guest.to_hpa(self.guest.leaf_pte_gpa(gva)[1])

    def pte_store(self, gva: int, **fields: int | bool) -> tuple[int, int]:
        """``(window GVA of the PTE, new PTE value)`` for a guest store changing the PTE that
        maps ``gva``: ``present``, ``gpa``, ``writable``, ``user``, ``nx``. Nothing is stored.

        Raises
        ------
        KeyError
            ``gva`` is not covered by a guest mapping.
        ValueError
            An unknown field, or a ``gpa`` not aligned to the page size.
        """
        level, pte_gpa = self.guest.leaf_pte_gpa(gva)
        value = self.mem.read64(self.guest.to_hpa(pte_gpa))
        changes: dict[str, int] = {}
        for name, v in fields.items():
            if name == "gpa":
                if int(v) & (PageSize(level).bytes - 1):
                    raise ValueError(f"gpa {int(v):#x} is not aligned to the page size")
                changes["pfn"] = int(v) >> PAGE_SHIFT
            elif name in _PTE_FIELDS:
                changes[_PTE_FIELDS[name]] = int(bool(v))
            else:
                raise ValueError(f"unknown PTE field {name!r}")
        return WINDOW_GVA + (pte_gpa - GPT_GPA_BASE), X86.replace(value, **changes)

    async def guest_pte_write(self, gva: int, **fields: int | bool) -> dict[str, Any]:
        """The guest stores a new value into the PTE that maps ``gva``, through the MMU at the
        PTE's window address (it may take a WP fault, which the VMM handles)."""
        pte_gva, new = self.pte_store(gva, **fields)
        pte_hpa = self.pte_hpa(gva)
        old = self.mem.read64(pte_hpa)
        self._event("pte_write", gva=canonical(gva), pte_hpa=pte_hpa, old=old, new=new)
        out = await self._translate(pte_gva, AccessKind.WRITE, False, new)
        if out.fault != Fault.NONE or self.mem.read64(pte_hpa) != new:
            # Only a broken (or fault-injected) MMU gets here; recorded so runs can be compared.
            self._event(
                "pte_write_lost", gva=canonical(gva), fault=fault_name(out.fault), hpa=out.hpa
            )
        return {
            "gva": canonical(gva),
            "pte_gva": pte_gva,
            "old": old,
            "new": new,
            "hit": out.hit,
            "walk_reads": out.walk_reads,
        }

    async def handle_wp(self, gva: int, resp: Response, data: int) -> None:
        """Handle a WP fault the caller got for its own store of ``data`` at ``gva``: emulate
        the store, and in shadow mode resync the shadow derived from that location."""
        self.mem.write64(resp.hpa & ~7, data)
        resynced = None
        if self.mode == "shadow" and self._in_pt_region(resp.hpa):
            resynced = self.shadow.resync(GPT_GPA_BASE + ((resp.hpa & ~7) - self.pt_base))
        self._event(
            "wp",
            gva=canonical(gva),
            hpa=resp.hpa,
            data=data,
            flushed=resp.flushed,
            resynced=resynced,
        )

    def backdoor_remap(self, gva: int, new_gpa: int) -> None:
        """Point the PTE that maps ``gva`` at ``new_gpa`` behind the MMU's back (as the VMM does
        after a handled WP fault); resyncs the shadow in shadow mode, flushes nothing."""
        _, value = self.pte_store(gva, gpa=new_gpa)
        pte_hpa = self.pte_hpa(gva)
        self.mem.write64(pte_hpa, value)
        if self.mode == "shadow":
            self.shadow.resync(self.guest.leaf_pte_gpa(gva)[1])

    def mappable_page(self, rng: random.Random) -> tuple[int, int] | None:
        """A present 4K guest page's GVA and a different 4K GPA to remap it to (another guest
        page's), or None when the guest has no present 4K page."""
        pages = []
        for gva, level, egpa in self.guest.mappings():
            if level == 0 and (gva >> 39) & 0x1FF != 511:
                value = self.mem.read64(self.guest.to_hpa(egpa))
                if X86["p"].get(value):
                    pages.append((gva, X86["pfn"].get(value) << PAGE_SHIFT))
        if not pages:
            return None
        pages.sort()
        gva, gpa = rng.choice(pages)
        others = sorted({g for _, g in pages if g != gpa})
        new_gpa = rng.choice(others) if others else gpa ^ PAGE_BYTES
        return gva, new_gpa

    # ---- flushes and debug -------------------------------------------------------------------

    async def _flush_invlpg(self, gva: int, *, reason: str) -> None:
        await self._csr("FLUSH_GVA", gva=gva & VA_MASK)
        await self._csr("FLUSH", op=FlushOp.INVLPG, vpid=self.vpid)
        self._event("flush", flush="invlpg", gva=canonical(gva), reason=reason)

    async def invlpg(self, gva: int) -> None:
        """The guest's INVLPG: FLUSH op INVLPG of (gva, vpid)."""
        await self._flush_invlpg(gva, reason="guest")

    async def inject(self, entry: int, mask: int) -> None:
        """Fault injection (debug): XOR ``mask`` into TLB entry ``entry``'s page frame."""
        await self._csr("INJ_MASK", mask=mask)
        await self._csr("INJ", entry=entry)
        self._event("inject", entry=entry, mask=mask)

    # ---- scenario ops ------------------------------------------------------------------------

    async def run_op(self, index: int, op: Op) -> dict[str, Any] | None:
        """Execute scenario op ``index``; returns the result record of an ``access``."""
        self.op = index
        try:
            if isinstance(op, AccessOp):
                return await self.access(op.gva, op.kind, op.user, op.data)
            if isinstance(op, SwitchOp):
                await self.switch(op.mode)
            elif isinstance(op, PteWriteOp):
                await self.guest_pte_write(op.gva, **op.fields())
            elif isinstance(op, InvlpgOp):
                await self.invlpg(op.gva)
            elif isinstance(op, InjectOp):
                await self.inject(op.entry, op.mask)
            else:
                raise TypeError(f"unknown op {op!r}")
            return None
        finally:
            self.op = None
