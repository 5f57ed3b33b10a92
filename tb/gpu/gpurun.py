"""cocotb entry point for :func:`tb.gpu.run.run_workload`: ``vmassist gpu run`` with the tracker
RTL as the checkpoint manager's dirty source.

The manager (:func:`models.gpu.run.run_steps`) runs here, in the simulator's Python: each
:class:`~models.gpu.run.Writes` goes on the snoop port one AW a cycle, each
:class:`~models.gpu.run.Flip` is a flip and a read-out through the registers, and the log is
drained as it fills (as the model's source drains it after every request).
"""

from __future__ import annotations

import dataclasses
import os

import cocotb

from models.gpu.run import Flip, Writes, run_steps, write_outputs
from models.gpu.workload_file import load_workload

from .track import TraceDriver


@cocotb.test()
async def gpu_run(dut):
    spec = load_workload(os.environ["GPU_WORKLOAD"])
    spec = dataclasses.replace(spec, source=os.environ["GPU_WORKLOAD_NAME"])  # as the user gave it
    drv = TraceDriver(dut, log_always=True)
    await drv.reset()
    steps = run_steps(spec)
    reply = None
    while True:
        try:
            request = steps.send(reply)
        except StopIteration as stop:
            result = stop.value
            break
        reply = None
        if isinstance(request, Writes):
            for aw in request.aws:
                await drv.write(aw)
        elif isinstance(request, Flip):
            reply = await drv.flip()
        else:
            raise TypeError(f"unknown request {request!r}")
    write_outputs(result, os.environ["GPU_OUT"])
