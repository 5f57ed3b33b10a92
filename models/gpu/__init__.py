"""Golden model of the GPU system: what the dirty tracker must record, and the vGPU whose
checkpoints use it (``docs/gpu.md``).

Modules
-------
axi      AXI4 write bursts: :class:`Aw`, :class:`Burst`, :func:`byte_spans`, :func:`pages_touched`
tracker  the tracker's contract: :class:`DirtyTracker`, :class:`EpochReport`, :class:`LogEntry`
trace    write-address traces: :func:`load_trace`, :func:`run_model`, :func:`write_epochs`
gen9     Gen9 command encoders (``mi_*``, :func:`pipe_control`, ``xy_*_blt``) and
         :func:`decode` to a :class:`Command`
vgpu     :class:`Vgpu` (trapped MMIO, shadow registers, ring submission, snapshots),
         :class:`GuestMemory`, :class:`Ggtt`
scanner  :func:`scan`: batch-buffer following, predicted dirty pages and cycles, the cost model
executor :class:`Executor`: runs commands, their writes as AXI4 bursts (:func:`pages_of`)
workload :func:`random_commands`, and the guest-driver steps ``setup``, ``emit``, ``play``
cache    :class:`WriteCache`: the GPU's write-combining cache, flushed by a checkpoint's drain
checkpoint  :class:`Secondary` (two-phase commit), :class:`CheckpointCost`, the statistics
workload_file  ``W.toml``: :func:`load_workload`, :class:`WorkloadSpec`, :class:`FailAt`
run      ``vmassist gpu run``: the sans-IO loop :func:`run_steps` (:class:`Writes`,
         :class:`Flip`), :func:`drive`, ``run.run_model``, :func:`write_outputs`
"""

from .axi import Aw, Burst, byte_spans, pages_touched
from .cache import WriteCache
from .checkpoint import CheckpointCost, InvariantError, Secondary
from .executor import Executed, Executor, ExecutorError, ExecutorState, bursts, pages_of
from .gen9 import Command, CommandError, Op, decode
from .run import Flip, RunResult, Writes, drive, run_steps, write_outputs
from .scanner import COST, CostModel, ScanError, Scanned, scan
from .trace import FLIP, load_trace, run_model, write_epochs
from .tracker import Counters, DirtyTracker, EpochReport, LogEntry, TrackerError
from .vgpu import Ggtt, GgttFault, GuestMemory, Submission, Vgpu, VgpuError, VgpuState
from .workload import GfxLayout, Workload, random_commands
from .workload_file import FailAt, WorkloadSpec, load_workload

__all__ = [
    "WriteCache",
    "CheckpointCost",
    "InvariantError",
    "Secondary",
    "Flip",
    "RunResult",
    "Writes",
    "drive",
    "run_steps",
    "write_outputs",
    "FailAt",
    "WorkloadSpec",
    "load_workload",
    "Aw",
    "Burst",
    "byte_spans",
    "pages_touched",
    "Counters",
    "DirtyTracker",
    "EpochReport",
    "LogEntry",
    "TrackerError",
    "FLIP",
    "load_trace",
    "run_model",
    "write_epochs",
    "Command",
    "CommandError",
    "Op",
    "decode",
    "GuestMemory",
    "Ggtt",
    "GgttFault",
    "Vgpu",
    "VgpuError",
    "VgpuState",
    "Submission",
    "scan",
    "Scanned",
    "ScanError",
    "CostModel",
    "COST",
    "Executor",
    "Executed",
    "ExecutorError",
    "ExecutorState",
    "bursts",
    "pages_of",
    "Workload",
    "GfxLayout",
    "random_commands",
]
