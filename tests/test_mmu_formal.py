"""The MMU's formal proofs (``hdl/mmu/formal.py``) can fail: a deliberately false claim is
reported as failing, with a counterexample. That every registered proof holds is checked by
``tests/test_formal_infra.py::test_registered_proof``."""

from __future__ import annotations

import pytest

from hdl.mmu.formal import (
    RefillKillHarness,
    ResponseBoundHarness,
    TlbFlushHarness,
    WalkBoundHarness,
)
from vmassist.formal import prove

pytestmark = pytest.mark.formal


# (id, false design, mode, depth): each must give a counterexample (FAIL), not merely fail to
# prove. Depths are the shortest that reach the counterexample, plus a margin.
BROKEN = [
    # A fill of the watched translation does not clear the flag: the next fill breaks it.
    ("tlb_no_fill_clear", lambda: TlbFlushHarness(bug="no_fill_clear"), "prove", 5),
    # Op PWC does not drop shadow entries, so claiming it does is false.
    ("tlb_pwc_drops_shadow", lambda: TlbFlushHarness(bug="pwc_drops_shadow"), "prove", 5),
    # A flush during one walk does not kill the next request's refill.
    ("refill_no_clear", lambda: RefillKillHarness(bug="no_clear"), "bmc", 27),
    # A shadow walk of four levels reads four entries; an EPT walk reads more than four.
    ("walk_shadow_3", lambda: WalkBoundHarness(shadow_max=3), "bmc", 22),
    ("walk_ept_4", lambda: WalkBoundHarness(ept_max=4), "bmc", 30),
    # A miss with a slow memory takes more than 20 cycles (the bare claim, no ranking).
    ("response_20", lambda: ResponseBoundHarness(bound=20, ranking=False), "bmc", 27),
]


@pytest.mark.parametrize(("name", "build", "mode", "depth"), BROKEN, ids=[b[0] for b in BROKEN])
def test_false_claim_fails(name, build, mode, depth, tmp_path):
    result = prove(name, build(), depth=depth, mode=mode, build_dir=tmp_path, timeout=120)
    assert result.status == "FAIL", f"{result.status}: {result.detail}\nlog: {result.log}"
    assert "hdl/mmu/formal.py" in result.detail  # names the failing Assert


def test_response_bound_below_the_ranking_is_not_proven(tmp_path):
    # One cycle less than the proven bound: the ranking no longer closes the induction.
    bound = ResponseBoundHarness.BOUND - 1
    result = prove("response_tight", ResponseBoundHarness(bound=bound), depth=3, build_dir=tmp_path)
    assert not result.passed


@pytest.mark.parametrize("harness", [TlbFlushHarness, RefillKillHarness])
def test_unknown_bug_is_rejected(harness):
    with pytest.raises(ValueError, match="bug"):
        harness(bug="nonsense")
