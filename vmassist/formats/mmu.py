"""MMU bit formats: x86-64 paging entries, EPT entries, shadow entries, the request and
response streams, and the MMU's CSR map.

Entry formats follow the Intel SDM vol. 3 (4-level paging, table 4-14..4-20; EPT, table 29-1..29-6)
with MAXPHYADDR = :data:`PA_BITS`. Shadow entries are x86 entries whose software-available bits hold
a back-pointer to the guest PTE they were derived from (see :class:`ShadowPTE`).
"""

import enum

from amaranth.lib import (
    data,
)  # no "from __future__ import annotations": Struct reads real annotations

from .csr import Access, RegisterMap, reg

__all__ = [
    "PA_BITS",
    "VA_BITS",
    "VPID_BITS",
    "PAGE_SHIFT",
    "LEVELS",
    "GPT_GPA_BASE",
    "GPT_PAGES",
    "TABLE_HPA_MIN",
    "PageSize",
    "AccessKind",
    "Fault",
    "FlushOp",
    "X86PTE",
    "EPTE",
    "ShadowPTE",
    "MmuReq",
    "MmuResp",
    "level_shift",
    "level_index",
    "rsvd_pfn_mask",
    "MMU_CSR",
    "MMU_ID",
    "MMU_COUNTERS",
]

PA_BITS = 46  #: MAXPHYADDR, for guest-physical and host-physical addresses
VA_BITS = 48  #: linear-address width (4-level paging)
VPID_BITS = 16
PAGE_SHIFT = 12
LEVELS = 4  #: levels 3 (PML4), 2 (PDPT), 1 (PD), 0 (PT)

GPT_GPA_BASE = 0xFF00_0000  #: the guest's page-table pages live in GPA [GPT_GPA_BASE, 4 GiB)
GPT_PAGES = 4096  #: 16 MiB of guest page-table pages
TABLE_HPA_MIN = 1 << 40  #: EPT, shadow and page-table storage lives at HPA >= 1 TiB


class PageSize(enum.IntEnum):
    """Page size, also the level of the leaf entry (0 = PT, 1 = PD, 2 = PDPT)."""

    SIZE_4K = 0
    SIZE_2M = 1
    SIZE_1G = 2

    @property
    def bytes(self) -> int:
        return 1 << level_shift(self.value)


class AccessKind(enum.IntEnum):
    READ = 0
    WRITE = 1
    FETCH = 2


class Fault(enum.IntEnum):
    NONE = 0
    GUEST_PF = 1  #: guest page fault (#PF): not present, reserved bit, or permission
    EPT_VIOLATION = 2  #: EPT violation or misconfiguration, on a guest-table or final access
    WP = 3  #: guest store to a protected guest page-table location; not performed
    SHADOW_PF = 4  #: shadow mode: the shadow entry is missing or denies the access (VMM decides)
    BUS_ERROR = 5  #: the memory port answered SLVERR/DECERR


class FlushOp(enum.IntEnum):
    INVLPG = 0  #: the entries of (FLUSH_GVA, vpid) in both modes
    VPID = 1  #: every entry of vpid
    ALL = 2  #: every TLB entry and the page-walk cache
    PWC = 3  #: the page-walk cache and every EPT-mode entry (after an EPT change, as INVEPT)


def level_shift(level: int) -> int:
    return PAGE_SHIFT + 9 * level


def level_index(addr: int, level: int) -> int:
    """The 9-bit table index that ``addr`` selects at ``level``."""
    return (addr >> level_shift(level)) & 0x1FF


def rsvd_pfn_mask(level: int, *, ept: bool) -> int:
    """PFN bits that must be zero in a leaf at ``level``: large-page alignment, and bits at or
    above MAXPHYADDR.

    For x86 large pages bit 12 is the PAT bit and is allowed; for EPT large pages it is reserved.
    """
    high = ((1 << 40) - 1) & ~((1 << (PA_BITS - PAGE_SHIFT)) - 1)
    if level == 0:
        return high
    low = (1 << (9 * level)) - 1
    if not ept:
        low &= ~1
    return high | low


class X86PTE(data.Struct):
    """An x86-64 4-level paging-structure entry (PML4E, PDPTE, PDE or PTE)."""

    p: 1
    rw: 1
    us: 1
    pwt: 1
    pcd: 1
    a: 1
    d: 1
    ps: 1  #: page size (PDPTE/PDE); PAT in a PTE; reserved in a PML4E
    g: 1
    avl_lo: 3
    pfn: 40
    avl_hi: 7
    pk: 4
    xd: 1


class EPTE(data.Struct):
    """An EPT paging-structure entry."""

    r: 1
    w: 1
    x: 1
    mt: 3
    ipat: 1
    ps: 1  #: large page (PDPTE/PDE); reserved in a PML4E
    a: 1
    d: 1
    xu: 1
    ign_lo: 1
    pfn: 40
    ign_hi: 11
    sve: 1


class ShadowPTE(data.Struct):
    """A VMM-built shadow entry: an x86 entry mapping GVA -> HPA directly.

    Its software-available bits carry a back-pointer to the guest PTE the leaf came from, so the
    hardware can tag the TLB entry with that PTE's HPA and flush exactly the entries derived
    from it:
    ``PT_BASE + gpt_page * 4096 + 8 * level_index(gva, glevel)``, valid when ``bp`` is set.
    """

    p: 1
    rw: 1
    us: 1
    pwt: 1
    pcd: 1
    a: 1
    d: 1
    ps: 1
    g: 1
    glevel: 2  #: level of the guest leaf PTE (0 PTE, 1 PDE, 2 PDPTE)
    bp: 1  #: back-pointer valid
    pfn: 40
    gpt_page: 11  #: guest page-table page, counted from PT_BASE
    xd: 1


class MmuReq(data.Struct):
    """A translation request. A WRITE stores ``wdata`` to the 8-byte word it translates to."""

    gva: VA_BITS
    kind: 2  #: :class:`AccessKind`
    user: 1  #: CPL3 access
    wdata: 64


class MmuResp(data.Struct):
    """The answer to one :class:`MmuReq`, in request order."""

    hpa: PA_BITS  #: translation; for WP, the HPA of the protected location
    fault: 3  #: :class:`Fault`
    size: 2  #: :class:`PageSize` of the TLB entry used or filled
    hit: 1  #: answered from the TLB without a walk
    walk_reads: 5  #: memory reads the walk issued (0 on a hit)
    flushed: 7  #: TLB entries a WP fault flushed


RO, RW, WO = Access.RO, Access.RW, Access.WO

MMU_CSR = RegisterMap(
    "mmu",
    [
        reg(
            "ID",
            0x000,
            RO,
            "Identification: ASCII 'VMMU' and the version.",
            ("version", 0, 16, "register-map version"),
            ("magic", 32, 32, "0x554D4D56 ('VMMU')"),
        ),
        reg(
            "CTRL",
            0x008,
            RW,
            "Mode, page-walk cache and current VPID.",
            ("mode", 0, 1, "0 EPT (nested walk), 1 shadow"),
            ("pwc_en", 1, 1, "use the page-walk cache (nested TLB of EPT leaf translations)"),
            ("vpid", 16, VPID_BITS, "tag of new TLB entries and of lookups"),
            reset=0b10,
        ),
        reg(
            "GCR3",
            0x010,
            RW,
            "Guest CR3: GPA of the guest PML4 (bits 45:12).",
            ("pfn", 12, PA_BITS - 12, "page frame"),
        ),
        reg(
            "EPTP",
            0x018,
            RW,
            "EPT pointer: HPA of the EPT PML4 (bits 45:12).",
            ("pfn", 12, PA_BITS - 12, "page frame"),
        ),
        reg(
            "SCR3",
            0x020,
            RW,
            "Shadow CR3: HPA of the shadow PML4 (bits 45:12).",
            ("pfn", 12, PA_BITS - 12, "page frame"),
        ),
        reg(
            "PT_BASE",
            0x028,
            RW,
            "HPA of the guest page-table region; base of the write-protect table and of shadow "
            "back-pointers.",
            ("pfn", 12, PA_BITS - 12, "page frame"),
        ),
        reg(
            "FLUSH_GVA",
            0x030,
            RW,
            "GVA operand of an INVLPG flush.",
            ("gva", 0, VA_BITS, "linear address"),
        ),
        reg(
            "FLUSH",
            0x038,
            WO,
            "Writing starts a flush; it takes effect before the next lookup.",
            ("op", 0, 2, "0 INVLPG, 1 VPID, 2 ALL, 3 PWC (INVEPT)"),
            ("vpid", 16, VPID_BITS, "VPID operand"),
        ),
        reg(
            "WPT",
            0x040,
            WO,
            "Write-protect table: set or clear protection of one guest-table page.",
            ("page", 0, 12, "page index from PT_BASE"),
            ("set", 63, 1, "1 protect, 0 unprotect"),
        ),
        reg(
            "STATUS",
            0x048,
            RO,
            "Status.",
            ("busy", 0, 1, "a request is being served"),
            (
                "init",
                1,
                1,
                "the write-protect table is being cleared after reset (wp_pages cycles); "
                "requests wait and WPT writes are ignored until it reads 0",
            ),
        ),
        reg("WP_GVA", 0x050, RO, "GVA of the last WP fault.", ("gva", 0, VA_BITS, "")),
        reg("WP_HPA", 0x058, RO, "HPA of the last WP fault.", ("hpa", 0, PA_BITS, "")),
        reg(
            "WP_DATA",
            0x060,
            RO,
            "Store data of the last WP fault (not performed).",
            ("data", 0, 64, ""),
        ),
        reg(
            "INJ_MASK",
            0x068,
            RW,
            "Fault injection: XOR mask for a TLB entry's page frame.",
            ("mask", 0, PA_BITS - 12, ""),
        ),
        reg(
            "INJ",
            0x070,
            WO,
            "Fault injection: XOR INJ_MASK into the PPN of one TLB entry (debug).",
            ("entry", 0, 8, "entry index"),
        ),
        reg("HITS", 0x080, RO, "TLB hits.", ("count", 0, 32, "")),
        reg("MISSES", 0x088, RO, "TLB misses (walks started).", ("count", 0, 32, "")),
        reg("WALK_READS", 0x090, RO, "Walker memory reads.", ("count", 0, 32, "")),
        reg("WALK_WRITES", 0x098, RO, "Walker A/D write-backs.", ("count", 0, 32, "")),
        reg("PWC_HITS", 0x0A0, RO, "Page-walk cache hits.", ("count", 0, 32, "")),
        reg(
            "FAULTS",
            0x0A8,
            RO,
            "Guest page faults, EPT violations and shadow faults.",
            ("count", 0, 32, ""),
        ),
        reg("WP_FAULTS", 0x0B0, RO, "Write-protect faults.", ("count", 0, 32, "")),
        reg("FLUSHES", 0x0B8, RO, "Flush commands and WP-fault flushes.", ("count", 0, 32, "")),
        reg("FLUSHED", 0x0C0, RO, "TLB entries invalidated by flushes.", ("count", 0, 32, "")),
        reg("STORES", 0x0C8, RO, "Guest stores performed.", ("count", 0, 32, "")),
    ],
)

MMU_ID = (0x554D4D56 << 32) | 1

#: The event counters, in register order (each a read-only register of ``MMU_CSR``).
MMU_COUNTERS = (
    "HITS",
    "MISSES",
    "WALK_READS",
    "WALK_WRITES",
    "PWC_HITS",
    "FAULTS",
    "WP_FAULTS",
    "FLUSHES",
    "FLUSHED",
    "STORES",
)
