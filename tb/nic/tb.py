"""cocotb testbench of the NIC filter top: AXI4-Stream agents on every stream, cocotbext-axi's
AXI-Lite master on the register block, a monitor of the decision tap, and the driver side of the
register map.

The stream agents are cocotbext-axi's (``agents="cocotbext"``, the default) or, for the bulk
runs, :mod:`tb.common.axis`'s (``agents="fast"``: the same protocol at a fraction of the cost,
that module says why), stepped with the tap by one clock loop, the only coroutine then woken
every cycle. The clock is the simulator's own (cocotb's C clock), not a coroutine.
"""

from __future__ import annotations

import itertools
import logging
import random
from dataclasses import dataclass, field

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, RisingEdge, Timer
from cocotbext.axi import (
    AxiLiteBus,
    AxiLiteMaster,
    AxiStreamBus,
    AxiStreamFrame,
    AxiStreamSink,
    AxiStreamSource,
)

from models.nic.filter import Counters, Verdict
from models.nic.hw import pack, rule_row, verdict_from_decision, vf_row
from models.nic.rules import Rules
from vmassist.formats.nic import NIC_CSR, CounterKind, Decision, RuleEntry, VfEntry

from ..common.axis import AxisSink, AxisSource
from ..common.stream import random_pauses

__all__ = ["NicTB", "Received", "CLOCK_NS"]

CLOCK_NS = 6.4  # 156.25 MHz, the 10GbE clock


def _decision_fields() -> list[tuple[str, int, int]]:
    out, offset = [], 0
    for name, f in Decision.as_shape():
        out.append((name, offset, (1 << f.width) - 1))
        offset += f.width
    return out


_DECISION_FIELDS = _decision_fields()


def decode_decision(value: int) -> Verdict:
    """The verdict a 21-bit :class:`Decision` (``dec``, or the VMM queue's ``tuser``) denotes."""
    return verdict_from_decision(
        {name: (value >> offset) & mask for name, offset, mask in _DECISION_FIELDS}
    )


@dataclass
class Received:
    """What came out of the DUT: every queue's frames in output order, and the decision tap."""

    vf: list[list[bytes]] = field(default_factory=list)
    vmm: list[tuple[bytes, Verdict]] = field(default_factory=list)
    decisions: list[Verdict] = field(default_factory=list)
    decision_cycles: list[int] = field(default_factory=list)


class NicTB:
    """Agents on the ``nic`` top.

    Parameters
    ----------
    dut
        The cocotb handle of the ``nic`` top.
    n_vfs, rules, width : int
        The top's parameters.
    seed : int
        Seeds the idle and back-pressure generators.
    p_idle : float
        Probability of an idle cycle on ``rx`` and ``reinject`` (0: tvalid held high).
    p_stall : float
        Probability of a stalled cycle on each output (0: every sink always ready).
    agents : str
        ``cocotbext`` (cocotbext-axi's stream source and sinks) or ``fast``
        (:mod:`tb.common.axis`).
    """

    @classmethod
    async def create(cls, dut, **kwargs) -> NicTB:
        dut.rst.value = 1
        for name in (
            "csr__awvalid",
            "csr__wvalid",
            "csr__bready",
            "csr__arvalid",
            "csr__rready",
            "rx__tvalid",
            "reinject__tvalid",
            "vmm__tready",
            *(f"vf__{k}__tready" for k in range(kwargs["n_vfs"])),
        ):
            getattr(dut, name).value = 0
        await Timer(1, unit="ns")
        tb = cls(dut, **kwargs)
        await tb.reset()
        return tb

    def __init__(
        self,
        dut,
        *,
        n_vfs: int,
        rules: int,
        width: int,
        seed: int,
        p_idle: float = 0.0,
        p_stall: float = 0.0,
        agents: str = "cocotbext",
    ):
        if agents not in ("cocotbext", "fast"):
            raise ValueError(f"agents must be 'cocotbext' or 'fast', not {agents!r}")
        self.dut = dut
        self.agents = agents
        self.n_vfs = n_vfs
        self.rules = rules
        self.width = width
        self.log = logging.getLogger("cocotb.tb.nic")
        self.rng = random.Random(seed)
        logging.getLogger(f"cocotb.{dut._name}.csr").setLevel(logging.WARNING)
        # The C clock: a coroutine clock would cost two more Python wake-ups a cycle. Our writes
        # all happen after a rising edge, never at the instant the clock toggles.
        Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()
        clk, rst = dut.clk, dut.rst

        self.csr = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "csr", bus_separator="__"), clk, rst)
        self.got = Received(vf=[[] for _ in range(n_vfs)])
        self.cycle = 0
        self.rx_frames = 0  # frames whose last beat went in on rx
        self.rx_last_cycles: list[int] = []  # the cycle each of them went in
        self.vmm_arrived = Event()  # set on each frame out of the VMM queue
        self._rx_waits: list[tuple[int, Event]] = []
        if agents == "fast":
            self.rx = AxisSource(dut, "rx", on_last=self._rx_last)
            self.reinject = AxisSource(dut, "reinject")
            self.vf = [
                AxisSink(dut, f"vf__{k}", lambda data, _user, out=self.got.vf[k]: out.append(data))
                for k in range(n_vfs)
            ]
            self.vmm = AxisSink(dut, "vmm", self._vmm_frame)
            self._agents = (self.rx, self.reinject, *self.vf, self.vmm)
        else:

            def bus(prefix):
                return AxiStreamBus.from_prefix(dut, prefix, bus_separator="__")

            self.rx = AxiStreamSource(bus("rx"), clk, rst)
            self.reinject = AxiStreamSource(bus("reinject"), clk, rst)
            self.vf = [AxiStreamSink(bus(f"vf__{k}"), clk, rst) for k in range(n_vfs)]
            self.vmm = AxiStreamSink(bus("vmm"), clk, rst)
            self._agents = ()
            for k in range(n_vfs):
                cocotb.start_soon(self._drain(k))
            cocotb.start_soon(self._drain(None))
        self.set_pauses(p_idle, p_stall)
        cocotb.start_soon(self._clocked())

    def _pauses(self, p: float):
        return random_pauses(random.Random(self.rng.random()), p) if p else None

    def set_pauses(self, p_idle: float, p_stall: float) -> None:
        """Idle cycles on the sources and stalls on the sinks (0 clears them)."""
        for agents, p in (((self.rx, self.reinject), p_idle), ((*self.vf, self.vmm), p_stall)):
            for agent in agents:
                gen = self._pauses(p)
                if self.agents == "fast":
                    agent.pauses = gen or itertools.repeat(False)
                elif gen:
                    agent.set_pause_generator(gen)
                else:
                    agent.clear_pause_generator()

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    async def _clocked(self) -> None:
        """Every rising edge: the decision tap, then every stream agent."""
        edge = RisingEdge(self.dut.clk)
        dec_valid, dec = self.dut.dec_valid, self.dut.dec
        decisions, cycles = self.got.decisions, self.got.decision_cycles
        agents = self._agents
        # cocotbext-axi's source has no end-of-frame hook: watch rx's last beats here (rx is
        # always ready).
        rx_last = None if agents else (self.dut.rx__tvalid, self.dut.rx__tlast)
        while True:
            await edge
            self.cycle += 1
            if dec_valid.value:
                decisions.append(decode_decision(dec.value.to_unsigned()))
                cycles.append(self.cycle)
            for agent in agents:
                agent.step()
            if rx_last and rx_last[0].value and rx_last[1].value:
                self._rx_last()

    async def _drain(self, k: int | None) -> None:
        """cocotbext-axi: collect VF ``k``'s frames (the VMM's when None) as they complete."""
        sink = self.vmm if k is None else self.vf[k]
        while True:
            frame = await sink.recv()
            if k is None:
                self._vmm_frame(bytes(frame.tdata), frame.tuser)
            else:
                self.got.vf[k].append(bytes(frame.tdata))

    def _rx_last(self) -> None:
        self.rx_frames += 1
        self.rx_last_cycles.append(self.cycle)
        while self._rx_waits and self._rx_waits[0][0] <= self.rx_frames:
            self._rx_waits.pop(0)[1].set()

    async def rx_frames_reach(self, n: int) -> None:
        """Return once ``n`` frames have gone in on ``rx``."""
        if self.rx_frames >= n:
            return
        done = Event()
        self._rx_waits.append((n, done))
        self._rx_waits.sort(key=lambda w: w[0])
        await done.wait()

    def _vmm_frame(self, data: bytes, user) -> None:
        assert isinstance(user, int), f"VMM frame with tuser varying over its beats: {user}"
        self.got.vmm.append((data, decode_decision(user)))
        self.vmm_arrived.set()

    # ---- registers ----

    async def write_words(self, name: str, value: int, words: int) -> None:
        base = NIC_CSR[f"{name}0"].offset
        for i in range(words):
            await self.csr.write_qword(base + 8 * i, (value >> (64 * i)) & (2**64 - 1))

    async def write_vf(self, rules: Rules, v: int) -> None:
        row = pack(VfEntry, vf_row(rules.vf(v)))
        await self.write_words("VF_W", row, -(-VfEntry.as_shape().size // 64))
        await self.csr.write_qword(NIC_CSR["VF_COMMIT"].offset, v)

    async def write_rule(self, rules: Rules, v: int, i: int) -> None:
        vf = rules.vf(v)
        rule = vf.rules[i] if vf is not None and i < len(vf.rules) else None
        await self.write_words("RULE_W", pack(RuleEntry, rule_row(rule)), _rule_words())
        await self.csr.write_qword(NIC_CSR["RULE_COMMIT"].offset, v | (i << 8))

    async def program(self, rules: Rules) -> None:
        """Every VF row and every rule slot of ``rules`` (absent ones invalid): rules first,
        so that a VF never uses a half-written rule list when it appears."""
        for v in range(self.n_vfs):
            for i in range(self.rules):
                await self.write_rule(rules, v, i)
        for v in range(self.n_vfs):
            await self.write_vf(rules, v)

    async def read_csr(self, name: str) -> int:
        return await self.csr.read_qword(NIC_CSR[name].offset)

    async def counter(self, kind: CounterKind, vf: int = 0, rule: int = 0) -> int:
        await self.csr.write_qword(NIC_CSR["CNT_SEL"].offset, int(kind) | vf << 8 | rule << 16)
        return await self.read_csr("CNT_VAL")

    async def counters(self, rules: Rules) -> Counters:
        """The hardware's counters in the model's form (rule hits for the rules ``rules`` has)."""
        c = Counters.for_rules(rules)
        for v in range(self.n_vfs):
            c.rule_hits[v] = [
                await self.counter(CounterKind.RULE_HITS, v, i) for i in range(len(c.rule_hits[v]))
            ]
            c.passed[v] = await self.counter(CounterKind.PASS, v)
            c.blocked[v] = await self.counter(CounterKind.BLOCK, v)
            c.bounced[v] = await self.counter(CounterKind.BOUNCE, v)
            c.dropped[v] = await self.counter(CounterKind.DROP, v)
        c.unknown = await self.counter(CounterKind.UNKNOWN)
        c.malformed = await self.counter(CounterKind.MALFORMED)
        return c

    async def overflows(self) -> list[int]:
        """Overflow drops per queue: the VFs, the VMM, the ingress."""
        return [await self.counter(CounterKind.OVERFLOW, q) for q in range(self.n_vfs + 2)]

    async def losses(self) -> int:
        """Frames dropped for lack of room anywhere, and re-injected frames dropped."""
        rj = [await self.counter(CounterKind.REINJECT_DROP, k) for k in range(self.n_vfs)]
        return sum(await self.overflows()) + sum(rj)

    # ---- traffic ----

    async def send(self, data: bytes) -> None:
        """Queue a frame on ``rx`` (the queue is unbounded: this never waits)."""
        if self.agents == "fast":
            self.rx.send(data)
        else:
            self.rx.send_nowait(AxiStreamFrame(data))

    async def send_reinject(self, data: bytes, vf: int) -> None:
        """Queue a frame on ``reinject`` for VF ``vf``."""
        if self.agents == "fast":
            self.reinject.send(data, tdest=vf)
        else:
            self.reinject.send_nowait(AxiStreamFrame(data, tdest=vf))

    def delivered(self) -> int:
        return sum(map(len, self.got.vf)) + len(self.got.vmm)

    async def quiesce(self, decisions: int, delivered, timeout: int = 400_000) -> None:
        """Wait until the sources are idle, ``decisions`` decisions were seen and every frame
        that should leave has left or was counted as an overflow drop: ``delivered()`` (a
        callable: it may depend on the decisions seen) frames on the outputs in all."""
        clk = self.dut.clk
        for _ in range(timeout // 256):
            await Timer(256 * CLOCK_NS, unit="ns")  # one wake-up, not 256
            if not (self.rx.idle() and self.reinject.idle()):
                continue
            if len(self.got.decisions) < decisions:
                continue
            if self.delivered() + await self.losses() >= delivered():
                await ClockCycles(clk, 64)  # nothing more may arrive: checked by the caller
                return
        raise AssertionError(
            f"no quiescence after {timeout} cycles: {len(self.got.decisions)} of {decisions} "
            f"decisions, {self.delivered()} of {delivered()} frames out"
        )


def _rule_words() -> int:
    return -(-RuleEntry.as_shape().size // 64)
