"""Bit layouts and register maps shared by ``hdl/``, ``models/`` and ``tb/``.

Each layout is defined exactly once, here, as an Amaranth :class:`~amaranth.lib.data.Struct`.
The RTL uses them as signal shapes; the pure-Python models and the testbenches use
``Layout.from_bits(int)`` / ``Layout.const({...}).as_bits()`` to decode and encode values.
This package imports Amaranth's data library only, never a simulator.
"""
