"""Parallel and distributed training, with real processes: ``from accel_lib import parallel as PA``.

* ``launcher``: :func:`launch` runs ``fn(rank, world_size, *args)`` in N spawned processes
  joined by ``torch.distributed`` (gloo on CPU, NCCL on GPUs), returns their results, brings a
  worker's traceback back (:class:`WorkerError`), kills hung workers (:class:`WorkerTimeoutError`).
* ``ring``: ring all-reduce (reduce-scatter + all-gather) on send/recv, its chunk schedule and
  its ``2 (p - 1) / p * n`` bytes per rank.
* ``data``: data parallelism by hand (all-reduce, average, step) and with
  ``DistributedDataParallel``, equal to one process on the concatenated batch.
* ``pipeline``: a model cut into stages (GPipe micro-batches), the bubble
  ``(p - 1) / (m + p - 1)`` measured and computed.
* ``tensor``: Megatron column-/row-parallel Linear and the one-all-reduce MLP block.
* ``tf_mirrored``: TensorFlow's ``MirroredStrategy`` on two logical CPUs (a subprocess).
* ``ddp_script``: the data-parallel script for ``torchrun`` (one node or many).

Worker functions (``*_worker``) are module-level so that spawned processes can import them.
"""

from __future__ import annotations

from .data import (
    MODES,
    average_gradients_,
    check_batch,
    data_parallel_modes_worker,
    data_parallel_worker,
    digits_dataset,
    make_model,
    mean_over_ranks,
    single_process_train,
)
from .demo import model_parallel_demo_worker, ring_demo_worker
from .launcher import (
    BACKENDS,
    WorkerError,
    WorkerTimeoutError,
    default_backend,
    free_port,
    launch,
    worker_device,
)
from .pipeline import (
    bubble_fraction,
    bubble_worker,
    gpipe_step,
    pipeline_model,
    pipeline_worker,
    split_stages,
)
from .ring import (
    allreduce_time_worker,
    ring_all_reduce_,
    ring_bytes,
    ring_check_worker,
    ring_schedule,
)
from .tensor import (
    ColumnParallelLinear,
    MegatronMLP,
    RowParallelLinear,
    megatron_partials,
    mlp_block,
    shard_linear,
    tensor_parallel_worker,
)
from .testing import fail_worker, hang_worker, spin_worker
from .tf_mirrored import mirrored_vs_single

__all__ = [
    "BACKENDS", "ColumnParallelLinear", "MODES", "MegatronMLP", "RowParallelLinear",
    "WorkerError", "WorkerTimeoutError", "allreduce_time_worker", "average_gradients_",
    "bubble_fraction", "bubble_worker", "check_batch", "data_parallel_modes_worker",
    "data_parallel_worker", "default_backend", "digits_dataset", "fail_worker", "free_port",
    "gpipe_step", "hang_worker", "launch", "make_model", "mean_over_ranks",
    "megatron_partials", "mirrored_vs_single", "mlp_block", "model_parallel_demo_worker",
    "pipeline_model", "pipeline_worker", "ring_all_reduce_", "ring_bytes", "ring_check_worker",
    "ring_demo_worker", "ring_schedule", "shard_linear", "single_process_train", "spin_worker",
    "split_stages", "tensor_parallel_worker", "worker_device",
]
