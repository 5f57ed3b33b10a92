"""Tests of the GPU golden model (``models/gpu``) against independent oracles."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.gpu.axi import Aw, Burst, byte_spans, pages_touched
from models.gpu.trace import FLIP, load_trace, run_model, write_epochs
from models.gpu.tracker import DirtyTracker, EpochReport, LogEntry, TrackerError
from vmassist.errors import UserError


def spec_beats(aw: Aw) -> list[tuple[int, int]]:
    """Each beat's bytes ``[lo, hi)``, by the AXI4 specification's burst pseudocode (ARM IHI
    0022, "Burst address"), one beat at a time: the oracle for the model's closed form."""
    nb, n = aw.beat_bytes, aw.beats
    aligned = aw.addr // nb * nb
    boundary = aw.addr // (nb * n) * (nb * n)
    beats = [(aw.addr, aligned + nb)]  # the first beat: from the start address to its slot's end
    addr = aligned
    for _ in range(1, n):
        if aw.burst != Burst.FIXED:
            addr += nb
            if aw.burst == Burst.WRAP and addr == boundary + nb * n:
                addr = boundary
            beats.append((addr, addr + nb))
        else:
            beats.append((aw.addr, aligned + nb))
    return beats


def as_bytes(spans) -> set[int]:
    return {b for lo, hi in spans for b in range(lo, hi)}


aws = st.builds(
    Aw,
    addr=st.integers(0, 1 << 20),
    len=st.integers(0, 255),
    size=st.integers(0, 7),
    burst=st.sampled_from(list(Burst)),
)
legal_wraps = st.builds(
    lambda size, beats, slot, base: Aw(
        base * (beats << size) + (slot % beats << size), beats - 1, size, Burst.WRAP
    ),
    size=st.integers(0, 7),
    beats=st.sampled_from([2, 4, 8, 16]),
    slot=st.integers(0, 15),
    base=st.integers(0, 1000),
)


def defined(aw: Aw) -> bool:
    """The specification gives the burst's addresses (a WRAP of 2, 4, 8 or 16 beats)."""
    return aw.burst != Burst.RESERVED and (aw.burst != Burst.WRAP or aw.beats in (2, 4, 8, 16))


def oracle_bytes(aw: Aw) -> set[int]:
    """The specification's bytes; for a burst without defined addresses, every byte of every
    container of its total size that holds ``awaddr`` (and the INCR bytes, for the reserved
    type): what a slave could write."""
    if defined(aw):
        return as_bytes(spec_beats(aw))
    total = aw.beats * aw.beat_bytes
    out = set(range(max(0, aw.addr - total + 1), aw.addr + total))
    if aw.burst == Burst.RESERVED:
        out |= as_bytes(spec_beats(Aw(aw.addr, aw.len, aw.size, Burst.INCR)))
    return out


@settings(max_examples=400, deadline=None)
@given(aws)
def test_byte_spans_are_the_specification_beats(aw):
    assert as_bytes(byte_spans(aw)) == oracle_bytes(aw)


@settings(max_examples=200, deadline=None)
@given(legal_wraps)
def test_a_legal_wrap_covers_its_whole_container(aw):
    total = aw.beats * aw.beat_bytes
    lo = aw.addr // total * total
    assert as_bytes(byte_spans(aw)) == set(range(lo, lo + total))


@settings(max_examples=400, deadline=None)
@given(aws, st.sampled_from([12, 13, 16]), st.integers(1, 512))
def test_pages_are_those_of_the_bytes_inside_the_aperture(aw, page_bits, pages):
    aperture = pages << page_bits
    want = sorted({b >> page_bits for b in oracle_bytes(aw) if b < aperture})
    assert pages_touched(aw, page_bits=page_bits, aperture=aperture) == want


def test_pages_of_typical_bursts():
    # A 64-byte INCR burst inside one page, one that crosses into the next (illegal in AXI,
    # seen from a faulty master), a FIXED burst, a WRAP straddling nothing, and one outside.
    assert pages_touched(Aw(0x1FC0, 7, 3, Burst.INCR)) == [1]
    assert pages_touched(Aw(0x1FF0, 7, 3, Burst.INCR)) == [1, 2]
    assert pages_touched(Aw(0x3000, 255, 7, Burst.FIXED)) == [3]
    assert pages_touched(Aw(0x4030, 3, 4, Burst.WRAP)) == [4]
    assert pages_touched(Aw(256 << 20, 0, 3, Burst.INCR)) == []


@pytest.mark.parametrize(
    ("field", "value"), [("addr", -1), ("len", 256), ("size", 8), ("burst", 4)]
)
def test_an_impossible_aw_is_refused(field, value):
    args = {"addr": 0, "len": 0, "size": 0, "burst": Burst.INCR, field: value}
    with pytest.raises(ValueError):
        Aw(**args)


@pytest.mark.parametrize("aperture", [0, 4095, 4097])
def test_an_aperture_of_part_pages_is_refused(aperture):
    with pytest.raises(ValueError, match="aperture"):
        pages_touched(Aw(0, 0, 0, Burst.INCR), aperture=aperture)


# ---- the tracker ----

ops = st.lists(
    st.one_of(
        st.tuples(st.just("write"), aws),
        st.just(("flip",)),
        st.just(("read",)),
        st.tuples(st.just("pop"), st.integers(0, 8)),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(ops, st.integers(1, 12))
def test_tracker_reports_each_epochs_pages_and_logs_first_dirties(script, log_depth):
    # The oracle: the bytes of each write by the specification's beats, grouped by the epoch
    # the write came in, and a log that keeps the first dirty of each page per epoch while it
    # has room.
    tr = DirtyTracker(page_bits=12, aperture=64 << 12, log_depth=log_depth)
    written: dict[int, set[int]] = {0: set()}
    lost: set[int] = set()
    log: list[LogEntry] = []
    popped: list[LogEntry] = []
    epoch, pending = 0, False
    reports = []
    for op in script:
        if op[0] == "write":
            pages = {b >> 12 for b in oracle_bytes(op[1]) if b < 64 << 12}
            for p in sorted(pages - written[epoch]):
                if len(log) < log_depth:
                    log.append(LogEntry(epoch, p))
                else:
                    lost.add(epoch)
            written[epoch] |= pages
            tr.write(op[1])
        elif op[0] == "flip":
            if pending:
                with pytest.raises(TrackerError):
                    tr.flip()
                continue
            assert tr.flip() == epoch
            epoch, pending = epoch + 1, True
            written[epoch] = set()
        elif op[0] == "read":
            if not pending:
                with pytest.raises(TrackerError):
                    tr.read_out()
                continue
            reports.append(tr.read_out())
            pending = False
        else:
            popped += tr.log_pop(op[1])
            log = log[op[1] :]
    assert [r.epoch for r in reports] == sorted({r.epoch for r in reports})
    for r in reports:
        assert set(r.pages) == written[r.epoch]
        assert list(r.pages) == sorted(r.pages)
        assert r.overflow == (r.epoch in lost)
    assert tr.log_pop() == log
    assert tr.counters.writes == sum(op[0] == "write" for op in script)
    assert tr.counters.new_pages == sum(map(len, written.values()))


def test_tracker_log_overflow_sets_the_epochs_flag_and_interrupts():
    tr = DirtyTracker(log_depth=2)
    for page in range(3):
        tr.write(Aw(page << 12, 0, 3, Burst.INCR))
    assert tr.irq(threshold=2)
    assert tr.irq(threshold=3)  # a full log interrupts whatever the threshold
    assert tr.counters.log_overflows == 1
    tr.flip()
    assert tr.log_pop() == [LogEntry(0, 0), LogEntry(0, 1)]  # page 2's entry was lost
    tr.write(Aw(0, 0, 3, Burst.INCR))  # logged: software drained the log
    assert tr.read_out() == EpochReport(0, (0, 1, 2), overflow=True)
    tr.flip()
    assert tr.read_out() == EpochReport(1, (0,), overflow=False)
    assert tr.log_pop() == [LogEntry(1, 0)]


def test_tracker_counts_writes_outside_the_aperture():
    tr = DirtyTracker(aperture=1 << 20)
    assert tr.write(Aw(1 << 20, 15, 3, Burst.INCR)) == []
    assert tr.write(Aw((1 << 20) - 8, 15, 3, Burst.INCR)) == [255]
    assert (tr.counters.writes, tr.counters.outside, tr.counters.new_pages) == (2, 1, 1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"page_bits": 0}, "page_bits"), ({"aperture": 6000}, "aperture"), ({"log_depth": 0}, "log")],
)
def test_tracker_parameters_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DirtyTracker(**kwargs)


# ---- traces ----


@settings(max_examples=100, deadline=None)
@given(
    items=st.lists(
        st.one_of(aws.filter(lambda aw: aw.burst != Burst.RESERVED), st.just(FLIP)), max_size=60
    )
)
def test_a_trace_round_trips_and_the_model_reports_each_epochs_pages(items, tmp_path_factory):
    path = tmp_path_factory.mktemp("trace") / "aw.csv"
    lines = ["awaddr,awlen,awsize,awburst"]
    for it in items:
        lines.append("flip" if it == FLIP else f"{it.addr:#x},{it.len},{it.size},{it.burst.name}")
    path.write_text("\n".join(lines) + "\n")
    assert load_trace(path) == items
    reports = run_model(items)
    # The oracle: the pages of each epoch's writes by the specification's beats.
    epochs: list[set[int]] = [set()]
    for it in items:
        if it == FLIP:
            epochs.append(set())
        else:
            epochs[-1] |= {b >> 12 for b in oracle_bytes(it) if b < 256 << 20}
    assert [(r.epoch, set(r.pages)) for r in reports] == list(enumerate(epochs))
    out = tmp_path_factory.mktemp("out")
    text = write_epochs(out, reports).read_text()
    assert [json.loads(line) for line in text.splitlines()] == [
        {"epoch": r.epoch, "pages": list(r.pages), "overflow": r.overflow} for r in reports
    ]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("", "line 1"),
        ("addr,len,size,burst\n", "line 1"),
        ("awaddr,awlen,awsize,awburst\n0x10,0,3\n", "line 2"),
        ("awaddr,awlen,awsize,awburst\nflip\n0x1g,0,3,INCR\n", "line 3: awaddr"),
        ("awaddr,awlen,awsize,awburst\n0,256,3,INCR\n", "line 2: awlen"),
        ("awaddr,awlen,awsize,awburst\n0,0,8,INCR\n", "line 2: awsize"),
        ("awaddr,awlen,awsize,awburst\n0,0,3,RESERVED\n", "line 2: awburst"),
        ("awaddr,awlen,awsize,awburst\n-1,0,3,INCR\n", "line 2: awaddr"),
    ],
)
def test_a_bad_trace_names_its_line_and_field(tmp_path, text, where):
    path = tmp_path / "aw.csv"
    path.write_text(text)
    with pytest.raises(UserError) as e:
        load_trace(path)
    assert str(e.value).startswith(f"{path}: {where}: ")


def test_an_unreadable_trace_is_one_error(tmp_path):
    with pytest.raises(UserError, match="cannot read"):
        load_trace(tmp_path / "missing.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe")
    with pytest.raises(UserError, match="UTF-8"):
        load_trace(tmp_path / "bin.csv")
