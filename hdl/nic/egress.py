"""The NIC filter's store-and-forward path: the ingress buffer, and the egress that copies each
buffered frame to the queue its decision names (``docs/nic.md``, steps 1 and 5).

Factored out of :class:`~hdl.nic.filter.NicFilter` so that it is small enough for the formal
proofs of its delivery guarantees (``hdl/nic/formal.py``): with any frames and any decisions,
a blocked frame never reaches a VF, a frame passed to one VF never reaches another, and every
committed frame is delivered whole, dropped by its verdict or counted as an overflow.
"""

from types import SimpleNamespace

from amaranth import Cat, Module, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from vmassist.formats.nic import Decision, VerdictCode

from ..common import FrameBeat, PacketFifo
from ..common.params import require
from ..common.replica import replicas

__all__ = ["Egress", "beat_layout"]


def beat_layout(width: int, user=None) -> data.StructLayout:
    """What a frame queue stores per beat: data, keep and, on the VMM queue, the decision."""
    fields = {"data": width, "keep": width // 8}
    if user is not None:
        fields["user"] = user
    return data.StructLayout(fields)


class Egress(wiring.Component):
    """The ingress buffer and the egress of the NIC filter.

    Frames are written to the ingress buffer (a :class:`~hdl.common.PacketFifo`) beat by beat;
    the decisions arrive separately, one per committed frame, in the order the frames were
    committed. Egress copies the buffered frame at the head, one beat per cycle, to the queue its
    decision names, and consumes the decision with the frame's last beat:

    * ``pass``: VF ``vf``'s queue;
    * ``bounce``, ``unknown``, ``malformed``: the VMM's queue, each beat carrying the decision;
    * ``block``: none, the frame is dropped.

    It never waits on a consumer: a frame that finds no room in its queue is dropped whole (the
    queue rolls it back) and pulses that queue's ``overflow``, so a stalled VF holds up nobody
    else, and a queue's reader only ever sees whole frames.

    The decisions must name a VF below ``n_vfs`` when the verdict is ``pass``, and be one of the
    five verdict codes (the :class:`~hdl.nic.classify.Classifier` only makes such decisions); a
    decision that is not is dropped like ``block``.

    Parameters
    ----------
    data_width : int
        Beat width in bits, a positive multiple of 8.
    n_vfs : int
        Virtual functions, 1 to 256.
    depth : int
        Beats of the ingress buffer and of each output queue, a power of two of at least 2.

    Members
    -------
    w_valid, w_data, w_last, w_abort : In
        The ingress buffer's write side (:class:`~hdl.common.PacketFifo`); ``w_data`` is a
        :func:`beat_layout` (data, keep). The writer never waits.
    committed : Out
        One-cycle pulse the cycle after the last beat of a frame the buffer accepted: that frame
        is owed a decision.
    dec : ``In(stream.Signature(Decision))``
        The decisions, in commit order; the stream rules apply (hold ``valid`` and ``payload``
        until ``ready``). ``ready`` is high while the head frame's last beat is on offer: a
        decision is consumed with its frame's last beat.
    vf : ``Out(stream.Signature(FrameBeat(beat_layout(data_width)))).array(n_vfs)``
        Each VF's queue: the frames passed to it, whole.
    vmm : ``Out(stream.Signature(FrameBeat(beat_layout(data_width, Decision))))``
        The VMM's queue: bounced, unknown and malformed frames, whole, each beat with its
        decision in ``user``.
    overflow : ``Out(n_vfs + 2)``
        One-cycle pulses, one per frame dropped for want of room: bits ``0 .. n_vfs - 1`` the VF
        queues, ``n_vfs`` the VMM queue, ``n_vfs + 1`` the ingress buffer (its numbering in
        ``CounterKind.OVERFLOW``).

    Attributes
    ----------
    probe : SimpleNamespace
        Set by ``elaborate``, for formal harnesses: ``buf`` and ``queues`` (the VF queues then
        the VMM queue, each a :class:`~hdl.common.PacketFifo` with its own ``probe``), and the
        egress register ``e_valid``, ``e_beat``, ``e_last``, ``e_to``, ``e_go`` (the queues'
        write enables, ``e_to`` while ``e_valid``) and ``copies`` (each queue's copy of the
        beat it writes: its ``w_data`` then ``last``).

    Raises
    ------
    TypeError, ValueError
        A parameter has the wrong type or is out of range.
    """

    def __init__(self, *, data_width: int, n_vfs: int, depth: int):
        for name, value in (("data_width", data_width), ("n_vfs", n_vfs), ("depth", depth)):
            require(
                self,
                isinstance(value, int) and not isinstance(value, bool),
                TypeError(f"{name} must be an integer, not {value!r}"),
            )
        require(
            self,
            data_width > 0 and data_width % 8 == 0,
            ValueError(f"data_width must be a positive multiple of 8, not {data_width!r}"),
        )
        require(self, 1 <= n_vfs <= 256, ValueError(f"n_vfs must be 1 to 256, not {n_vfs!r}"))
        require(
            self,
            depth >= 2 and not depth & (depth - 1),
            ValueError(f"depth must be a power of two of at least 2, not {depth!r}"),
        )
        self._width = data_width
        self._n_vfs = n_vfs
        self._depth = depth
        super().__init__(
            {
                "w_valid": In(1),
                "w_data": In(beat_layout(data_width)),
                "w_last": In(1),
                "w_abort": In(1),
                "committed": Out(1),
                "dec": In(stream.Signature(Decision)),
                "vf": Out(stream.Signature(FrameBeat(beat_layout(data_width)))).array(n_vfs),
                "vmm": Out(stream.Signature(FrameBeat(beat_layout(data_width, Decision)))),
                "overflow": Out(n_vfs + 2),
            }
        )

    @property
    def data_width(self) -> int:
        return self._width

    @property
    def n_vfs(self) -> int:
        return self._n_vfs

    @property
    def depth(self) -> int:
        return self._depth

    def route(self, dec) -> Value:
        """The queue ``dec`` sends its frame to, one-hot: bit k < ``n_vfs`` VF k's queue, bit
        ``n_vfs`` the VMM queue; zero for ``block`` (dropped)."""
        dec = Decision(Value.cast(dec))
        to_vf = dec.verdict == VerdictCode.PASS
        to_vmm = dec.verdict.matches(VerdictCode.BOUNCE, VerdictCode.UNKNOWN, VerdictCode.MALFORMED)
        return Cat(*(to_vf & (dec.vf == k) for k in range(self._n_vfs)), to_vmm)

    def elaborate(self, platform):
        m = Module()
        n, width, depth = self._n_vfs, self._width, self._depth

        m.submodules.ingress = buf = PacketFifo(beat_layout(width), depth)
        m.d.comb += [
            buf.w_valid.eq(self.w_valid),
            buf.w_data.eq(self.w_data),
            buf.w_last.eq(self.w_last),
            buf.w_abort.eq(self.w_abort),
            self.committed.eq(buf.committed),
        ]

        # The head frame moves while its decision is there; the decision goes with its last beat.
        dec = self.dec
        m.d.comb += [
            buf.r.ready.eq(dec.valid),
            dec.ready.eq(buf.r.valid & buf.r.payload.last),
        ]
        e_valid = Signal()
        e_beat = Signal(beat_layout(width, Decision))
        e_last = Signal()
        e_to = Signal(n + 1)  # one-hot: VF queues, then the VMM queue; none = dropped
        # == Mux(e_valid, e_to, 0): each queue's write enable in a register of its own, next to
        # its queue, rather than one valid fanning out to every queue's write logic.
        e_go = Signal(n + 1)
        route = self.route(dec.payload)
        moving = buf.r.valid & dec.valid
        m.d.sync += [
            e_valid.eq(moving),
            e_beat.data.eq(buf.r.payload.data.data),
            e_beat.keep.eq(buf.r.payload.data.keep),
            e_beat.user.eq(dec.payload),
            e_last.eq(buf.r.payload.last),
            e_to.eq(route),
            e_go.eq(route & moving.replicate(n + 1)),
        ]

        vf_q = [PacketFifo(beat_layout(width), depth) for _ in range(n)]
        vmm_q = PacketFifo(beat_layout(width, Decision), depth)
        queues = [*vf_q, vmm_q]
        for k in range(n):
            m.submodules[f"vf{k}_q"] = vf_q[k]
        m.submodules.vmm_q = vmm_q
        # Each queue takes the beat from a copy of the egress register of its own (the VMM
        # queue's with the decision), by its block RAMs, which lie far apart from one queue to
        # the next.
        vf_next = Cat(buf.r.payload.data.data, buf.r.payload.data.keep, buf.r.payload.last)
        vmm_next = Cat(
            buf.r.payload.data.data, buf.r.payload.data.keep, dec.payload, buf.r.payload.last
        )
        copies = [
            *replicas(m, platform, vf_next, n, name="e_vf_beat"),
            *replicas(m, platform, vmm_next, 1, name="e_vmm_beat"),
        ]
        for k, (q, copy) in enumerate(zip(queues, copies, strict=True)):
            m.d.comb += [
                q.w_valid.eq(e_go[k]),
                q.w_data.eq(copy[:-1]),
                q.w_last.eq(copy[-1]),
            ]
        for k in range(n):
            wiring.connect(m, wiring.flipped(self.vf[k]), vf_q[k].r)
        wiring.connect(m, wiring.flipped(self.vmm), vmm_q.r)
        m.d.comb += self.overflow.eq(Cat(*(q.overflow for q in queues), buf.overflow))

        # For formal harnesses (hdl/nic/formal.py); no effect on the design.
        self.probe = SimpleNamespace(
            buf=buf,
            queues=queues,
            e_valid=e_valid,
            e_beat=e_beat,
            e_last=e_last,
            e_to=e_to,
            e_go=e_go,
            copies=copies,
        )
        return m
