"""The formal flow end to end (Amaranth Assert -> RTLIL -> yowasp-sby -> yices), and every
registered proof: ``make test`` runs the proofs ``make formal`` runs."""

from __future__ import annotations

import pytest
from amaranth.asserts import AnySeq
from amaranth.hdl import Cover, Elaboratable, Fragment, Module

from vmassist import formal
from vmassist.examples import WrapCounter
from vmassist.formal import Proof, all_proofs, prove

pytestmark = pytest.mark.formal


def test_true_property_is_proven(tmp_path):
    result = prove("wrap10", WrapCounter(10), depth=4, build_dir=tmp_path)
    assert result.passed, result.detail
    assert result.status == "PASS"
    assert (tmp_path / "wrap10" / "wrap10.sby").exists()
    assert "successful proof by k-induction" in result.log.read_text()


def test_false_property_fails_with_counterexample(tmp_path):
    # count reaches 9 after nine enabled cycles, so "count < 9" is false within depth 12.
    result = prove("wrap10_false", WrapCounter(10, claim=9), depth=12, build_dir=tmp_path)
    assert not result.passed
    assert result.status == "FAIL"
    assert "examples.py" in result.detail  # names the failing Assert's source line


def test_unreached_false_property_is_not_proven(tmp_path):
    # Too shallow for BMC to find the counterexample, and the induction step fails:
    # the runner must not report that as a pass.
    result = prove("wrap10_shallow", WrapCounter(10, claim=9), depth=3, build_dir=tmp_path)
    assert not result.passed
    assert result.status == "UNKNOWN"


def test_bmc_mode(tmp_path):
    assert prove("wrap5_bmc", WrapCounter(5), depth=8, mode="bmc", build_dir=tmp_path).passed
    bad = prove("wrap5_bmc_false", WrapCounter(5, claim=4), depth=8, mode="bmc", build_dir=tmp_path)
    assert bad.status == "FAIL"


class _CoverCount(Elaboratable):
    """A free-running WrapCounter(10) and a cover of ``count == target``."""

    def __init__(self, target: int):
        self.target = target

    def elaborate(self, platform):
        m = Module()
        m.submodules.counter = counter = WrapCounter(10)
        m.d.comb += [counter.en.eq(AnySeq(1)), Cover(counter.count == self.target)]
        return m


def test_cover_mode(tmp_path):
    # 9 is reached after nine enabled cycles; 12 fits in the 4-bit count but is never reached.
    reached = prove("cover9", _CoverCount(9), depth=12, mode="cover", build_dir=tmp_path)
    assert reached.passed, reached.detail
    unreached = prove("cover12", _CoverCount(12), depth=12, mode="cover", build_dir=tmp_path)
    assert unreached.status == "FAIL"


def test_timeout_is_a_failure(tmp_path):
    # 400 cycles of a 10-bit counter take far longer than a second to check.
    result = prove("slow", WrapCounter(1000), depth=400, mode="bmc", timeout=1, build_dir=tmp_path)
    assert result.status == "TIMEOUT"
    assert not result.passed


def test_fragment_with_explicit_ports(tmp_path):
    design = WrapCounter(7)
    fragment = Fragment.get(design, None)
    result = prove("wrap7_fragment", fragment, depth=4, ports=[design.en], build_dir=tmp_path)
    assert result.passed, result.detail


def test_bad_arguments(tmp_path):
    # An elaborated Fragment: a Component that is never elaborated would warn (UnusedElaboratable).
    fragment = Fragment.get(WrapCounter(4), None)
    with pytest.raises(ValueError, match="mode"):
        prove("x", fragment, depth=2, mode="induction", build_dir=tmp_path)
    with pytest.raises(ValueError, match="depth"):
        prove("x", fragment, depth=0, build_dir=tmp_path)
    with pytest.raises(ValueError, match="name"):
        prove("../x", fragment, depth=2, build_dir=tmp_path)


def test_registry_discovery(monkeypatch):
    proofs, missing = all_proofs(["no_such_package.formal"])
    assert "infra.wrap_counter" in [p.name for p in proofs]
    assert missing == ["no_such_package.formal"]
    monkeypatch.setattr(formal, "PROOFS", [*formal.PROOFS, formal.PROOFS[0]])
    with pytest.raises(ValueError, match="registered twice"):
        all_proofs([])


def test_main_fails_when_a_proof_fails(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(formal, "PROOF_MODULES", [])
    monkeypatch.setattr(
        formal, "PROOFS", [*formal.PROOFS, Proof("false", lambda: WrapCounter(6, claim=5), 8)]
    )
    assert formal.main(["--build-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "infra.wrap_counter" in out and "PASS" in out
    assert "false" in out and "FAIL" in out
    assert formal.main(["--build-dir", str(tmp_path), "-k", "infra"]) == 0


_PROOFS, _MISSING = all_proofs()


@pytest.mark.parametrize("proof", _PROOFS, ids=[p.name for p in _PROOFS])
def test_registered_proof(proof: Proof, tmp_path):
    result = proof.run(tmp_path)
    assert result.passed, f"{result.status}: {result.detail}\nlog: {result.log}"
    if proof.mode == "prove":
        assert "successful proof by k-induction" in result.log.read_text()
