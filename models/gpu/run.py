"""``vmassist gpu run``: a vGPU primary checkpointed to a secondary, with failovers.

The run is one loop, written sans-IO so that the dirty tracker behind it may be the golden
model (:func:`run_model`) or the tracker RTL in a cocotb testbench: :func:`run_steps` is a
generator that yields requests and takes replies::

    gen = run_steps(spec)
    reply = None
    while True:
        try:
            request = gen.send(reply)
        except StopIteration as stop:
            result = stop.value              # a RunResult
            break
        if isinstance(request, Writes):      # put these AXI4 write bursts on the AW channel
            ...                              # the tracker snoops, in order; reply None
        elif isinstance(request, Flip):      # end the tracker's epoch and read it out;
            ...                              # reply its EpochReport (pages, overflow)

Every write of a :class:`Writes` must have been accepted before the next request is answered
(so a write never lands in a later epoch than the next :class:`Flip`). Addresses are
guest-physical, relative to the tracker's aperture (base 0): the run maps its memory inside
it. The tracker's log is not the manager's business: a driver drains it (the model's after
every request, as its interrupt handler would), and a read-out with ``overflow`` set makes
the manager take every page the vGPU's GGTT maps as dirty (the VFIO rule, narrowed to what
the GPU can reach).

The primary
-----------
A :class:`~models.gpu.vgpu.Vgpu` over guest memory (ring, batch and data pages mapped at
consecutive graphics addresses from :data:`~models.gpu.workload_file.GFX_BASE` to scattered
guest-physical pages), fed by a seeded workload (:func:`~models.gpu.workload.setup`,
:func:`~models.gpu.workload.random_commands`, or the file's explicit submissions). The guest
driver submits one submission at a time (:func:`~models.gpu.workload.emit`: the ring is
written, RING_TAIL moved, the scanner predicts the pages and the cycles); the executor runs
it. The executor's stores go through a write-combining cache (:mod:`models.gpu.cache`); its
write-backs are the bursts on the bus, yielded as :class:`Writes`. The ring writes are the
guest CPU's: the VMM logs them itself (as KVM's dirty log would), as ``cpu`` pages.

Time is the GPU's clock (1 GHz): the executor's clock counts the cycles the GPU runs; the
primary's wall clock adds the checkpoints' downtime.

A checkpoint
------------
Checkpoint ``c`` falls due when the executor's clock reaches the deadline, ``interval``
cycles after the previous checkpoint's. In order:

1. **align** – The stop is aligned to a submission's completion, never mid-command: when a
   submission starts, the manager knows from the scanner's prediction whether it will cross
   the deadline, and plans the stop at its *predicted* completion. If the GPU is slower than
   predicted the primary is stopped there and waits for it (``wait_cycles``, part of the
   downtime); if faster, its completion interrupt stops the primary at once. A submission
   predicted to end before the deadline that does not is stopped at the deadline and waited
   for. New submissions are held from the planned stop to the commit.
2. **drain** – the write cache is flushed (its write-backs go on the bus: until then memory
   and the tracker lag behind), the translation cache invalidated, and the context (the
   shadow registers) saved into the vGPU state.
3. **snapshot** – a :class:`Flip`; the pages to send are the tracker's, the scanner's
   predicted pages of the submissions run since the last flip, the ring pages the driver
   wrote since, and the pages a live round held back or queued but had not sent yet. Their
   images and :meth:`Vgpu.state` (shadow MMIO, GGTT, ring, executor) form the checkpoint.
4. **transfer** – pages, then the state, into the secondary's buffer.
5. **commit** – the secondary applies the buffer (two-phase, :class:`Secondary`); the
   primary resumes.

Checkpoint 0 is a full copy (every mapped page, every page ever written) before the first
submission; later ones are incremental. With ``precopy``, live rounds run between
checkpoints: when a submission has been submitted (and scanned), if the link is idle and
something was written since the last flip, a :class:`Flip` and the same union go to the
secondary while the GPU runs, taking ``page_cycles`` each on the link; pages the submission
is predicted to write are held back (they would be dirtied again at once) for a later round
or the checkpoint. Only what is dirtied after the last live flip, what was held back, and
what the last round had not sent by the stop are sent while the primary is stopped
(``downtime_pages``).

Failover
--------
A :class:`~models.gpu.workload_file.FailAt` kills the primary at a point: before a
submission or after some of its commands (the primary is left torn), or just before a phase
of a checkpoint (during the transfer: after some of its pages). The secondary drops the
checkpoint in flight and restores a :class:`Vgpu` from its last commit, which must equal the
primary at that commit: a deep copy of the primary's (coherent) memory, its
:meth:`Vgpu.state` and the run's :class:`Cursor`, taken at each commit, independently of the
page sets (:class:`InvariantError` otherwise). The tracker's epoch, holding the dead
primary's writes, is flipped and dropped; a new secondary gets a full copy; the restored
primary resumes the workload from the checkpoint's cursor. The run is deterministic, so the
resumed run ends in the same memory and state as a run without failures.

Checked invariants (:class:`InvariantError`)
-------------------------------------------
- **recall**: every page the executor wrote in an interval is in the tracker's pages or the
  predicted ones of that interval.
- **the tracker's contract** (``docs/gpu.md``): every page the yielded bursts touch is
  reported in the epoch of the write or the next, and nothing else is reported (unless the
  read-out overflowed); a :class:`Flip` at the end of the run settles the last epoch.
- at each failover, and at the end (the secondary against the primary's final commit), the
  secondary equals the primary at its last commit.

Baselines (per checkpoint): stop-and-copy of every page the GGTT maps
(``baseline_full_pages``), and stop-and-copy of the pages dirtied in the interval, tracker and
ring, without pre-copy or prediction (``baseline_dirty_pages``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from vmassist.errors import UserError
from vmassist.formats.gen9 import GTT_PAGE_BITS
from vmassist.formats.gpu import APERTURE, PAGE_BITS
from vmassist.outdir import atomic_output_dir

from .axi import Aw, pages_touched
from .cache import WriteCache
from .checkpoint import (
    CheckpointCost,
    CheckpointStats,
    Committed,
    Cursor,
    InvariantError,
    Secondary,
    state_bytes,
)
from .scanner import ScanError
from .tracker import DirtyTracker, EpochReport
from .vgpu import GuestMemory, Submission, Vgpu, VgpuError, VgpuState
from .workload import emit, random_commands, setup
from .workload_file import GFX_BASE, GPA_BASE, FailAt, WorkloadSpec

__all__ = [
    "Writes",
    "Flip",
    "Request",
    "Steps",
    "RunResult",
    "DirtySource",
    "ModelSource",
    "run_steps",
    "drive",
    "run_model",
    "memory_digest",
    "write_outputs",
]


@dataclass(frozen=True)
class Writes:
    """Request: the AXI4 write bursts the GPU put on the bus, in order. Reply ``None``."""

    aws: tuple[Aw, ...]


@dataclass(frozen=True)
class Flip:
    """Request: end the tracker's epoch and read it out. Reply its
    :class:`~models.gpu.tracker.EpochReport`."""


Request = Writes | Flip


@dataclass
class RunResult:
    """What a run did.

    Members
    -------
    spec : WorkloadSpec
    cost : CheckpointCost
    checkpoints : list of CheckpointStats
        Every committed checkpoint, in order (a re-run after a failover adds records).
    timeline : list of dict
        Every event, in order (``timeline.jsonl``).
    failovers : list of dict
        Each failover injected: where, the checkpoint restored, and ``verified``.
    not_reached : list of FailAt
        Failovers whose point the run never reached.
    memory : GuestMemory
        The primary's memory at the end.
    state : VgpuState
        Its vGPU state at the end.
    secondary : Committed
        The secondary's last commit.
    submissions : int
        Submissions in the workload.
    wall_cycles, gpu_cycles : int
        The primary's wall clock and the executor's clock at the end.
    """

    spec: WorkloadSpec
    cost: CheckpointCost
    checkpoints: list[CheckpointStats]
    timeline: list[dict[str, Any]]
    failovers: list[dict[str, Any]]
    not_reached: list[FailAt]
    memory: GuestMemory
    state: VgpuState
    secondary: Committed
    submissions: int
    wall_cycles: int
    gpu_cycles: int

    def summary(self) -> dict[str, Any]:
        """``summary.json``: totals over the incremental checkpoints (the full copies are
        counted apart: a checkpoint without tracking would copy as much)."""
        inc = [c for c in self.checkpoints if c.kind == "incremental"]
        full = [c for c in self.checkpoints if c.kind == "full"]
        down = sum(c.downtime_pages for c in inc)
        base_full = sum(c.baseline_full_pages for c in inc)
        base_dirty = sum(c.baseline_dirty_pages for c in inc)
        precision = [c.precision for c in inc if c.precision is not None]
        recall = [c.recall for c in inc if c.recall is not None]
        cycles = [c.downtime_cycles for c in inc]

        def reduction(base: int) -> float | None:
            return round(100 * (1 - down / base), 2) if base else None

        def stats(xs: Sequence[float], digits: int) -> dict[str, float | None]:
            if not xs:
                return {"mean": None, "min": None, "max": None}
            return {
                "mean": round(sum(xs) / len(xs), digits),
                "min": round(min(xs), digits),
                "max": round(max(xs), digits),
            }

        return {
            "workload": self.spec.source,
            "submissions": self.submissions,
            "commands": self.spec.commands,
            "checkpoints": len(inc),
            "full_copies": len(full),
            "downtime_pages": down,
            "baseline_full_pages": base_full,
            "baseline_dirty_pages": base_dirty,
            "reduction_vs_full_pct": reduction(base_full),
            "reduction_vs_dirty_pct": reduction(base_dirty),
            "precopy_pages": sum(c.precopy_pages for c in inc),
            "precision": stats(precision, 4),
            "recall": min(recall) if recall else None,
            "downtime_cycles": stats(cycles, 1),
            "full_copy_cycles": stats([c.downtime_cycles for c in full], 1),
            "page_cycles": self.cost.page_cycles,
            "failovers": {
                "injected": len(self.failovers),
                "verified": sum(f["verified"] for f in self.failovers),
                "not_reached": [f.describe() for f in self.not_reached],
            },
            "wall_cycles": self.wall_cycles,
            "gpu_cycles": self.gpu_cycles,
            "final_memory_sha256": memory_digest(self.memory),
        }


def memory_digest(memory: GuestMemory) -> str:
    """SHA-256 over the non-zero pages, in order (equal memories give equal digests)."""
    h = hashlib.sha256()
    zero = bytes(1 << GTT_PAGE_BITS)
    for page, data in memory.copy_pages(memory.pages()).items():
        if data != zero:
            h.update(page.to_bytes(8, "little"))
            h.update(data)
    return h.hexdigest()


class _Failed(Exception):
    """The primary dies here (control flow inside the run, never seen outside)."""

    def __init__(self, fail: FailAt, detail: dict[str, Any]) -> None:
        super().__init__(fail.describe())
        self.fail = fail
        self.detail = detail


def _fmt_pages(pages: set[int]) -> str:
    shown = ", ".join(f"{p:#x}" for p in sorted(pages)[:8])
    return shown + (", ..." if len(pages) > 8 else "")


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 6) if den else None


@dataclass
class _Interval:
    """What happened since the last commit."""

    tracker: set[int] = field(default_factory=set)
    predicted: set[int] = field(default_factory=set)
    actual: set[int] = field(default_factory=set)
    cpu: set[int] = field(default_factory=set)
    live: set[int] = field(default_factory=set)
    rounds: int = 0
    precopy_pages: int = 0
    overflow: bool = False


def _primary(spec: WorkloadSpec, memory: GuestMemory | None = None) -> tuple[Vgpu, WriteCache]:
    vgpu = Vgpu(memory, seed=spec.seed)
    cache = WriteCache(vgpu.memory, bus_bytes=vgpu.executor.bus_bytes)
    vgpu.executor.memory = cache  # type: ignore[assignment]  # stores go through the cache
    return vgpu, cache


def _chunks(ring: Sequence[tuple[int, ...]], per: int, room: int) -> list[tuple[int, ...]]:
    """The ring commands ``per`` at a time, fewer when they would not fit ``room`` dwords
    (as :func:`~models.gpu.workload.play` submits them)."""
    out: list[tuple[int, ...]] = []
    i = 0
    while i < len(ring):
        chunk: list[int] = []
        taken = 0
        while i < len(ring) and taken < per and len(chunk) + len(ring[i]) <= room:
            chunk += ring[i]
            taken, i = taken + 1, i + 1
        if not chunk:
            raise VgpuError(f"a command of {len(ring[i])} dwords does not fit the ring")
        out.append(tuple(chunk))
    return out


class _Run:
    def __init__(self, spec: WorkloadSpec, cost: CheckpointCost, aperture: int) -> None:
        self.spec = spec
        self.cost = cost
        self.vgpu, self.cache = _primary(spec)
        rng = random.Random(spec.seed)
        layout = setup(
            self.vgpu,
            rng,
            ring_pages=spec.ring_pages,
            batch_pages=spec.batch_pages,
            data_pages=spec.data_pages,
            gfx_base=GFX_BASE,
            gpa_base=GPA_BASE,
        )
        if spec.submits is None:
            work = random_commands(rng, layout.data_pages, layout.batch_pages, count=spec.commands)
            work.install(self.vgpu.memory, self.vgpu.ggtt)
            room = (self.vgpu.ring_size - 16) // 4
            self.chunks = _chunks(work.ring, spec.per_submission, room)
        else:
            self.chunks = list(spec.submits)
        ggtt = self.vgpu.ggtt
        self.mapped = frozenset(
            ggtt.translate(i << GTT_PAGE_BITS) >> GTT_PAGE_BITS for i in ggtt.ptes()
        )
        self.aperture = aperture
        outside = {p for p in self.mapped if p >= aperture >> PAGE_BITS}
        if outside:
            raise ValueError(f"pages {_fmt_pages(outside)} lie outside the tracker's aperture")
        self.pending = list(spec.failovers)
        self.secondary = Secondary()
        self.generation = 0
        self.now = 0
        self.done = 0  # submissions done
        self.number = 0  # the last committed checkpoint
        self.deadline = spec.interval
        self.oracle: Committed | None = None
        self.timeline: list[dict[str, Any]] = []
        self.checkpoints: list[CheckpointStats] = []
        self.failovers: list[dict[str, Any]] = []
        # the tracker's contract: pages the bus carried in this epoch and the last, and the
        # last epoch's pages not reported yet (they may come one epoch late)
        self.bus_cur: set[int] = set()
        self.bus_prev: set[int] = set()
        self.late: set[int] = set()
        self._reset_interval()

    # --- bookkeeping ------------------------------------------------------------------------

    def _reset_interval(self) -> None:
        self.acc = _Interval()
        self.pred_since: set[int] = set()  # predicted and cpu pages since the last flip
        self.cpu_since: set[int] = set()
        self.deferred: set[int] = set()  # dirty pages a live round held back
        self.queue: list[int] = []  # the last live round's pages, in link order
        self.queue_start = 0
        self.link_free = self.now

    def _event(self, event: str, **kw: Any) -> None:
        self.timeline.append(
            {
                "event": event,
                "t": kw.pop("t", self.now),
                "gpu": self.vgpu.executor.clock,
                "generation": self.generation,
                **kw,
            }
        )

    def _take(
        self, kind: str, index: int, phase: str | None = None, mid: bool = False
    ) -> FailAt | None:
        for i, f in enumerate(self.pending):
            if f.kind != kind or f.index != index:
                continue
            if kind == "checkpoint" and f.phase != phase:
                continue
            if kind == "primary" and (f.command > 0) != mid:
                continue
            return self.pending.pop(i)
        return None

    def _fail_before(self, c: int, phase: str, t: int) -> None:
        """Fail here if the workload says so; ``t`` is the wall clock then."""
        fail = self._take("checkpoint", c, phase)
        if fail is not None:
            raise _Failed(fail, {"checkpoint": c, "t": t})

    # --- the dirty source -------------------------------------------------------------------

    def _writes(self, aws: tuple[Aw, ...]) -> Generator[Request, Any, None]:
        if aws:
            for aw in aws:
                self.bus_cur.update(pages_touched(aw, aperture=self.aperture))
            yield Writes(aws)

    def _flip(self) -> Generator[Request, Any, set[int]]:
        """Flip, read out, check the tracker's contract; the pages to take as dirty."""
        report = yield Flip()
        if not isinstance(report, EpochReport):
            raise TypeError(
                f"a Flip takes an EpochReport as its reply, not {type(report).__name__}"
            )
        pages = set(report.pages)
        if report.overflow:
            self.acc.overflow = True
            pages |= self.mapped
            self.late = set()
        else:
            lost = self.late - pages
            if lost:
                raise InvariantError(
                    f"the dirty tracker lost page(s) {_fmt_pages(lost)}: written in epoch "
                    f"{report.epoch - 1}, reported neither then nor in epoch {report.epoch}"
                )
            phantom = pages - self.bus_cur - self.bus_prev
            if phantom:
                raise InvariantError(
                    f"the dirty tracker reported page(s) {_fmt_pages(phantom)} in epoch "
                    f"{report.epoch} that no write of it or of the epoch before touched"
                )
            self.late = self.bus_cur - pages
        self.bus_prev, self.bus_cur = self.bus_cur, set()
        return pages

    # --- the workload -----------------------------------------------------------------------

    def _emit(self, index: int) -> Submission:
        vgpu = self.vgpu
        words = self.chunks[index]
        size, start, tail = vgpu.ring_size, vgpu.ring_start, vgpu.tail
        n = len(words) + len(words) % 2
        gfx = {(start + (tail + 4 * i) % size) >> GTT_PAGE_BITS for i in range(n)}
        cpu = {vgpu.ggtt.translate(p << GTT_PAGE_BITS) >> GTT_PAGE_BITS for p in gfx}
        try:
            sub = emit(vgpu, words)
        except (ScanError, VgpuError) as e:
            if self.spec.submits is None:
                raise
            raise UserError(self.spec.source, str(e), f"submit[{index}]") from None
        if sub is None:
            raise VgpuError(f"submission {index + 1} submitted nothing")
        self.cpu_since |= cpu
        self.acc.cpu |= cpu
        return sub

    def _submission(self) -> Generator[Request, Any, None]:
        s = self.done + 1
        fail = self._take("primary", s)
        if fail is not None:
            raise _Failed(fail, {"submission": s, "commands_run": 0})
        sub = self._emit(self.done)
        ex = self.vgpu.executor
        self._event("submit", submission=s, commands=len(sub.commands), predicted=sub.cycles)
        if self.spec.precopy:
            yield from self._precopy(sub.pages)
        t0, g0, first = self.now, ex.clock, ex.state().executed
        fail = self._take("primary", s, mid=True)
        if fail is not None:  # the primary dies part-way through: its memory is torn
            k = min(fail.command, len(sub.commands))
            ex.run(sub.commands[:k])
            yield from self._writes(self.cache.take())
            raise _Failed(fail, {"submission": s, "commands_run": k})
        executed = self.vgpu.run()
        yield from self._writes(self.cache.take())
        actual = ex.clock - g0
        self.now += actual
        self.done += 1
        written = frozenset().union(*(e.pages for e in executed))
        self.acc.actual |= written
        self.acc.predicted |= sub.pages
        self.pred_since |= sub.pages
        self._event("run", submission=s, commands=[first, first + len(executed)], cycles=actual)
        predicted_cross = g0 + sub.cycles >= self.deadline
        if predicted_cross or ex.clock >= self.deadline:
            planned = t0 + (sub.cycles if predicted_cross else self.deadline - g0)
            yield from self._checkpoint("deadline", planned, t0 + actual, self.deadline)

    def _precopy(self, upcoming: frozenset[int]) -> Generator[Request, Any, None]:
        """A live round, if the link is idle and something was written since the last flip.
        Pages the submission about to run is predicted to write are held back (``deferred``):
        sending them now would be wasted, they are sent by a later round or the checkpoint."""
        if self.now < self.link_free or not (self.bus_cur or self.pred_since or self.cpu_since):
            return
        tracker = yield from self._flip()
        dirty = tracker | self.pred_since | self.cpu_since | self.deferred
        pages, self.deferred = dirty - upcoming, dirty & upcoming
        self.acc.tracker |= tracker
        self.pred_since, self.cpu_since = set(), set()
        self.secondary.receive(self.vgpu.memory.copy_pages(sorted(pages)))
        self.queue, self.queue_start = sorted(pages), self.now
        self.link_free = self.now + len(pages) * self.cost.page_cycles
        self.acc.live |= pages
        self.acc.rounds += 1
        self.acc.precopy_pages += len(pages)
        self._event("precopy", checkpoint=self.number + 1, pages=len(pages), tracker=len(tracker))

    # --- checkpoints ------------------------------------------------------------------------

    def _drain(self) -> Generator[Request, Any, tuple[int, int]]:
        """Flush the write cache, invalidate the translation cache, save the context;
        returns (cycles, lines written back)."""
        lines = self.cache.flush()
        yield from self._writes(self.cache.take())
        ex = self.vgpu.executor
        ex.restore(replace(ex.state(), tlb=()))
        c = self.cost
        cycles = c.register_cycles * len(self.vgpu.registers) + c.tlb_cycles + c.line_cycles * lines
        return cycles, lines

    def _checkpoint(
        self, trigger: str, planned: int, end: int, deadline: int | None
    ) -> Generator[Request, Any, None]:
        """Checkpoint after the submission that completed at ``end`` (wall clock); the
        primary stops at ``planned`` (its predicted completion, or the deadline), or at
        ``end`` when the completion interrupt comes first."""
        c = self.number + 1
        cost = self.cost
        stop = min(planned, end)
        self._fail_before(c, "align", stop)
        wait = end - stop
        self.now = stop
        self._event(
            "checkpoint",
            phase="align",
            checkpoint=c,
            deadline=deadline,
            predicted_stop=planned,
            actual_stop=end,
            wait=wait,
        )
        t = stop + wait
        self._fail_before(c, "drain", t)
        drain, lines = yield from self._drain()
        self._event("checkpoint", phase="drain", checkpoint=c, t=t, cycles=drain, lines=lines)
        t += drain
        self._fail_before(c, "snapshot", t)
        tracker = yield from self._flip()
        acc = self.acc
        acc.tracker |= tracker
        missed = acc.actual - acc.tracker - acc.predicted
        if missed:
            raise InvariantError(
                f"checkpoint {c}: recall {1 - len(missed) / len(acc.actual):.4f} < 1: page(s) "
                f"{_fmt_pages(missed)} were written but neither reported nor predicted"
            )
        sent_live = min(len(self.queue), max(0, (stop - self.queue_start) // cost.page_cycles))
        down = tracker | self.pred_since | self.cpu_since | self.deferred
        down |= set(self.queue[sent_live:])
        order = sorted(down)
        images = self.vgpu.memory.copy_pages(order)
        state = self.vgpu.state()
        cursor = Cursor(self.done, c, self.vgpu.executor.clock + self.spec.interval)
        nbytes = state_bytes(state)
        self._event("checkpoint", phase="snapshot", checkpoint=c, t=t, pages=len(order))
        fail = self._take("checkpoint", c, "transfer")
        if fail is not None:
            k = len(order) // 2 if fail.after is None else min(fail.after, len(order))
            self.secondary.receive({p: images[p] for p in order[:k]})
            t += k * cost.page_cycles
            raise _Failed(fail, {"checkpoint": c, "pages_sent": k, "t": t})
        self.secondary.receive(images)
        self.secondary.receive_state(state, cursor)
        transfer = len(order) * cost.page_cycles + cost.state_cycles(nbytes)
        self._event(
            "checkpoint", phase="transfer", checkpoint=c, t=t, pages=len(order), cycles=transfer
        )
        t += transfer
        self._fail_before(c, "commit", t)
        self.secondary.commit()
        self.oracle = Committed(self.cache.coherent(), state, cursor)
        downtime = wait + drain + transfer + cost.commit_cycles
        t += cost.commit_cycles
        self._event("checkpoint", phase="commit", checkpoint=c, t=t, downtime=downtime)
        covered = len(acc.actual & (acc.tracker | acc.predicted))
        self.checkpoints.append(
            CheckpointStats(
                checkpoint=c,
                generation=self.generation,
                kind="incremental",
                trigger=trigger,
                t=stop,
                gpu=self.vgpu.executor.clock,
                deadline=deadline,
                predicted_stop=planned,
                actual_stop=end,
                wait_cycles=wait,
                drain_cycles=drain,
                lines_flushed=lines,
                tracker_pages=len(acc.tracker),
                predicted_pages=len(acc.predicted),
                actual_pages=len(acc.actual),
                cpu_pages=len(acc.cpu),
                precopy_rounds=acc.rounds,
                precopy_pages=acc.precopy_pages,
                downtime_pages=len(order),
                sent_pages=len(acc.live | down),
                baseline_full_pages=len(self.mapped),
                baseline_dirty_pages=len(acc.tracker | acc.cpu),
                precision=_ratio(len(acc.predicted & acc.actual), len(acc.predicted)),
                recall=_ratio(covered, len(acc.actual)),
                tracker_recall=_ratio(len(acc.actual & acc.tracker), len(acc.actual)),
                overflow=acc.overflow,
                state_bytes=nbytes,
                downtime_cycles=downtime,
            )
        )
        self.now = t
        self.number, self.deadline = c, cursor.deadline
        self._reset_interval()
        self.secondary.begin(c + 1)

    def _full(self, trigger: str) -> Generator[Request, Any, None]:
        """A full copy to a new secondary, while stopped: at the start, after a failover."""
        c = self.number
        drain, lines = yield from self._drain()
        if trigger == "start":
            yield from self._flip()  # nothing written yet: opens the first epoch
        pages = sorted(self.mapped | set(self.vgpu.memory.pages()))
        state = self.vgpu.state()
        cursor = Cursor(self.done, c, self.deadline)
        nbytes = state_bytes(state)
        self.secondary.begin(c)
        self.secondary.receive(self.vgpu.memory.copy_pages(pages))
        self.secondary.receive_state(state, cursor)
        self.secondary.commit()
        self.oracle = Committed(self.cache.coherent(), state, cursor)
        cost = self.cost
        downtime = (
            drain + len(pages) * cost.page_cycles + cost.state_cycles(nbytes) + cost.commit_cycles
        )
        self._event("checkpoint", phase="full", checkpoint=c, pages=len(pages), downtime=downtime)
        self.checkpoints.append(
            CheckpointStats(
                checkpoint=c,
                generation=self.generation,
                kind="full",
                trigger=trigger,
                t=self.now,
                gpu=self.vgpu.executor.clock,
                drain_cycles=drain,
                lines_flushed=lines,
                downtime_pages=len(pages),
                sent_pages=len(pages),
                baseline_full_pages=len(self.mapped),
                baseline_dirty_pages=len(pages),
                state_bytes=nbytes,
                downtime_cycles=downtime,
            )
        )
        self.now += downtime
        self._reset_interval()
        self.secondary.begin(c + 1)

    # --- failover ---------------------------------------------------------------------------

    def _failover(self, failed: _Failed) -> Generator[Request, Any, None]:
        fail = failed.fail
        oracle = self.oracle
        assert oracle is not None  # checkpoint 0 is committed before anything can fail
        # The primary ran (the wall clock) until it failed, part-way through a checkpoint.
        self.now = max(self.now, failed.detail.get("t", self.now))
        self._event("failover", at=fail.kind, index=fail.index, phase=fail.phase, **failed.detail)
        committed = self.secondary.take_over()
        vgpu, cache = _primary(self.spec, committed.memory)
        vgpu.restore(committed.state)
        checks = {
            "memory": committed.memory == oracle.memory,
            "state": vgpu.state() == oracle.state,
            "cursor": committed.cursor == oracle.cursor,
        }
        record = {
            "failover": fail.describe(),
            "at": fail.kind,
            "index": fail.index,
            "phase": fail.phase,
            **failed.detail,
            "restored": committed.cursor.checkpoint,
            "verified": all(checks.values()),
        }
        self.failovers.append(record)
        if not record["verified"]:
            wrong = ", ".join(k for k, ok in checks.items() if not ok)
            raise InvariantError(
                f"failover ({fail.describe()}): the secondary's {wrong} differ(s) from the "
                f"primary at its last committed checkpoint {oracle.cursor.checkpoint}"
            )
        self.vgpu, self.cache = vgpu, cache
        self.generation += 1
        cur = committed.cursor
        self.done, self.number, self.deadline = cur.submission, cur.checkpoint, cur.deadline
        self._event("restore", checkpoint=cur.checkpoint, verified=True)
        # the tracker's epoch holds the dead primary's writes: flip, drop, and forget them
        yield Flip()
        self.bus_prev, self.bus_cur, self.late = self.bus_cur | self.bus_prev, set(), set()
        self.secondary = Secondary()
        yield from self._full("restore")
        self._event("resume", submission=self.done + 1)

    # --- the run ----------------------------------------------------------------------------

    def steps(self) -> Generator[Request, Any, RunResult]:
        yield from self._full("start")
        while True:
            try:
                if self.done < len(self.chunks):
                    yield from self._submission()
                    continue
                assert self.oracle is not None
                if self.done == self.oracle.cursor.submission:
                    break
                end = self.now
                yield from self._checkpoint("end", end, end, None)
            except _Failed as failed:
                yield from self._failover(failed)
        yield from self._flip()  # settles the tracker's contract for the last epoch
        committed = self.secondary.committed
        assert committed is not None and self.oracle is not None
        if committed.memory != self.oracle.memory or committed.state != self.oracle.state:
            raise InvariantError("at the end, the secondary differs from the primary's last commit")
        return RunResult(
            spec=self.spec,
            cost=self.cost,
            checkpoints=self.checkpoints,
            timeline=self.timeline,
            failovers=self.failovers,
            not_reached=self.pending,
            memory=self.cache.coherent(),
            state=self.vgpu.state(),
            secondary=committed,
            submissions=len(self.chunks),
            wall_cycles=self.now,
            gpu_cycles=self.vgpu.executor.clock,
        )


Steps = Generator[Request, EpochReport | None, RunResult]


def run_steps(
    spec: WorkloadSpec, *, cost: CheckpointCost | None = None, aperture: int = APERTURE
) -> Steps:
    """The run as a generator of :class:`Writes` and :class:`Flip` requests (the module
    docstring); its return value is the :class:`RunResult`.

    Parameters
    ----------
    spec : WorkloadSpec
    cost : CheckpointCost, optional
        The checkpoint's costs (default: :meth:`CheckpointCost.for_link` of the workload's
        ``link_gbytes``).
    aperture : int
        The tracker's aperture in bytes, from address 0.

    Raises
    ------
    InvariantError
        A checked invariant failed (the module docstring).
    UserError
        An explicit submission the scanner refuses.
    """
    cost = CheckpointCost.for_link(spec.link_gbytes) if cost is None else cost
    return _Run(spec, cost, aperture).steps()


class DirtySource(Protocol):
    """What answers the requests: a dirty tracker behind an AW snoop."""

    def write(self, aws: Sequence[Aw]) -> None: ...

    def flip(self) -> EpochReport: ...


class ModelSource:
    """The golden model :class:`~models.gpu.tracker.DirtyTracker` as the dirty source; its
    log is drained after every request, as the log interrupt's handler would."""

    def __init__(self, tracker: DirtyTracker | None = None) -> None:
        self.tracker = DirtyTracker() if tracker is None else tracker

    def write(self, aws: Sequence[Aw]) -> None:
        for aw in aws:
            self.tracker.write(aw)
        self.tracker.log_pop()

    def flip(self) -> EpochReport:
        self.tracker.log_pop()
        self.tracker.flip()
        return self.tracker.read_out()


def drive(steps: Steps, source: DirtySource) -> RunResult:
    """Run ``steps`` to the end, answering its requests from ``source``."""
    reply: EpochReport | None = None
    while True:
        try:
            request = steps.send(reply)
        except StopIteration as stop:
            return stop.value
        if isinstance(request, Writes):
            source.write(request.aws)
            reply = None
        elif isinstance(request, Flip):
            reply = source.flip()
        else:
            raise TypeError(f"unknown request {request!r}")


def run_model(
    spec: WorkloadSpec, *, source: DirtySource | None = None, cost: CheckpointCost | None = None
) -> RunResult:
    """The run with the tracker's golden model (or ``source``) behind it."""
    return drive(run_steps(spec, cost=cost), ModelSource() if source is None else source)


def _jsonl(rows: Sequence[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def write_outputs(result: RunResult, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``checkpoints.jsonl``, ``timeline.jsonl`` and ``summary.json`` into ``out_dir``,
    all of them or none."""
    with atomic_output_dir(out_dir) as tmp:
        (tmp / "checkpoints.jsonl").write_text(_jsonl([asdict(c) for c in result.checkpoints]))
        (tmp / "timeline.jsonl").write_text(_jsonl(result.timeline))
        (tmp / "summary.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
    return Path(out_dir)
