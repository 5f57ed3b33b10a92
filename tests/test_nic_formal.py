"""The NIC's formal proofs (``hdl/nic/formal.py``) can fail: a deliberately false claim is reported
as failing, with a counterexample. That every registered proof holds (``nic.egress_delivery``
by k-induction, ``nic.egress_cover`` reaching every fate of the watched frame, the
classifier's ``nic.classify_decision`` and ``nic.classify_response`` by BMC) is checked by
``tests/test_formal_infra.py::test_registered_proof``, which ``make test`` runs."""

from __future__ import annotations

import pytest

from hdl.common.fifo import SKID
from hdl.nic import Egress
from hdl.nic.formal import PROOFS, EgressHarness
from hdl.nic.formal_classify import ClassifierHarness
from vmassist.formal import prove

pytestmark = pytest.mark.formal


# (id, false claim, depth): each must give a counterexample (FAIL) by BMC from reset, not merely
# fail to prove. Depths are the shortest that reach the counterexample, plus a margin.
BROKEN = [
    # Reading VF 0's output as VF 1's, as a design that swapped the two queues would be: a frame
    # passed to VF 0 appears on "VF 1" (cross-VF delivery).
    ("swap_vfs", lambda: EgressHarness(bug="swap_vfs", invariants=False), 14),
    # A bounced frame goes to the VMM; claiming it is dropped is false.
    ("bounce_dropped", lambda: EgressHarness(bug="bounce_dropped", invariants=False), 14),
]


@pytest.mark.parametrize(("name", "build", "depth"), BROKEN, ids=[b[0] for b in BROKEN])
def test_false_claim_fails(name, build, depth, tmp_path):
    result = prove(name, build(), depth=depth, mode="bmc", build_dir=tmp_path, timeout=300)
    assert result.status == "FAIL", f"{result.status}: {result.detail}\nlog: {result.log}"
    assert "hdl/nic/formal.py" in result.detail  # names the failing Assert


def test_bound_below_the_proven_one_is_not_proven(tmp_path):
    # The cover run reaches a frame still undelivered after `depth + SKID - 1` cycles of a ready
    # consumer, so that bound is false; here the ranking no longer closes the induction either.
    harness = EgressHarness(bound=4 + SKID - 1)
    assert harness.bound == harness.dut.depth + SKID - 1
    result = prove("bound_tight", harness, depth=1, build_dir=tmp_path, timeout=300)
    assert not result.passed


# False claims about the classifier's decision: the watched frame's decision, taken at cycle 6
# (every table row in place) and needing rules, comes at step 19.
BROKEN_CLASSIFY = [
    # The first matching rule decides, not the last: a frame two rules of its VF match.
    ("last_match", lambda: ClassifierHarness(bug="last_match"), 20),
    # A blocked frame is bounced exactly when its VF's bounce flag is set.
    ("flip_bounce", lambda: ClassifierHarness(bug="flip_bounce"), 20),
]


@pytest.mark.parametrize(
    ("name", "build", "depth"), BROKEN_CLASSIFY, ids=[b[0] for b in BROKEN_CLASSIFY]
)
def test_classifier_false_claim_fails(name, build, depth, tmp_path):
    result = prove(name, build(), depth=depth, mode="bmc", build_dir=tmp_path, timeout=600)
    assert result.status == "FAIL", f"{result.status}: {result.detail}\nlog: {result.log}"
    assert "hdl/nic/formal_classify.py" in result.detail


def test_classifier_bound_below_the_proven_one_fails(tmp_path):
    # Two frames that need rules, taken back to back just ahead of the watched one (all three
    # holding the queue's credits), hold its decision back to the bound exactly.
    harness = ClassifierHarness(paced=False, bound=14)
    dut = harness.dut
    assert harness.bound == dut.latency(True) + (dut.queue - 1) * (dut.groups - 1) - 1
    result = prove("cls_bound_tight", harness, depth=26, mode="bmc", build_dir=tmp_path)
    assert result.status == "FAIL", f"{result.status}: {result.detail}\nlog: {result.log}"


def test_registered():
    assert {p.name: p.mode for p in PROOFS} == {
        "nic.egress_delivery": "prove",
        "nic.egress_cover": "cover",
        "nic.classify_decision": "bmc",
        "nic.classify_response": "bmc",
    }


def test_harness_and_egress_parameter_checks():
    with pytest.raises(ValueError, match="bug"):
        EgressHarness(bug="nonsense")
    with pytest.raises(ValueError, match="swap_vfs"):
        EgressHarness(n_vfs=1, bug="swap_vfs")
    with pytest.raises(ValueError, match="bug"):
        ClassifierHarness(bug="nonsense")
    with pytest.raises(ValueError, match="paced"):
        ClassifierHarness(paced=False, bug="last_match")
    with pytest.raises(ValueError, match="data_width"):
        Egress(data_width=12, n_vfs=2, depth=4)
    with pytest.raises(ValueError, match="n_vfs"):
        Egress(data_width=8, n_vfs=0, depth=4)
    with pytest.raises(ValueError, match="depth"):
        Egress(data_width=8, n_vfs=2, depth=6)
    with pytest.raises(TypeError, match="depth"):
        Egress(data_width=8, n_vfs=2, depth=4.0)
