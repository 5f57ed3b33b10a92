"""Seeded random GPU workloads, and the guest-driver steps that feed them to a :class:`Vgpu`.

:func:`setup` maps graphics memory and programs the ring through trapped MMIO, as a guest
driver does; :func:`random_commands` draws a valid command stream over the mapped pages (ring
commands, first-level batch buffers, second-level and chained batches); :func:`emit` writes
commands into the ring and moves RING_TAIL; :func:`play` does all of it, running each
submission as it goes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from vmassist.formats.gen9 import (
    GGTT_BASE,
    GGTT_PTE_BYTES,
    GTT_PAGE_BITS,
    RING_CTL,
    RING_HEAD,
    RING_START,
    RING_TAIL,
    ColorDepth,
    PostSync,
)

from .executor import Executed
from .gen9 import (
    mi_batch_buffer_end,
    mi_batch_buffer_start,
    mi_load_register_imm,
    mi_noop,
    mi_store_data_imm,
    pipe_control,
    xy_color_blt,
    xy_src_copy_blt,
)
from .scanner import LRI_WHITELIST
from .vgpu import Ggtt, GuestMemory, Submission, Vgpu, VgpuError

__all__ = ["GfxLayout", "Workload", "setup", "random_commands", "emit", "play"]

_PAGE = 1 << GTT_PAGE_BITS
_SLOT = 512  #: bytes reserved for one batch buffer (at most 86 dwords are drawn)
_LRI_REGS = sorted(LRI_WHITELIST)


@dataclass(frozen=True)
class GfxLayout:
    """Graphics memory as :func:`setup` mapped it.

    Members
    -------
    ring_start : int
        Graphics address of the ring.
    ring_pages : int
        Its size in 4 KiB pages.
    batch_pages, data_pages : tuple of int
        Graphics page numbers for batch buffers, and for the commands' sources and targets.
    """

    ring_start: int
    ring_pages: int
    batch_pages: tuple[int, ...]
    data_pages: tuple[int, ...]


@dataclass(frozen=True)
class Workload:
    """A command stream: the ring's commands, and the batch buffers they start.

    Members
    -------
    ring : tuple of tuple of int
        The commands to put in the ring, in order, each as its dwords.
    batches : tuple of (int, tuple of int)
        Each batch buffer's graphics address and dwords.
    """

    ring: tuple[tuple[int, ...], ...]
    batches: tuple[tuple[int, tuple[int, ...]], ...]

    def install(self, memory: GuestMemory, ggtt: Ggtt) -> None:
        """Write the batch buffers into guest memory, through the GGTT."""
        for address, dwords in self.batches:
            for i, dw in enumerate(dwords):
                memory.write32(ggtt.translate(address + 4 * i), dw)


def setup(
    vgpu: Vgpu,
    rng: random.Random,
    *,
    ring_pages: int = 4,
    batch_pages: int = 16,
    data_pages: int = 64,
    gfx_base: int = 0x10_0000,
    gpa_base: int = 0x100_0000,
) -> GfxLayout:
    """Map the ring, the batch pages and the data pages at consecutive graphics addresses
    from ``gfx_base`` to guest-physical pages drawn at random (scattered, in random order)
    from ``gpa_base`` on, by MMIO writes of the PTEs; then program and enable the ring."""
    if not 1 <= ring_pages <= 512:
        raise ValueError(f"ring_pages must be 1 to 512, not {ring_pages}")
    total = ring_pages + batch_pages + data_pages
    first = gfx_base >> GTT_PAGE_BITS
    frames = rng.sample(
        range(gpa_base >> GTT_PAGE_BITS, (gpa_base >> GTT_PAGE_BITS) + 4 * total), total
    )
    for i, frame in enumerate(frames):
        vgpu.mmio_write(
            GGTT_BASE + (first + i) * GGTT_PTE_BYTES, Ggtt.pte(frame << GTT_PAGE_BITS), size=8
        )
    vgpu.mmio_write(RING_CTL, 0)
    vgpu.mmio_write(RING_START, gfx_base)
    vgpu.mmio_write(RING_HEAD, 0)
    vgpu.mmio_write(RING_TAIL, 0)
    vgpu.mmio_write(RING_CTL, (ring_pages - 1) << 12 | 1)
    pages = range(first, first + total)
    return GfxLayout(
        gfx_base,
        ring_pages,
        tuple(pages[ring_pages : ring_pages + batch_pages]),
        tuple(pages[ring_pages + batch_pages :]),
    )


def _runs(pages: Sequence[int]) -> list[tuple[int, int]]:
    """Maximal runs of consecutive page numbers, as (first, count)."""
    runs: list[tuple[int, int]] = []
    for p in sorted(set(pages)):
        if runs and runs[-1][0] + runs[-1][1] == p:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((p, 1))
    return runs


class _Generator:
    def __init__(
        self, rng: random.Random, data_pages: Sequence[int], batch_pages: Sequence[int]
    ) -> None:
        if not data_pages:
            raise ValueError("random_commands needs at least one data page")
        self.rng = rng
        self.data = sorted(data_pages)
        self.runs = _runs(data_pages)
        self.slots = [
            (p << GTT_PAGE_BITS) + k * _SLOT
            for p in sorted(batch_pages)
            for k in range(_PAGE // _SLOT)
        ]
        self.slots.reverse()
        self.batches: list[tuple[int, tuple[int, ...]]] = []

    def _address(self, align: int) -> int:
        page = self.rng.choice(self.data)
        return (page << GTT_PAGE_BITS) + self.rng.randrange(0, _PAGE, align)

    def _surface(self, bpp: int, w: int, h: int) -> tuple[int, int, int, int]:
        """A linear surface (base, pitch, x, y) inside one run of data pages that holds a
        ``w`` x ``h`` rectangle at (x, y); the caller makes sure one run is big enough."""
        rng = self.rng
        first, count = rng.choice([r for r in self.runs if r[1] * _PAGE >= w * h * bpp])
        size = count * _PAGE
        x = rng.randrange(0, 16)
        if (x + w) * bpp * h > size:
            x = 0
        row = (x + w) * bpp
        pitch = min(max(row, rng.choice([64, 256, 1024, 4096, 6000, 8192])), 0x7FFF)
        if h > 1:
            pitch = min(pitch, (size - row) // (h - 1))  # still >= row, as h * row <= size
        spare_rows = (size - row - (h - 1) * pitch) // pitch if pitch else 0
        y = rng.randrange(0, min(spare_rows, 8) + 1)
        slack = size - ((y + h - 1) * pitch + row)
        base = (first << GTT_PAGE_BITS) + rng.randrange(0, min(slack, 256) + 1)
        return base, pitch, x, y

    def _blit(self, copy: bool) -> list[int]:
        rng = self.rng
        depth = ColorDepth(rng.randrange(4))
        bpp = depth.bytes_per_pixel
        largest = max(c for _, c in self.runs) * _PAGE
        w = rng.randrange(0, 3) if rng.random() < 0.05 else rng.randrange(1, 257)
        h = rng.randrange(1, 49)
        while h > 1 and w * h * bpp > largest:
            h //= 2
        base, pitch, x, y = self._surface(bpp, w, h)
        masks = {"write_rgb": True, "write_alpha": True}
        if depth == ColorDepth.B32 and rng.random() < 0.2:
            masks = {"write_rgb": rng.random() < 0.5, "write_alpha": rng.random() < 0.5}
        rect = (x, y, x + w, y + h)
        if not copy:
            color = rng.getrandbits(32)
            return xy_color_blt(base, pitch, rect, color, depth=depth, **masks)
        src, src_pitch, sx, sy = self._surface(bpp, w, h)
        return xy_src_copy_blt(base, pitch, rect, src, src_pitch, (sx, sy), depth=depth, **masks)

    def leaf(self) -> list[int]:
        """One command that is not control flow."""
        rng = self.rng
        kind = rng.choices(
            ["noop", "sdi", "lri", "pc", "fill", "copy"], weights=[1, 3, 2, 2, 3, 2]
        )[0]
        if kind == "noop":
            return mi_noop(rng.getrandbits(22), write_id=rng.random() < 0.5)
        if kind == "sdi":
            qword = rng.random() < 0.4
            return mi_store_data_imm(
                self._address(8 if qword else 4), rng.getrandbits(64 if qword else 32), qword=qword
            )
        if kind == "lri":
            pairs = [
                (rng.choice(_LRI_REGS), rng.getrandbits(32)) for _ in range(rng.randrange(1, 5))
            ]
            bwd = rng.getrandbits(4) if rng.random() < 0.2 else 0
            return mi_load_register_imm(pairs, byte_write_disables=bwd)
        if kind == "pc":
            post_sync = PostSync(rng.choices(range(4), weights=[2, 3, 1, 2])[0])
            return pipe_control(
                post_sync=post_sync,
                address=self._address(8),
                data=rng.getrandbits(64),
                cs_stall=rng.random() < 0.5,
                dc_flush=rng.random() < 0.3,
                render_target_cache_flush=rng.random() < 0.3,
            )
        return self._blit(copy=kind == "copy")

    def batch(self, level: int, budget: int) -> tuple[int | None, int]:
        """Build a batch of up to ``budget`` leaves at ``level`` (1 or 2); a first-level one
        may start a second-level batch and may chain to another first-level batch. Returns
        its address (``None`` when no slot is left) and the leaves it used."""
        if not self.slots:
            return None, 0
        slot = self.slots.pop()
        rng = self.rng
        n = rng.randrange(1, min(budget, 8) + 1)
        dwords: list[int] = []
        for _ in range(n):
            dwords += self.leaf()
        used = n
        if level == 1 and used < budget and rng.random() < 0.3:
            child, k = self.batch(2, budget - used)
            if child is not None:
                dwords += mi_batch_buffer_start(child, second_level=True)
                used += k
        if level == 1 and used < budget and rng.random() < 0.2:
            chained, k = self.batch(1, budget - used)
            if chained is not None:
                dwords += mi_batch_buffer_start(chained)
                self.batches.append((slot, tuple(dwords)))
                return slot, used + k
        dwords += mi_batch_buffer_end()
        self.batches.append((slot, tuple(dwords)))
        return slot, used


def random_commands(
    rng: random.Random,
    data_pages: Sequence[int],
    batch_pages: Sequence[int] = (),
    *,
    count: int = 64,
    batch_ratio: float = 0.3,
) -> Workload:
    """A valid command stream of ``count`` commands that are not control flow (MI_NOOP,
    MI_STORE_DATA_IMM, MI_LOAD_REGISTER_IMM, PIPE_CONTROL and the blits), over mapped graphics
    pages, plus the batch-buffer starts and ends that reach them.

    Parameters
    ----------
    rng : random.Random
        The only source of randomness: the same seed gives the same workload.
    data_pages : sequence of int
        Mapped graphics page numbers the commands may read and write. A blit's surface lies
        in one run of consecutive pages.
    batch_pages : sequence of int
        Mapped graphics page numbers for batch buffers (none: every command goes in the
        ring). They must not overlap ``data_pages``.
    count : int
        Commands other than control flow.
    batch_ratio : float
        Probability that the next ring command starts a batch buffer instead.

    Raises
    ------
    ValueError
        No data pages, or batch pages overlapping them.
    """
    if set(data_pages) & set(batch_pages):
        raise ValueError("batch pages must not overlap data pages")
    gen = _Generator(rng, data_pages, batch_pages)
    ring: list[tuple[int, ...]] = []
    left = count
    while left:
        if rng.random() < batch_ratio:
            address, used = gen.batch(1, left)
            if address is not None:
                ring.append(tuple(mi_batch_buffer_start(address)))
                left -= used
                continue
        ring.append(tuple(gen.leaf()))
        left -= 1
    return Workload(tuple(ring), tuple(gen.batches))


def emit(vgpu: Vgpu, dwords: Sequence[int]) -> Submission | None:
    """Write ``dwords`` into the ring at RING_TAIL (padded to a qword with MI_NOOP), through
    the GGTT, and move RING_TAIL past them: the guest driver's submission.

    Raises
    ------
    VgpuError
        The ring is disabled or has no room for them before the head.
    ScanError
        The scanner refused them.
    """
    words = list(dwords) + mi_noop() * (len(dwords) % 2)
    if not vgpu.ring_enabled:
        raise VgpuError("emit: the ring is disabled")
    size, start, tail = vgpu.ring_size, vgpu.ring_start, vgpu.tail
    free = (vgpu.head - tail - 8) % size
    if 4 * len(words) > free:
        raise VgpuError(f"emit: {4 * len(words)} bytes do not fit the {free} free in the ring")
    for i, dw in enumerate(words):
        vgpu.memory.write32(vgpu.ggtt.translate(start + (tail + 4 * i) % size), dw)
    return vgpu.mmio_write(RING_TAIL, (tail + 4 * len(words)) % size)


def play(
    vgpu: Vgpu, workload: Workload, *, per_submission: int = 8
) -> list[tuple[Submission, list[Executed]]]:
    """Install the workload's batches, then submit its ring commands ``per_submission`` at a
    time (fewer when the ring has no room), running each submission at once."""
    workload.install(vgpu.memory, vgpu.ggtt)
    room = (vgpu.ring_size - 16) // 4  # dwords a submission may take: the ring is empty
    out = []
    ring = list(workload.ring)
    while ring:
        chunk: list[int] = []
        taken = 0
        while ring and taken < per_submission and len(chunk) + len(ring[0]) <= room:
            chunk += ring.pop(0)
            taken += 1
        if not chunk:
            raise VgpuError(f"play: a command of {len(ring[0])} dwords does not fit the ring")
        submission = emit(vgpu, chunk)
        if submission is not None:
            out.append((submission, vgpu.run()))
    return out
