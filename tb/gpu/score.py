"""Scoring a dirty tracker run against the model (``models/gpu``): shared by the Amaranth
simulator tests and the cocotb testbench."""

from __future__ import annotations

from dataclasses import dataclass, field

from models.gpu.axi import Aw, pages_touched
from models.gpu.tracker import DirtyTracker as Model

__all__ = ["Seen", "check"]


@dataclass
class Seen:
    """What a testbench saw: the epoch of each AW taken (an AW in a flip's cycle is the old
    epoch's), each read-out (pages in order, the overflow flag), the log, the counters."""

    aws: list[tuple[int, Aw]] = field(default_factory=list)
    readouts: list[tuple[list[int], bool]] = field(default_factory=list)
    log: list[tuple[int, int]] = field(default_factory=list)  # (epoch parity, page)
    counters: dict[str, int] = field(default_factory=dict)


def check(seen: Seen, *, page_bits: int, aperture: int, exact: bool) -> None:
    """Every read-out against the model's epoch; ``exact``: no update may be lost.

    Without ``exact`` an epoch may be flagged as having lost an update (a log entry or an AW):
    its read-out must still hold no page nobody wrote, and the log no entry the model lacks.
    """
    model = Model(page_bits=page_bits, aperture=aperture, log_depth=1 << 30)
    epochs = 1 + max((e for e, _ in seen.aws), default=0)
    assert len(seen.readouts) >= epochs, f"{len(seen.readouts)} read-outs for {epochs} epochs"
    expected_log = []
    k = 0
    for e, (pages, overflow) in enumerate(seen.readouts):
        while k < len(seen.aws) and seen.aws[k][0] == e:
            expected_log += [(e % 2, p) for p in model.write(seen.aws[k][1])]
            k += 1
        model.flip()
        want = model.read_out()
        assert pages == sorted(set(pages)), f"epoch {e}: not ascending, or a page twice"
        if overflow:
            # The flag tells software to take every page as dirty; still, no clean page.
            assert set(pages) <= set(want.pages), f"epoch {e}: a page nobody wrote"
            assert not exact, f"epoch {e}: an update was lost"
        else:
            assert pages == list(want.pages), f"epoch {e}: {pages} != {list(want.pages)}"
    counts = seen.counters
    assert counts["writes"] == len(seen.aws)
    outside = [not pages_touched(aw, page_bits=page_bits, aperture=aperture) for _, aw in seen.aws]
    assert counts["outside"] == sum(outside)
    if exact:
        assert seen.log == expected_log
        assert counts["new_pages"] == len(expected_log)
        assert counts["log_overflows"] == counts["op_drops"] == 0
    else:
        # A lost entry's page is logged by its next write in the epoch, if any: membership only.
        assert set(seen.log) <= set(expected_log)
