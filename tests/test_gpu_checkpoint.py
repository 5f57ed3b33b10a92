"""Tests of the checkpoint manager, the secondary and failover (``models/gpu/run.py``), after
QEMU's colo-tests: failures injected at seeded random points, on the primary and in every
phase of a checkpoint; the secondary must equal the primary's last committed checkpoint every
time, and mutations of the manager must be caught.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from models.gpu.axi import Aw, pages_touched
from models.gpu.cache import WriteCache
from models.gpu.checkpoint import CheckpointCost, Cursor, InvariantError, Secondary
from models.gpu.executor import pages_of
from models.gpu.run import (
    Flip,
    ModelSource,
    Writes,
    drive,
    memory_digest,
    run_model,
    run_steps,
    write_outputs,
)
from models.gpu.tracker import DirtyTracker, EpochReport
from models.gpu.vgpu import GuestMemory, Submission, Vgpu
from models.gpu.workload_file import PHASES, FailAt, WorkloadSpec, load_workload
from vmassist.errors import UserError

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "examples" / "gpu").glob("*.toml"))
PAGE = 4096


def small(seed: int, **kw) -> WorkloadSpec:
    """A small workload whose shape varies with the seed (a few hundredths of a second)."""
    return replace(
        WorkloadSpec(
            seed=seed,
            commands=30 + seed % 40,
            per_submission=1 + seed % 6,
            data_pages=8 + seed % 56,
            batch_pages=seed % 5,
            interval=1000 + seed * 737 % 4000,
            precopy=seed % 3 != 0,
            link_gbytes=(10, 40, 200)[seed % 3],
        ),
        **kw,
    )


# --- the examples: the model's figures ----------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples(path: Path):
    spec = load_workload(path)
    result = run_model(spec)
    summary = result.summary()
    inc = [c for c in result.checkpoints if c.kind == "incremental"]
    assert inc
    for c in inc:
        assert c.recall in (1.0, None)
        assert c.precision is None or 0 <= c.precision <= 1
        assert c.tracker_recall in (1.0, None)  # the model tracker misses nothing
    assert summary["recall"] == 1.0
    assert summary["reduction_vs_full_pct"] >= 80  # gMig's target: the model meets it
    assert summary["failovers"]["verified"] == summary["failovers"]["injected"]
    assert summary["failovers"]["injected"] == len(spec.failovers)
    assert summary["failovers"]["not_reached"] == []


def test_example_figures_are_honest():
    """Every downtime is what its parts add up to; pre-copy sends fewer pages while stopped
    than copying the interval's dirty pages would, and prediction only over-counts."""
    result = run_model(load_workload(REPO / "examples" / "gpu" / "steady.toml"))
    cost = result.cost
    for c in result.checkpoints:
        parts = c.wait_cycles + c.drain_cycles + c.downtime_pages * cost.page_cycles
        parts += cost.state_cycles(c.state_bytes) + cost.commit_cycles
        assert c.downtime_cycles == parts
        if c.kind == "incremental":
            assert c.actual_pages <= c.predicted_pages
            assert c.downtime_pages <= c.sent_pages <= c.baseline_full_pages
    summary = result.summary()
    assert summary["downtime_pages"] < summary["baseline_dirty_pages"]
    no_precopy = run_model(replace(result.spec, precopy=False)).summary()
    assert summary["downtime_pages"] < no_precopy["downtime_pages"]
    assert no_precopy["final_memory_sha256"] == summary["final_memory_sha256"]


# --- failover at random points --------------------------------------------------------------


def _random_failovers(rng: random.Random, submissions: int, checkpoints: int) -> list[FailAt]:
    out = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["before", "mid", "checkpoint", "checkpoint"])
        if kind == "before":
            out.append(FailAt("primary", rng.randint(1, submissions)))
        elif kind == "mid":
            out.append(FailAt("primary", rng.randint(1, submissions), command=rng.randint(1, 12)))
        else:
            phase = rng.choice(PHASES)
            after = rng.choice([None, rng.randint(0, 40)]) if phase == "transfer" else None
            out.append(FailAt("checkpoint", rng.randint(1, checkpoints), phase, after=after))
    return out


def test_failover_at_random_points():
    """200 seeded runs, 1 to 3 failures each at random points: every failover restores the
    primary's last committed checkpoint exactly (the run raises otherwise), and the restored
    vGPU finishes the workload in the same memory and state as a run without failures."""
    fired: set[tuple[str, str]] = set()
    for seed in range(200):
        spec = small(seed)
        ref = run_model(spec)
        n = sum(c.kind == "incremental" for c in ref.checkpoints)
        rng = random.Random(seed)
        fails = _random_failovers(rng, ref.submissions, n)
        result = run_model(replace(spec, failovers=tuple(fails)))
        where = f"seed {seed}: {[f.describe() for f in fails]}"
        assert result.not_reached == [], where
        assert len(result.failovers) == len(fails), where
        assert all(f["verified"] for f in result.failovers), where
        assert result.memory == ref.memory, where
        assert result.state == ref.state, where
        assert result.summary()["recall"] in (1.0, None), where
        for f in result.failovers:
            if f["at"] == "primary":
                fired.add(("primary", "mid" if f["commands_run"] else "before"))
            else:
                fired.add(("checkpoint", f["phase"]))
    assert fired == {("primary", "before"), ("primary", "mid")} | {
        ("checkpoint", p) for p in PHASES
    }


def test_failover_restores_the_previous_checkpoint():
    """A failure in a checkpoint's phases falls back to the checkpoint before it; one after
    its commit, to it."""
    spec = small(6, precopy=True)  # 19 submissions, 4 checkpoints
    for phase in PHASES:
        result = run_model(replace(spec, failovers=(FailAt("checkpoint", 2, phase),)))
        assert result.failovers[0]["restored"] == 1
    result = run_model(replace(spec, failovers=(FailAt("primary", 1),)))
    assert result.failovers[0]["restored"] == 0
    kinds = [e["event"] for e in result.timeline]
    assert kinds.index("failover") < kinds.index("restore") < kinds.index("resume")


# --- mutations: the checks can fail ----------------------------------------------------------


MUTANT_SEEDS = [6, 8, 11, 17, 20, 24, 30, 33]  # small() runs with 3 checkpoints or more


def _caught(specs: list[WorkloadSpec]) -> list[str]:
    """Each run's InvariantError (every run must raise one)."""
    messages = []
    for spec in specs:
        with pytest.raises(InvariantError) as info:
            run_model(spec)
        messages.append(str(info.value))
    return messages


def test_mutation_no_cache_flush_is_caught(monkeypatch: pytest.MonkeyPatch):
    """Without the drain's flush, memory lags behind the executor: a secondary restored at a
    failover differs from the primary's checkpoint (or, at the end, from its last one)."""
    specs = [small(s, failovers=(FailAt("checkpoint", 3, "drain"),)) for s in MUTANT_SEEDS]
    for spec in specs:
        assert run_model(spec).failovers[0]["verified"]  # passes as it stands
    monkeypatch.setattr(WriteCache, "flush", lambda self: 0)
    messages = _caught(specs)
    assert any(m.startswith("failover") and "memory" in m for m in messages)


def test_mutation_commit_before_transfer_is_caught(monkeypatch: pytest.MonkeyPatch):
    """A secondary that applies pages as they arrive (no two-phase commit) is caught by a
    failure mid-transfer."""
    specs = [small(s, failovers=(FailAt("checkpoint", 2, "transfer"),)) for s in MUTANT_SEEDS]
    for spec in specs:
        assert run_model(spec).failovers[0]["verified"]

    def eager(self: Secondary, pages) -> None:
        self._memory.restore(pages)

    monkeypatch.setattr(Secondary, "receive", eager)
    messages = _caught(specs)
    assert all(m.startswith("failover") and "memory" in m for m in messages)


class LateSource(ModelSource):
    """A legal tracker that reports odd pages one epoch late (the contract allows a write
    to land in the next epoch)."""

    def __init__(self) -> None:
        super().__init__()
        self.carry: set[int] = set()

    def flip(self) -> EpochReport:
        report = super().flip()
        pages = set(report.pages)
        late = {p for p in pages if p % 2}
        pages = (pages - late) | self.carry
        self.carry = late
        return EpochReport(report.epoch, tuple(sorted(pages)), report.overflow)


def test_late_tracker_needs_the_prediction(monkeypatch: pytest.MonkeyPatch):
    """With a tracker that reports late, the predicted pages keep recall at 1 and the
    secondary exact; without the prediction, the recall invariant fires."""
    spec = small(11, precopy=False, failovers=(FailAt("checkpoint", 3, "commit"),))
    result = drive(run_steps(spec), LateSource())
    assert all(f["verified"] for f in result.failovers)
    assert any(c.tracker_recall not in (None, 1.0) for c in result.checkpoints)
    monkeypatch.setattr(Submission, "pages", property(lambda self: frozenset()))
    with pytest.raises(InvariantError, match="recall"):
        drive(run_steps(spec), LateSource())


class LossySource(ModelSource):
    """Loses the lowest page of every read-out."""

    def flip(self) -> EpochReport:
        report = super().flip()
        return EpochReport(report.epoch, report.pages[1:], report.overflow)


def test_lossy_tracker_is_caught(monkeypatch: pytest.MonkeyPatch):
    """A dirty source that loses a page breaks the tracker's contract; without the
    prediction to cover for it, the recall invariant fires first."""
    spec = small(12, precopy=False)
    with pytest.raises(InvariantError, match="lost page"):
        drive(run_steps(spec), LossySource())
    monkeypatch.setattr(Submission, "pages", property(lambda self: frozenset()))
    with pytest.raises(InvariantError, match="recall"):
        drive(run_steps(spec), LossySource())


class PhantomSource(ModelSource):
    def flip(self) -> EpochReport:
        report = super().flip()
        return EpochReport(report.epoch, (*report.pages, 0xFFF0), report.overflow)


def test_phantom_pages_are_caught():
    with pytest.raises(InvariantError, match="no write"):
        drive(run_steps(small(13)), PhantomSource())


def test_overflow_takes_every_mapped_page():
    """A log that overflows (never drained) makes every read-out overflow: the manager
    sends every mapped page, and the checkpoints stay exact."""

    class Undrained(ModelSource):
        def write(self, aws) -> None:
            for aw in aws:
                self.tracker.write(aw)

        def flip(self) -> EpochReport:
            self.tracker.flip()
            return self.tracker.read_out()

    spec = small(14, precopy=False, failovers=(FailAt("checkpoint", 2, "transfer"),))
    result = drive(run_steps(spec), Undrained(DirtyTracker(log_depth=4)))
    inc = [c for c in result.checkpoints if c.kind == "incremental"]
    assert inc and all(c.overflow for c in inc)
    assert all(c.downtime_pages >= spec.mapped_pages for c in inc)
    assert result.failovers[0]["verified"]


# --- the sans-IO protocol ---------------------------------------------------------------------


def test_protocol_by_hand():
    """Driving the generator by hand with the tracker model gives run_model's result; only
    Writes and Flip are asked for, every write lies in the aperture, and the tracker's
    pages are the bursts' pages."""
    spec = small(21, failovers=(FailAt("primary", 2, command=1),))
    tracker = DirtyTracker()
    gen = run_steps(spec)
    reply = None
    written: set[int] = set()
    flips = 0
    while True:
        try:
            request = gen.send(reply)
        except StopIteration as stop:
            result = stop.value
            break
        if isinstance(request, Writes):
            assert request.aws and all(isinstance(aw, Aw) for aw in request.aws)
            for aw in request.aws:
                tracker.write(aw)
                written.update(pages_touched(aw))
            tracker.log_pop()
            reply = None
        else:
            assert isinstance(request, Flip)
            flips += 1
            tracker.log_pop()
            tracker.flip()
            reply = tracker.read_out()
            assert set(reply.pages) <= written
            written = set()
    assert tracker.counters.outside == 0 and tracker.counters.log_overflows == 0
    assert flips >= len(result.checkpoints)
    assert result.summary() == run_model(spec).summary()


def test_protocol_wrong_reply():
    gen = run_steps(small(22))
    request = next(gen)
    while not isinstance(request, Flip):
        request = gen.send(None)
    with pytest.raises(TypeError, match="EpochReport"):
        gen.send(None)


def test_largest_layout_fits_the_aperture():
    spec = WorkloadSpec(commands=1, data_pages=8192, batch_pages=1024, ring_pages=64)
    assert isinstance(next(run_steps(spec)), Flip)


# --- pieces -----------------------------------------------------------------------------------


def test_write_cache_is_coherent():
    rng = random.Random(1)
    memory, ref = GuestMemory(), GuestMemory()
    cache = WriteCache(memory, lines=4)
    written: set[int] = set()
    for _ in range(2000):
        addr = rng.randrange(0, 4 * PAGE - 64)
        if rng.random() < 0.6:
            data = rng.randbytes(rng.randint(1, 200))
            data = data[: 4 * PAGE - addr]
            cache.write(addr, data)
            ref.write(addr, data)
            written.update(range(addr // PAGE, (addr + len(data) - 1) // PAGE + 1))
        else:
            n = rng.randint(1, 300)
            assert cache.read(addr, n) == ref.read(addr, n)
    assert cache.coherent() == ref
    assert cache.flush() <= 4 and cache.dirty_lines == 0
    assert memory == ref
    assert pages_of(cache.take()) == written


def test_secondary_is_two_phase():
    sec = Secondary()
    vgpu = Vgpu()
    state = vgpu.state()
    sec.begin(0)
    sec.receive({1: b"\1" * PAGE})
    sec.receive_state(state, Cursor(0, 0, 100))
    sec.commit()
    sec.begin(1)
    sec.receive({1: b"\2" * PAGE, 2: b"\3" * PAGE})
    sec.receive_state(state, Cursor(3, 1, 200))
    back = sec.take_over()  # before the commit: checkpoint 0
    assert back.cursor == Cursor(0, 0, 100)
    assert back.memory.read(PAGE, 2) == b"\1\1" and back.memory.read(2 * PAGE, 1) == b"\0"
    with pytest.raises(InvariantError):
        sec.commit()


def test_cost_for_link():
    assert CheckpointCost.for_link(10).page_cycles == 410
    assert CheckpointCost.for_link(100).page_cycles == 41


# --- outputs ----------------------------------------------------------------------------------


def test_write_outputs(tmp_path: Path):
    spec = small(30, failovers=(FailAt("checkpoint", 1, "snapshot"),))
    result = run_model(spec)
    out = write_outputs(result, tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoints.jsonl",
        "summary.json",
        "timeline.jsonl",
    ]
    rows = [json.loads(line) for line in (out / "checkpoints.jsonl").read_text().splitlines()]
    assert len(rows) == len(result.checkpoints)
    assert {"checkpoint", "downtime_pages", "baseline_full_pages", "precision", "recall"} <= set(
        rows[-1]
    )
    events = [json.loads(line) for line in (out / "timeline.jsonl").read_text().splitlines()]
    assert {e["event"] for e in events} >= {
        "submit",
        "run",
        "checkpoint",
        "failover",
        "restore",
        "resume",
    }
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failovers"] == {"injected": 1, "verified": 1, "not_reached": []}
    assert summary["final_memory_sha256"] == memory_digest(result.memory)


# --- workload files ---------------------------------------------------------------------------


def test_workload_defaults(tmp_path: Path):
    path = tmp_path / "w.toml"
    path.write_text("seed = 5\n")
    spec = load_workload(path)
    assert spec == WorkloadSpec(seed=5)


GOOD_SUBMIT = '[[submit]]\n[[submit.commands]]\nop = "MI_NOOP"\n'
BLT = '[[submit]]\n[[submit.commands]]\nop = "XY_COLOR_BLT"\ndst = 0\npitch = 4096\ncolor = 0\n'


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("seed = -1", "seed"),
        ("commands = 0", "commands"),
        ('commands = "many"', "commands"),
        ("per_submission = 2000", "per_submission"),
        ("data_pages = 0", "data_pages"),
        ("batch_pages = 5000", "batch_pages"),
        ("ring_pages = 0", "ring_pages"),
        ("interval = 10", "interval"),
        ("precopy = 1", "precopy"),
        ("link_gbytes = 0", "link_gbytes"),
        ("colour = 1", "colour"),
        ("failover = 3", "failover"),
        ('[[failover]]\nat = "moon"\nindex = 1', "failover[0].at"),
        ('[[failover]]\nat = "primary"', "failover[0].index"),
        ('[[failover]]\nat = "primary"\nindex = 0', "failover[0].index"),
        ('[[failover]]\nat = "primary"\nindex = 1\nphase = "drain"', "failover[0].phase"),
        ('[[failover]]\nat = "primary"\nindex = 1\ncommand = -1', "failover[0].command"),
        ('[[failover]]\nat = "checkpoint"\nindex = 1', "failover[0].phase"),
        ('[[failover]]\nat = "checkpoint"\nindex = 1\nphase = "x"', "failover[0].phase"),
        (
            '[[failover]]\nat = "checkpoint"\nindex = 1\nphase = "drain"\nafter = 1',
            "failover[0].after",
        ),
        (
            '[[failover]]\nat = "checkpoint"\nindex = 1\nphase = "drain"\ncommand = 1',
            "failover[0].command",
        ),
        ('[[failover]]\nat = "primary"\nindex = 1\nwhen = 1', "failover[0].when"),
        ("submit = []", "submit"),
        ("commands = 5\n" + GOOD_SUBMIT, "commands"),
        ("per_submission = 5\n" + GOOD_SUBMIT, "per_submission"),
        ("[[submit]]\ncommands = []", "submit[0].commands"),
        ('[[submit]]\n[[submit.commands]]\nop = "FOO"', "submit[0].commands[0].op"),
        ("[[submit]]\n[[submit.commands]]\nid = 1", "submit[0].commands[0].op"),
        (GOOD_SUBMIT + "id = -1", "submit[0].commands[0].id"),
        (GOOD_SUBMIT + "color = 1", "submit[0].commands[0].color"),
        (
            '[[submit]]\n[[submit.commands]]\nop = "MI_STORE_DATA_IMM"\nat = 2\nvalue = 1',
            "submit[0].commands[0].at",
        ),
        (
            '[[submit]]\n[[submit.commands]]\nop = "MI_STORE_DATA_IMM"\nat = 0x100000\nvalue = 1',
            "submit[0].commands[0].at",
        ),
        (
            '[[submit]]\n[[submit.commands]]\nop = "MI_STORE_DATA_IMM"\nat = 0\n'
            "value = 0x1_0000_0000",
            "submit[0].commands[0].value",
        ),
        (
            '[[submit]]\n[[submit.commands]]\nop = "MI_LOAD_REGISTER_IMM"\nreg = 0x2030\nvalue = 1',
            "submit[0].commands[0].reg",
        ),
        (
            '[[submit]]\n[[submit.commands]]\nop = "PIPE_CONTROL"\npost_sync = "immediate"',
            "submit[0].commands[0].at",
        ),
        (
            '[[submit]]\n[[submit.commands]]\nop = "PIPE_CONTROL"\npost_sync = "none"\nat = 8',
            "submit[0].commands[0].at",
        ),
        (
            '[[submit]]\n[[submit.commands]]\nop = "PIPE_CONTROL"\npost_sync = "timestamp"\n'
            "at = 8\ndata = 1",
            "submit[0].commands[0].data",
        ),
        (BLT + "rect = [0, 0, 1024, 300]", "submit[0].commands[0].rect"),
        (BLT + "rect = [5, 0, 1, 3]", "submit[0].commands[0].rect"),
        (BLT + "rect = [0, 0, 1]", "submit[0].commands[0].rect"),
        (BLT, "submit[0].commands[0].rect"),
        (BLT + "rect = [0, 0, 1, 1]\ndepth = 24", "submit[0].commands[0].depth"),
        (
            BLT + "rect = [0, 0, 1, 1]\ndepth = 8\nwrite_rgb = false",
            "submit[0].commands[0].write_rgb",
        ),
        (BLT + "rect = [0, 0, 1, 1]\npitch2 = 4", "submit[0].commands[0].pitch2"),
        (
            '[[submit]]\n[[submit.commands]]\nop = "XY_SRC_COPY_BLT"\ndst = 0\npitch = 64\n'
            "rect = [0, 0, 16, 16]\nsrc = 0xfff00\nsrc_pitch = 64\nsrc_xy = [0, 0]",
            "submit[0].commands[0].src_xy",
        ),
        (
            "ring_pages = 1\n[[submit]]\n"
            + '[[submit.commands]]\nop = "MI_STORE_DATA_IMM"\nat = 0\nvalue = 1\n' * 300,
            "submit[0].commands",
        ),
        ("seed = [", None),
    ],
)
def test_bad_workload(tmp_path: Path, text: str, field: str | None):
    path = tmp_path / "w.toml"
    path.write_text(text + "\n")
    with pytest.raises(UserError) as info:
        load_workload(path)
    assert info.value.file == str(path)
    assert info.value.field == field
    assert "\n" not in str(info.value)


def test_missing_workload(tmp_path: Path):
    with pytest.raises(UserError, match="cannot read"):
        load_workload(tmp_path / "nope.toml")


def test_explicit_submissions_run():
    """The explicit example runs as written: its blits land where the file says."""
    spec = load_workload(REPO / "examples" / "gpu" / "frames.toml")
    assert spec.submits is not None and len(spec.submits) == 5 and spec.commands == 21
    result = run_model(spec)
    vgpu = Vgpu(result.memory)
    vgpu.restore(result.state)
    base = spec.data_base
    assert result.state.register(0x2600) == 3  # the MI_LOAD_REGISTER_IMM
    counter = vgpu.ggtt.translate(base + 0x300000)
    assert result.memory.read64(counter) == 5  # the frame counter: qword 4, then dword 5
    pixel = vgpu.ggtt.translate(base + 4096 * 40 + 4 * 10)
    assert result.memory.read32(pixel) == 0x00102030
    assert min(c.precision for c in result.checkpoints if c.precision is not None) < 1
