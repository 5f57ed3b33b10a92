"""Static timing over nextpnr's SDF: every failing endpoint, grouped by the signals it joins.

nextpnr reports one critical path per clock. Closing timing on a large design needs the whole
picture: how many endpoints fail, and between which registers. ``python -m vmassist.sta
build/synth/nic-r16/timing.sdf --period 6.4`` reads the SDF ``make synth`` writes beside each
report (cell delays as ``IOPATH``, routing as ``INTERCONNECT``, setup times as ``SETUPHOLD``) and
prints the endpoints whose arrival exceeds ``period - setup``, grouped by start and end signal
(bit indices and the cell suffixes yosys adds removed), worst first, then the worst path. All
delays are the SDF's maximum (slow corner) values. One clock with no skew is assumed, as in the
synthesis harness, whose clock reaches every cell on a global net.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Timing", "TimingGraph", "analyse", "failing", "main", "parse_sdf", "signal_of"]


def _tokens(text: str) -> Iterator[str]:
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "()":
            yield c
            i += 1
        elif c == '"':
            j = text.index('"', i + 1)
            yield text[i + 1 : j]
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "()":
                j += 2 if text[j] == "\\" else 1
            yield text[i:j]
            i = j


def _tree(text: str) -> list:
    stack: list[list] = [[]]
    for tok in _tokens(text):
        if tok == "(":
            stack.append([])
        elif tok == ")":
            if len(stack) == 1:
                raise ValueError("unbalanced ')'")
            node = stack.pop()
            stack[-1].append(node)
        else:
            stack[-1].append(tok)
    if len(stack) != 1:
        raise ValueError("unbalanced '('")
    return stack[0]


def _max_delay(triple: list) -> float:
    """``(min:typ:max)`` (or one value) -> the largest value."""
    return max((float(v) for v in triple[0].split(":") if v), default=0.0) if triple else 0.0


def _arc_delay(arc: list) -> float:
    """An INTERCONNECT or IOPATH arc's delay: the largest of its rise and fall values."""
    return max((_max_delay(v) for v in arc[3:]), default=0.0)


def _unescape(name: str) -> str:
    return re.sub(r"\\(.)", r"\1", name)


def _pin_path(path: str) -> str:
    """``inst/pin``, ``inst`` with ``\\``-escaped characters -> the same, unescaped."""
    cut = max(i for i, c in enumerate(path) if c == "/" and (i == 0 or path[i - 1] != "\\"))
    return f"{_unescape(path[:cut])}/{path[cut + 1 :]}"


def _port(spec) -> str:
    """An IOPATH/SETUPHOLD port, ``A`` or ``(posedge CLK)`` -> its pin."""
    return spec[-1] if isinstance(spec, list) else spec


# Clock pins of the ECP5 primitives nextpnr writes; others are found from the setup checks.
_CLOCK_PINS = frozenset({"CLK", "CLKA", "CLKB", "WCK"})


@dataclass
class TimingGraph:
    """Pins (``inst/pin``) and the delays between them, in picoseconds, from one SDF file."""

    edges: dict[str, list[tuple[str, float]]] = field(default_factory=lambda: defaultdict(list))
    launch: dict[str, float] = field(default_factory=dict)  # clocked output -> clock-to-out
    setup: dict[str, float] = field(default_factory=dict)  # clocked input -> setup time


def _arcs(cell: list) -> list[list]:
    return [
        arc
        for section in cell
        if isinstance(section, list) and section[:1] in (["DELAY"], ["TIMINGCHECK"])
        for group in section[1:]
        if isinstance(group, list)
        for arc in (group[1:] if group[:1] in (["ABSOLUTE"], ["INCREMENT"]) else [group])
        if isinstance(arc, list) and arc
    ]


def parse_sdf(text: str) -> TimingGraph:
    graph = TimingGraph()
    top = [n for n in _tree(text) if isinstance(n, list) and n[:1] == ["DELAYFILE"]]
    if not top:
        raise ValueError("no DELAYFILE")
    for cell in top[0]:
        if not (isinstance(cell, list) and cell[:1] == ["CELL"]):
            continue
        instance = next((n for n in cell if isinstance(n, list) and n[:1] == ["INSTANCE"]), [])
        inst = _unescape(instance[1]) if len(instance) > 1 else ""
        arcs = _arcs(cell)
        clocks = _CLOCK_PINS | {_port(a[2]) for a in arcs if a[0] in ("SETUPHOLD", "SETUP")}
        for arc in arcs:
            if arc[0] in ("INTERCONNECT", "IOPATH", "SETUPHOLD", "SETUP") and len(arc) < 4:
                raise ValueError(f"{arc[0]} in cell {inst!r} has {len(arc) - 1} fields")
            if arc[0] == "INTERCONNECT":
                src, dst = _pin_path(arc[1]), _pin_path(arc[2])
                graph.edges[src].append((dst, _arc_delay(arc)))
            elif arc[0] == "IOPATH":
                a, z = _port(arc[1]), _port(arc[2])
                delay = _arc_delay(arc)
                if a in clocks:
                    key = f"{inst}/{z}"
                    graph.launch[key] = max(graph.launch.get(key, 0.0), delay)
                else:
                    graph.edges[f"{inst}/{a}"].append((f"{inst}/{z}", delay))
            elif arc[0] in ("SETUPHOLD", "SETUP"):
                key = f"{inst}/{_port(arc[1])}"
                graph.setup[key] = max(graph.setup.get(key, 0.0), _max_delay(arc[3]))
    return graph


@dataclass
class Timing:
    """The latest arrival at every pin a clocked output reaches, and the path that sets it."""

    arrival: dict[str, float]
    previous: dict[str, str]
    start: dict[str, str]

    def path(self, pin: str) -> list[tuple[str, float]]:
        steps = [(pin, self.arrival[pin])]
        while steps[-1][0] in self.previous:
            prev = self.previous[steps[-1][0]]
            steps.append((prev, self.arrival[prev]))
        return steps[::-1]


def analyse(graph: TimingGraph, *, ignore: str = r"\$PACKER") -> Timing:
    """Longest paths from every clocked output, in topological order. Outputs of instances
    matching ``ignore`` launch nothing (nextpnr's constant drivers)."""
    skip = re.compile(ignore)
    indegree: dict[str, int] = defaultdict(int)
    for outs in graph.edges.values():
        for dst, _ in outs:
            indegree[dst] += 1
    arrival = {p: d for p, d in graph.launch.items() if not skip.search(p)}
    start = {p: p for p in arrival}
    previous: dict[str, str] = {}
    ready = [p for p in set(graph.edges) | set(graph.launch) if indegree[p] == 0]
    while ready:
        pin = ready.pop()
        for dst, delay in graph.edges.get(pin, ()):
            if pin in arrival and arrival[pin] + delay > arrival.get(dst, -1.0):
                arrival[dst] = arrival[pin] + delay
                previous[dst], start[dst] = pin, start[pin]
            indegree[dst] -= 1
            if indegree[dst] == 0:
                ready.append(dst)
    if any(indegree.values()):
        raise ValueError("the combinational arcs form a loop")
    return Timing(arrival, previous, start)


_SUFFIX = re.compile(
    r"((_TRELLIS_FF_Q|_LUT4_Z|_CCU2C_S\d|_CCU2C_COUT|_PFUMX_Z|_L6MUX21_Z|_DP16KD|_DPR16X4"
    r"|_TRELLIS_RAMW|_DI|_\d+|_ff\d+)(?=_|$))+$"
)


def signal_of(pin: str) -> str:
    """A cell pin -> the signal it belongs to: the instance, without bit indices or the cell
    suffixes synthesis and packing add (``a.b_TRELLIS_FF_Q_12/DI`` -> ``a.b``), nor the copy
    and bit of a replicated register (``a.w_addr_3_ff7`` -> ``a.w_addr``, see
    ``hdl/common/replica.py``)."""
    inst = re.sub(r"\[\d+\]", "", pin.rsplit("/", 1)[0]).removeprefix("\\")
    return _SUFFIX.sub("", inst) or inst


def failing(graph: TimingGraph, timing: Timing, period_ps: float) -> list[tuple[float, str]]:
    """(slack, endpoint) of every clocked input that misses ``period_ps``, worst first."""
    out = [
        (period_ps - setup - timing.arrival[pin], pin)
        for pin, setup in graph.setup.items()
        if pin in timing.arrival
    ]
    return sorted(s for s in out if s[0] < 0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vmassist.sta", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("sdf", type=Path, help="nextpnr --sdf output (timing.sdf)")
    parser.add_argument("--period", type=float, required=True, help="clock period in ns")
    parser.add_argument("--top", type=int, default=20, help="groups to print (default 20)")
    args = parser.parse_args(argv)
    if not args.period > 0:
        print(f"error: --period: {args.period} is not a positive time in ns", file=sys.stderr)
        return 2
    try:
        graph = parse_sdf(args.sdf.read_text())
        timing = analyse(graph)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        print(f"error: {args.sdf}: not a readable SDF file: {e}", file=sys.stderr)
        return 2
    ends = failing(graph, timing, args.period * 1000)
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for slack, pin in ends:
        groups[(signal_of(timing.start[pin]), signal_of(pin))].append(slack)
    print(f"{args.sdf}: {len(ends)} failing endpoints at {args.period} ns", end="")
    print(f", worst slack {ends[0][0] / 1000:.3f} ns" if ends else "")
    for (src, dst), slacks in list(groups.items())[: args.top]:
        print(f"  {slacks[0] / 1000:8.3f} ns {len(slacks):5d}  {src}  ->  {dst}")
    if ends:
        print("worst path (arrival in ns, pin):")
        for pin, t in timing.path(ends[0][1]):
            print(f"  {t / 1000:7.3f}  {pin}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
