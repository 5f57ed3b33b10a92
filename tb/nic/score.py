"""The NIC scoreboard: what came out of the DUT against its decisions and the model's verdicts.

Each output queue keeps input order, so each one's frames must be, in order, exactly the input
frames whose decision names that queue (VF queues interleave whole re-injected frames), less
the frames that queue counted as overflow drops. The isolation invariant is asserted on every
delivered frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from models.nic.filter import Verdict

from .tb import Received

__all__ = ["Delivery", "score"]


@dataclass
class Delivery:
    """Input frame indices per queue in output order, and the re-injected frames per VF."""

    vf: list[list[int]] = field(default_factory=list)
    vmm: list[int] = field(default_factory=list)
    reinjected: list[int] = field(default_factory=list)  # per VF: re-injected frames delivered


def score(
    frames: Sequence[bytes],
    decisions: Sequence[Verdict],
    allowed: Sequence[set[Verdict]],
    got: Received,
    reinjected: Sequence[Sequence[bytes]],
    overflow: Sequence[int],
    reinject_drop: Sequence[int],
) -> Delivery:
    """Check everything the DUT delivered; returns where each input frame went.

    Parameters
    ----------
    frames : the input frames, in order (all admitted: no ingress overflow).
    decisions : the decision tap, one per input frame.
    allowed : per input frame, the model's acceptable verdicts (two around a rule rewrite).
    got : the DUT's outputs.
    reinjected : per VF, the frames sent to ``reinject`` for it, in order.
    overflow : overflow drops per queue (VFs, VMM, ingress), from the counters.
    reinject_drop : re-injected frames dropped per VF, from the counters.
    """
    n = len(got.vf)
    assert overflow[n + 1] == 0, f"{overflow[n + 1]} frames dropped at the ingress"
    assert len(decisions) == len(frames), f"{len(decisions)} decisions for {len(frames)} frames"
    for i, (d, ok) in enumerate(zip(decisions, allowed, strict=True)):
        assert d in ok, f"frame {i}: hardware decided {d}, the model allows {sorted(map(str, ok))}"

    out = Delivery(vf=[[] for _ in range(n)], reinjected=[0] * n)
    for k in range(n):
        want = [i for i, d in enumerate(decisions) if d.queue == f"vf{k}"]
        rj = list(reinjected[k])
        wi = ri = 0
        for pos, data in enumerate(got.vf[k]):
            # Isolation: a frame on VF k is a frame the filter passed to VF k, or one the VMM
            # re-injected for VF k; never a blocked frame, never another VF's. Frames skipped
            # over were overflow drops, checked against the counters below.
            j = next((j for j in range(wi, len(want)) if frames[want[j]] == data), None)
            if j is not None:
                d = decisions[want[j]]
                assert d.verdict == "pass" and d.vf == k, f"vf{k} frame {pos}: decision {d}"
                out.vf[k].append(want[j])
                wi = j + 1
                continue
            r = next((r for r in range(ri, len(rj)) if rj[r] == data), None)
            assert r is not None, (
                f"vf{k} frame {pos} ({len(data)} bytes) is no frame passed or re-injected for "
                "it, in order"
            )
            out.reinjected[k] += 1
            ri = r + 1
        lost = len(want) - len(out.vf[k])
        assert lost == overflow[k], f"vf{k}: {lost} frames missing, {overflow[k]} overflow drops"
        lost = len(rj) - out.reinjected[k]
        assert lost == reinject_drop[k], (
            f"vf{k}: {lost} re-injected frames missing, {reinject_drop[k]} counted"
        )

    want = [i for i, d in enumerate(decisions) if d.queue == "vmm"]
    wi = 0
    for pos, (data, user) in enumerate(got.vmm):
        while wi < len(want) and frames[want[wi]] != data:
            wi += 1
        assert wi < len(want), f"vmm frame {pos} ({len(data)} bytes) is no frame for the VMM"
        assert user == decisions[want[wi]], f"vmm frame {pos}: tuser {user}, decision differs"
        out.vmm.append(want[wi])
        wi += 1
    lost = len(want) - len(out.vmm)
    assert lost == overflow[n], f"vmm: {lost} frames missing, {overflow[n]} overflow drops"
    return out
