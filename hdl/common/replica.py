"""Replicated registers: one register's value in several copies, each by its own share of a wide
fan-out, which FPGA synthesis would otherwise merge back into one."""

from amaranth import ClockSignal, Const, Instance, Module, ResetSignal, Signal, Value

__all__ = ["replicas"]


def _is_ecp5(platform) -> bool:
    return getattr(platform, "family", None) == "ecp5"


def replicas(
    m: Module, platform, value, copies: int, *, name: str, en=None, init: int = 0
) -> list[Signal]:
    """``copies`` registers that each load ``value`` (when ``en``, if given), reset to ``init``.

    The copies hold the same value in every cycle; they exist so that a register driving many
    cells far apart (a RAM's address, a wide register's enable) can be a copy near each group
    of them, with one long route before the copies instead of one after. Yosys merges
    identical flip-flops, so on a platform whose ``family`` is ``"ecp5"`` (as
    :class:`amaranth.vendor.LatticePlatform` and ``vmassist.synth`` have) each bit of each copy
    is a ``TRELLIS_FF`` instance, which it keeps; elsewhere (simulation) they are ordinary
    registers.

    Parameters
    ----------
    m : Module
        Where the registers go.
    platform
        The platform being elaborated for.
    value : Value
        What every copy loads.
    copies : int
        How many copies, at least 1.
    name : str
        Base name of the copies (``<name>_<k>``).
    en : Value, optional
        Clock enable; always loading when omitted.
    init : int
        The value after reset (0 by default).

    Returns
    -------
    list of Signal
        The copies, each as wide as ``value``.
    """
    value = Value.cast(value)
    out = [Signal(len(value), init=init, name=f"{name}_{k}") for k in range(copies)]
    if not _is_ecp5(platform):
        for q in out:
            if en is None:
                m.d.sync += q.eq(value)
            else:
                with m.If(en):
                    m.d.sync += q.eq(value)
        return out
    d = Signal(len(value), name=f"{name}_d")
    m.d.comb += d.eq(value)
    ce = Const(1, 1) if en is None else en
    for k, q in enumerate(out):
        for i in range(len(value)):
            m.submodules[f"{name}_{k}_ff{i}"] = Instance(
                "TRELLIS_FF",
                p_GSR="DISABLED",
                p_CEMUX="CE",
                p_CLKMUX="CLK",
                p_LSRMUX="LSR",
                p_REGSET="SET" if init >> i & 1 else "RESET",
                p_SRMODE="LSR_OVER_CE",
                i_CLK=ClockSignal(),
                i_LSR=ResetSignal(),
                i_CE=ce,
                i_DI=d[i],
                o_Q=q[i],
            )
    return out
