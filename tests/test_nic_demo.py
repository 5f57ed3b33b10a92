"""``make demo``'s NIC part on both simulators: the hardware's decisions equal the model's, and
every frame the VMM's software filter approves comes back out of its VF through ``reinject``
(the replay's scoreboard asserts each one, in order)."""

from __future__ import annotations

import pytest

from models.nic.run import run_model, run_vmm, verdicts_jsonl
from tb.nic.demo import demo_setup, main

pytestmark = pytest.mark.cocotb


def test_demo(sim: str, tmp_path, capsys) -> None:
    out = tmp_path / "nic"
    assert main(["--sim", sim, "--frames", "300", "--seed", "2026", "--out", str(out)]) == 0
    rules, traffic = demo_setup(2026, 300)
    model = run_model(rules, traffic.records)
    approved = sum(
        d.action == "reinject"
        for d in run_vmm(rules, traffic.records, model, traffic.egress).values()
    )
    assert approved > 0, "the demo traffic gives the VMM nothing to re-inject"
    assert (out / "verdicts.jsonl").read_text() == verdicts_jsonl(model)
    text = capsys.readouterr().out
    assert "IDENTICAL" in text
    assert f"; {approved} re-injected through the hardware" in text
