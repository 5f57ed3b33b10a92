"""Pure-Python golden models of the software that drives the vmassist blocks.

Nothing under ``models/`` imports ``hdl/``, ``tb/``, cocotb or a simulator: the models use the
bit layouts and register maps of :mod:`vmassist.formats` and plain Python, so the same code
runs under :mod:`asyncio` (the functional models) and under cocotb (driving the RTL).
"""
