"""The checkpoint's pieces: its cost model, what it carries, the secondary that receives it,
and the statistics kept for each one. The run loop that uses them is :mod:`models.gpu.run`.

The secondary is two-phase, as COLO's (QEMU ``migration/colo.c``): a checkpoint's pages and
state go into a buffer, and only the commit message applies them to the memory and vGPU
state the secondary holds. A failover before the commit leaves the secondary at the previous
committed checkpoint; the buffer is thrown away.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .vgpu import PAGE_SIZE, GuestMemory, VgpuState

__all__ = [
    "CheckpointCost",
    "Cursor",
    "Committed",
    "Secondary",
    "CheckpointStats",
    "InvariantError",
    "state_bytes",
]


class InvariantError(AssertionError):
    """A checked property of the checkpointing failed: a bug in the manager, the tracker or
    the model, never bad input."""


@dataclass(frozen=True)
class CheckpointCost:
    """What a checkpoint costs, in GPU cycles (a 1 GHz clock: one cycle is one nanosecond).

    Members
    -------
    page_cycles : int
        Sending one 4 KiB page to the secondary: 410 at 10 GB/s (409.6 ns).
    link_bytes : int
        Bytes of vGPU state the link carries a cycle: 10 (10 GB/s).
    register_cycles : int
        Saving one shadow register into the context image (an MMIO read and a store).
    tlb_cycles : int
        Invalidating the translation cache.
    line_cycles : int
        Writing one line of the write cache back (4 beats of 16 bytes).
    commit_cycles : int
        The commit message and its acknowledgement: a 1 µs link latency each way.
    """

    page_cycles: int = 410
    link_bytes: int = 10
    register_cycles: int = 4
    tlb_cycles: int = 50
    line_cycles: int = 4
    commit_cycles: int = 2000

    @classmethod
    def for_link(cls, gbytes: int) -> CheckpointCost:
        """The default costs over a link of ``gbytes`` GB/s."""
        return cls(page_cycles=math.ceil(PAGE_SIZE / gbytes), link_bytes=gbytes)

    def state_cycles(self, nbytes: int) -> int:
        return -(-nbytes // self.link_bytes)


def state_bytes(state: VgpuState) -> int:
    """Bytes the vGPU state takes on the link: a dword per shadow register and a qword per
    GGTT PTE (their offsets and indices are implied by the order), 64 for the rest
    (ring offsets, the executor's counters and clock, the cursor)."""
    return 4 * len(state.registers) + 8 * len(state.ggtt) + 64


@dataclass(frozen=True)
class Cursor:
    """Where the run stands, as a checkpoint records it: the guest driver's progress and the
    checkpoint schedule (the VM's own state, as far as the run needs it).

    Members
    -------
    submission : int
        Submissions done; the next one to submit is this index of the workload's list.
    checkpoint : int
        Number of the checkpoint (0: the initial full copy).
    deadline : int
        Executor clock at which the next checkpoint falls due.
    """

    submission: int
    checkpoint: int
    deadline: int


@dataclass(frozen=True)
class Committed:
    """What the secondary holds after a commit (or what the primary was at one).

    Members
    -------
    memory : GuestMemory
    state : VgpuState
    cursor : Cursor
    """

    memory: GuestMemory
    state: VgpuState
    cursor: Cursor


class Secondary:
    """The standby: the last committed checkpoint, and a buffer for the next one.

    Members
    -------
    committed : Committed or None
        The last committed checkpoint (``None`` before the first commit).
    """

    def __init__(self) -> None:
        self._memory = GuestMemory()
        self._state: VgpuState | None = None
        self._cursor: Cursor | None = None
        self._open: int | None = None
        self._pages: dict[int, bytes] = {}
        self._incoming: tuple[VgpuState, Cursor] | None = None

    @property
    def committed(self) -> Committed | None:
        if self._state is None or self._cursor is None:
            return None
        return Committed(self._memory, self._state, self._cursor)

    @property
    def receiving(self) -> int | None:
        """The checkpoint being received, if any."""
        return self._open

    def begin(self, number: int) -> None:
        """Start receiving checkpoint ``number`` (dropping any unfinished one)."""
        self._open, self._pages, self._incoming = number, {}, None

    def receive(self, pages: Mapping[int, bytes]) -> None:
        """Page images for the open checkpoint; a later image of a page replaces an earlier."""
        if self._open is None:
            raise InvariantError("secondary: pages arrive with no checkpoint open")
        self._pages.update(pages)

    def receive_state(self, state: VgpuState, cursor: Cursor) -> None:
        if self._open is None or cursor.checkpoint != self._open:
            raise InvariantError(f"secondary: state of checkpoint {cursor.checkpoint} unexpected")
        self._incoming = (state, cursor)

    def commit(self) -> None:
        """Apply the open checkpoint: its pages to memory, its state."""
        if self._open is None or self._incoming is None:
            raise InvariantError("secondary: commit of an incomplete checkpoint")
        self._memory.restore(self._pages)
        self._state, self._cursor = self._incoming
        self._open, self._pages, self._incoming = None, {}, None

    def take_over(self) -> Committed:
        """Failover: drop the checkpoint in flight; a copy of the last committed one.

        Raises
        ------
        InvariantError
            Nothing was ever committed.
        """
        committed = self.committed
        if committed is None:
            raise InvariantError("failover with no committed checkpoint")
        self._open, self._pages, self._incoming = None, {}, None
        return Committed(committed.memory.copy(), committed.state, committed.cursor)


@dataclass
class CheckpointStats:
    """One committed checkpoint, as ``checkpoints.jsonl`` records it (cycle stamps are the
    primary's wall clock unless they say ``gpu``; page counts are guest-physical pages).

    Members
    -------
    checkpoint, generation : int
        Its number; the primary's generation (0, then one more after each failover).
    kind : str
        ``full`` (the initial copy, or a new secondary's after a failover) or ``incremental``.
    trigger : str
        ``start``, ``restore``, ``deadline`` (the interval ran out) or ``end`` (of the workload).
    t, gpu : int
        When the primary stopped; the executor's clock then.
    deadline : int or None
        The executor clock at which it fell due.
    predicted_stop, actual_stop : int or None
        The planned stop (the in-flight submission's predicted completion, or the deadline
        when it was predicted to end before it) and its actual completion; the primary
        stopped at the earlier of the two.
    wait_cycles : int
        Stopped and waiting for the GPU (it was slower than predicted).
    drain_cycles, lines_flushed : int
        Draining: context save, translation-cache invalidation, write-cache flush.
    tracker_pages, predicted_pages, actual_pages, cpu_pages : int
        Over the interval: reported by the tracker (every flip of it), predicted by the
        scanner, actually written by the executor (the oracle), written by the guest driver
        (the ring).
    precopy_rounds, precopy_pages : int
        Live rounds, and the pages they put on the link while the GPU ran.
    downtime_pages : int
        Pages sent while the primary was stopped.
    sent_pages : int
        Distinct pages the checkpoint carried.
    baseline_full_pages : int
        Stop-and-copy without dirty tracking: every page the GGTT maps.
    baseline_dirty_pages : int
        Stop-and-copy of the pages dirtied in the interval (tracker and ring), no pre-copy and
        no prediction.
    precision : float or None
        ``|predicted ∩ actual| / |predicted|`` (``None``: nothing predicted).
    recall : float or None
        ``|(tracker ∪ predicted) ∩ actual| / |actual|``: always 1.0 (``None``: nothing
        written); the run raises :class:`InvariantError` otherwise.
    tracker_recall : float or None
        ``|tracker ∩ actual| / |actual|``.
    overflow : bool
        A tracker read-out of the interval overflowed (every mapped page taken as dirty).
    state_bytes : int
        Bytes of vGPU state sent.
    downtime_cycles : int
        wait + drain + ``downtime_pages`` × ``page_cycles`` + the state + the commit.
    """

    checkpoint: int
    generation: int
    kind: str
    trigger: str
    t: int
    gpu: int
    deadline: int | None = None
    predicted_stop: int | None = None
    actual_stop: int | None = None
    wait_cycles: int = 0
    drain_cycles: int = 0
    lines_flushed: int = 0
    tracker_pages: int = 0
    predicted_pages: int = 0
    actual_pages: int = 0
    cpu_pages: int = 0
    precopy_rounds: int = 0
    precopy_pages: int = 0
    downtime_pages: int = 0
    sent_pages: int = 0
    baseline_full_pages: int = 0
    baseline_dirty_pages: int = 0
    precision: float | None = None
    recall: float | None = None
    tracker_recall: float | None = None
    overflow: bool = False
    state_bytes: int = 0
    downtime_cycles: int = 0
