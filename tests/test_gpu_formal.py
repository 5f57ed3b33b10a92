"""The GPU dirty tracker's formal proofs (``hdl/gpu/formal.py``): each registered proof holds by
k-induction, at no smaller k and not without its strengthening; a deliberately false claim, and
a tracker with its forwarding taken out, are reported as failing, with a counterexample from
reset; and the harness's own arithmetic of what a burst touches is the model's
(``models/gpu/axi.py``), so that the proofs check the contract. The registered proofs also run
in ``tests/test_formal_infra.py::test_registered_proof``."""

from __future__ import annotations

import random

import pytest
from amaranth import Module, Signal
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from hdl.gpu import DirtyTracker
from hdl.gpu.formal import PROOFS, TrackerHarness, touches
from models.gpu.axi import Aw, Burst, pages_touched
from vmassist.formal import prove

pytestmark = pytest.mark.formal

_BY_NAME = {p.name: p for p in PROOFS}


def test_registered():
    assert {p.name: (p.mode, p.depth) for p in PROOFS} == {
        "gpu.no_loss": ("prove", 4),
        "gpu.log_overflow": ("prove", 4),
    }


@pytest.mark.parametrize("name", sorted(_BY_NAME))
def test_proof_holds(name, tmp_path):
    result = _BY_NAME[name].run(tmp_path)
    assert result.passed, f"{result.status}: {result.detail}\nlog: {result.log}"
    assert "Temporal induction successful" in result.log.read_text()


@pytest.mark.parametrize("name", sorted(_BY_NAME))
def test_shallower_induction_is_not_proven(name, tmp_path):
    # k one below the registered depth: the induction step fails (the read-modify-write stages
    # are left to the unrolling), which the runner must not report as a pass.
    proof = _BY_NAME[name]
    result = prove(name, proof.build(), depth=proof.depth - 1, build_dir=tmp_path, timeout=300)
    assert result.status == "UNKNOWN", f"{result.status}: {result.detail}\nlog: {result.log}"


@pytest.mark.parametrize("claim", TrackerHarness.CLAIMS)
def test_claims_alone_are_not_inductive(claim, tmp_path):
    # Without the strengthening the claims hold (the registered proofs) but are not inductive.
    depth = {"no_loss": 4, "overflow": 4}[claim]
    harness = TrackerHarness(claim, invariants=False)
    result = prove(f"bare_{claim}", harness, depth=depth, build_dir=tmp_path, timeout=300)
    assert result.status == "UNKNOWN", f"{result.status}: {result.detail}\nlog: {result.log}"


# (false claim, depth): each must give a counterexample (FAIL) by BMC from reset, not merely
# fail to prove. Depths are the step of the counterexample plus a margin.
BROKEN = [
    # A write taken in a flip's cycle is reported with the epoch that flip ends (the tracker
    # registers the AW with the epoch current then): claiming it belongs to the next one makes
    # its report in the ended epoch's read-out spurious (step 16: the flip and the AW at reset,
    # W's word the first read out).
    ("flip_write_next", 18),
    # An AW dropped for want of room in the op queue (two AWs back to back fill a queue of 2)
    # is not reported; only the overflow flag covers it (step 21: the end of the read-out).
    ("drops_unflagged", 23),
    # Four pages dirtied, nobody reading the log: W's entry, the fifth, is lost (step 16).
    ("log_never_lost", 18),
    # A full log interrupts whatever the threshold (one above the depth here) (step 16).
    ("irq_threshold_only", 18),
]


@pytest.mark.parametrize(("bug", "depth"), BROKEN, ids=[b[0] for b in BROKEN])
def test_false_claim_fails(bug, depth, tmp_path):
    harness = TrackerHarness(TrackerHarness.BUGS[bug], bug=bug, invariants=False)
    result = prove(bug, harness, depth=depth, mode="bmc", build_dir=tmp_path, timeout=600)
    assert result.status == "FAIL", f"{result.status}: {result.detail}\nlog: {result.log}"
    assert "hdl/gpu/formal.py" in result.detail  # names the failing Assert


def test_broken_forwarding_is_caught(tmp_path):
    # The tracker with its read-modify-write forwarding taken out: a page written twice in a
    # row is found new twice, and logged twice in its epoch (step 14). (It also loses pages
    # from the read-out, which BMC takes minutes to reach.)
    harness = TrackerHarness("overflow", mutant="no_forwarding", invariants=False)
    result = prove("no_fwd", harness, depth=16, mode="bmc", build_dir=tmp_path, timeout=600)
    assert result.status == "FAIL", f"{result.status}: {result.detail}\nlog: {result.log}"
    assert "hdl/gpu/formal.py" in result.detail


def _random_aw(rng: random.Random, aperture: int) -> Aw:
    size = rng.randrange(8)
    burst = Burst(rng.randrange(4))
    if rng.random() < 0.3:
        length = rng.choice([1, 3, 7, 15])  # the WRAPs of defined length, among others
    else:
        length = rng.randrange(256) if rng.random() < 0.5 else rng.randrange(4)
    addr = rng.randrange(2 * aperture)
    if rng.random() < 0.3:
        addr = addr >> size << size
    return Aw(addr, length, size, burst)


def test_touches_is_the_contract():
    # The harness decides by `touches` whether an AW writes the watched page; against
    # `pages_touched`, for every page of the proofs' aperture, on random bursts of every kind.
    page_bits, aperture, addr_width = 7, 1 << 13, 14
    npages = aperture >> page_bits
    m = Module()
    awaddr, awlen, awsize, awburst = Signal(addr_width), Signal(8), Signal(3), Signal(2)
    page = Signal(range(npages))
    out = touches(m, awaddr, awlen, awsize, awburst, page, page_bits=page_bits)
    rng = random.Random(4)
    aws = [_random_aw(rng, aperture) for _ in range(300)]
    mismatches = []

    async def bench(ctx):
        for aw in aws:
            ctx.set(awaddr, aw.addr)
            ctx.set(awlen, aw.len)
            ctx.set(awsize, aw.size)
            ctx.set(awburst, aw.burst)
            want = set(pages_touched(aw, page_bits=page_bits, aperture=aperture))
            for p in range(npages):
                ctx.set(page, p)
                if bool(ctx.get(out)) != (p in want):
                    mismatches.append((aw, p))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert not mismatches, mismatches[:5]
    assert any(aw.burst == Burst.WRAP and aw.len in (1, 3, 7, 15) for aw in aws)


def test_a_log_of_two_is_refused():
    # A SyncFIFOBuffered of 2 refuses a write while it holds one entry: such a log lost the
    # second of two first dirties in a row, with room for it, and raised irq below threshold.
    with pytest.raises(ValueError, match="log_depth must be at least 3"):
        DirtyTracker(log_depth=2)
    Fragment.get(DirtyTracker(log_depth=3), None)


def test_harness_parameter_checks():
    with pytest.raises(ValueError, match="claim"):
        TrackerHarness("nonsense")
    with pytest.raises(ValueError, match="bug"):
        TrackerHarness("no_loss", bug="log_never_lost")
    with pytest.raises(ValueError, match="bug"):
        TrackerHarness("overflow", bug="nonsense")
    with pytest.raises(ValueError, match="mutant"):
        TrackerHarness("no_loss", mutant="nonsense")
    with pytest.raises(ValueError, match="op_depth"):
        TrackerHarness("no_loss", op_depth=4)
    Fragment.get(TrackerHarness("no_loss", op_depth=4, invariants=False), "formal")
