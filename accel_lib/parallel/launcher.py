"""Start N worker processes that talk through ``torch.distributed``, from a script or a notebook.

:func:`launch` spawns ``world_size`` fresh Python processes (``spawn``: nothing of the parent's
state is inherited, which is also how ``torchrun`` starts workers), sets ``MASTER_ADDR`` /
``MASTER_PORT`` / ``RANK`` / ``WORLD_SIZE``, initialises the process group (gloo on CPU, NCCL
when CUDA is there), calls ``fn(rank, world_size, *args)`` in each and returns the results in
rank order. A worker's exception reaches the caller as :class:`WorkerError` carrying the
worker's traceback; a worker still running after ``timeout`` seconds is killed and
:class:`WorkerTimeoutError` is raised. Every child is joined (and killed if needed) before
``launch`` returns, so no orphan process is left behind.

``fn`` must be importable by the children (a module-level function of an importable module,
e.g. the ``*_worker`` functions of this package): ``spawn`` re-imports it by name, and a
function defined in a notebook cell cannot be found.
"""

from __future__ import annotations

import os
import pickle
import queue as queue_mod
import socket
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from .._validate import check_choice, check_int, check_real

__all__ = ["launch", "WorkerError", "WorkerTimeoutError", "free_port", "default_backend",
           "worker_device", "BACKENDS"]

BACKENDS = ("gloo", "nccl")


class WorkerError(RuntimeError):
    """A worker raised: ``rank`` and the worker's formatted ``worker_traceback``."""

    def __init__(self, rank: int, worker_traceback: str) -> None:
        self.rank = rank
        self.worker_traceback = worker_traceback
        super().__init__(f"worker rank {rank} failed:\n{worker_traceback}")


class WorkerTimeoutError(TimeoutError):
    """Workers still running after the timeout (they have been killed)."""


class _SetupError(WorkerError):
    """A worker could not join the process group (a port taken meanwhile, a busy machine)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def default_backend(world_size: int = 1) -> str:
    """``"nccl"`` when CUDA, NCCL and one GPU per rank (``world_size``) are there, else
    ``"gloo"`` (CPU tensors; NCCL cannot run two ranks on one GPU)."""
    if (torch.cuda.is_available() and dist.is_nccl_available()
            and torch.cuda.device_count() >= world_size):
        return "nccl"
    return "gloo"


def worker_device() -> torch.device:
    """Where a worker's tensors live: its GPU under NCCL, else the CPU."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _worker(rank: int, world_size: int, port: int, backend: str, timeout: float,
            fn: Callable[..., Any], args: tuple, results: Any) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        try:
            if backend == "nccl":
                torch.cuda.set_device(rank % torch.cuda.device_count())
            dist.init_process_group(backend, rank=rank, world_size=world_size,
                                    timeout=timedelta(seconds=timeout))
        except Exception:  # noqa: BLE001 - reported as a setup failure, retried by launch
            results.put((rank, None, traceback.format_exc()))
            return
        try:
            result = fn(rank, world_size, *args)
        finally:
            dist.destroy_process_group()
        # Plain pickle: tensors travel by value, not through shared memory that dies with us.
        results.put((rank, True, pickle.dumps(result)))
    except BaseException:  # noqa: BLE001 - every failure must reach the parent
        results.put((rank, False, traceback.format_exc()))


def _stop(procs: Sequence[Any]) -> None:
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(2.0)
        if p.is_alive():
            p.kill()
            p.join(2.0)


def launch(fn: Callable[..., Any], world_size: int, args: Sequence[Any] = (), *,
           backend: str | None = None, timeout: float = 60.0) -> list[Any]:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` processes; return the results.

    Args:
        fn: a module-level function importable by a fresh process.
        world_size: number of processes (>= 1).
        args: extra positional arguments, picklable, the same for every rank.
        backend: ``"gloo"`` or ``"nccl"``; ``None`` picks nccl with one GPU per rank, else gloo.
        timeout: seconds the whole run may take (also the collectives' timeout).

    Returns:
        ``[result of rank 0, result of rank 1, ...]``.

    Raises:
        WorkerError: a worker raised (the first failure seen; the others are stopped).
        WorkerTimeoutError: the workers did not finish within ``timeout`` seconds.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a callable (a module-level function), got {type(fn).__name__}")
    world_size = check_int(world_size, "world_size", minimum=1)
    timeout = check_real(timeout, "timeout", low=0.0, low_open=True)
    backend = check_choice(backend or default_backend(world_size), "backend", BACKENDS)
    deadline = time.monotonic() + timeout
    for attempt in range(3):
        try:
            return _launch_once(fn, world_size, tuple(args), backend, timeout, deadline)
        except _SetupError:
            if attempt == 2 or time.monotonic() > deadline - 5:
                raise
    raise AssertionError("unreachable")


def _launch_once(fn: Callable[..., Any], world_size: int, args: tuple, backend: str,
                 timeout: float, deadline: float) -> list[Any]:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    port = free_port()
    procs = []
    out: dict[int, Any] = {}
    try:
        for rank in range(world_size):
            p = ctx.Process(target=_worker, daemon=True,
                            args=(rank, world_size, port, backend, timeout, fn, args, results))
            p.start()
            procs.append(p)
        dead_since: float | None = None
        while len(out) < world_size:
            left = deadline - time.monotonic()
            if left <= 0:
                missing = sorted(set(range(world_size)) - set(out))
                raise WorkerTimeoutError(
                    f"ranks {missing} still running after timeout={timeout} s; they were "
                    "killed (a deadlock? a send without its recv?)")
            try:
                rank, ok, payload = results.get(timeout=min(left, 0.2))
            except queue_mod.Empty:
                # A worker that died without reporting (segfault, os._exit, killed).
                dead = [r for r, p in enumerate(procs) if r not in out and p.exitcode is not None]
                if dead:
                    dead_since = dead_since or time.monotonic()
                    if time.monotonic() - dead_since > 2.0:
                        r = dead[0]
                        raise WorkerError(r, f"process exited with code {procs[r].exitcode} "
                                             "without a result") from None
                continue
            if ok is None:
                raise _SetupError(rank, payload)
            if not ok:
                raise WorkerError(rank, payload)
            out[rank] = pickle.loads(payload)
        return [out[r] for r in range(world_size)]
    finally:
        _stop(procs)
        results.close()
        results.join_thread()
