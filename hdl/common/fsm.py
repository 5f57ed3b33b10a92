"""A one-hot state machine, for control logic that must be fast.

Amaranth's ``m.FSM()`` encodes its states in binary, and yosys does not recode a state register
that has an initial value, so every decision of a large FSM first decodes several state bits.
With one flip-flop per state, "in state X" is a single register output, which keeps the logic
from the state register to the next-state, enable and strobe signals one LUT level shallower
and its fan-out split.
"""

from contextlib import contextmanager

from amaranth import Cat, Module, Signal

__all__ = ["OneHotFSM"]


class OneHotFSM:
    """A state machine with one flip-flop per state, used like Amaranth's ``m.FSM()``::

        fsm = OneHotFSM(m, ("IDLE", "BUSY"), name="ctl")
        with fsm.State("IDLE"):
            with m.If(start):
                fsm.next = "BUSY"

    The first state is the initial one. A state's body is an ``m.If`` on its state bit, and
    ``fsm.next = S`` inside it sets state ``S``'s bit and clears the current one's, so each
    state bit's next value is an OR of the transitions into it, not a priority chain over every
    assignment in the machine. Unlike Amaranth's FSM, a path through a state's body may assign
    ``fsm.next`` at most once (twice would set two bits); the formal harnesses prove the state
    register stays one-hot (:meth:`is_onehot`).

    Parameters
    ----------
    m : Module
    states : sequence of str
        Every state, the initial one first.
    name : str
        Prefix of the state register's name.
    domain : str
        Clock domain of the state register.

    Attributes
    ----------
    state : Signal
        The one-hot state register, bit ``i`` for ``states[i]``.
    """

    def __init__(self, m: Module, states, *, name: str = "fsm", domain: str = "sync"):
        states = tuple(states)
        if not states or len(set(states)) != len(states):
            raise ValueError(f"states must be distinct names, at least one: {states!r}")
        self._m = m
        self._index = {s: i for i, s in enumerate(states)}
        self._current = None
        self.states = states
        self.state = Signal(len(states), init=1, name=f"{name}_state")
        n = len(states)
        self._go = Signal(n, name=f"{name}_go")  # transitions into each state
        self._leave = Signal(n, name=f"{name}_leave")  # transitions out of each state
        m.d[domain] += self.state.eq(self._go | (self.state & ~self._leave))

    def ongoing(self, name: str):
        """Whether the machine is in state ``name`` (one register bit)."""
        return self.state[self._index[name]]

    def any_of(self, names):
        """Whether the machine is in any of the states ``names``."""
        return Cat(self.ongoing(n) for n in names).any()

    def is_onehot(self):
        """Exactly one state bit set: the invariant every reachable state keeps."""
        s = self.state
        return (s != 0) & ((s & (s - 1)[: len(s)]) == 0)

    @contextmanager
    def State(self, name: str):
        if self._current is not None:
            raise SyntaxError(f"state {name!r} nested in state {self._current!r}")
        self._current = name
        try:
            with self._m.If(self.ongoing(name)):
                yield
        finally:
            self._current = None

    @property
    def next(self):
        raise SyntaxError("Only assignment to `fsm.next` is permitted")

    @next.setter
    def next(self, name: str):
        if self._current is None:
            raise SyntaxError("`fsm.next` may only be assigned inside a state")
        self._m.d.comb += [
            self._go[self._index[name]].eq(1),
            self._leave[self._index[self._current]].eq(1),
        ]
