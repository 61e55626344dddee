"""Pipeline parallelism: a model cut into consecutive stages, one per process (GPipe).

A batch is split into ``m`` micro-batches. Stage ``s`` runs the forward of micro-batch ``i``
as soon as stage ``s - 1`` has sent it the activations, then, after all forwards, the
backwards in reverse order, sending the gradient of its input back to stage ``s - 1``.
With ``p`` stages of equal cost, every stage is busy for ``m`` of the ``m + p - 1`` slots of
each phase, so the idle ("bubble") fraction is ``(p - 1) / (m + p - 1)``
(:func:`bubble_fraction`): more micro-batches, smaller bubble. Gradients are accumulated
over the micro-batches (each loss scaled by its share of the batch), so they equal the
unsplit model's gradients on the whole batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import nn

from .._validate import check_int, check_module, check_real
from .launcher import worker_device

__all__ = ["split_stages", "bubble_fraction", "pipeline_model", "gpipe_step",
           "pipeline_worker", "bubble_worker"]


def split_stages(model: nn.Module, stages: int) -> list[nn.Sequential]:
    """Cut an ``nn.Sequential`` into ``stages`` consecutive parts of near-equal length."""
    check_module(model, "model")
    stages = check_int(stages, "stages", minimum=1)
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"model must be an nn.Sequential to be split into stages, got "
                         f"{type(model).__name__}")
    if len(model) < stages:
        raise ValueError(f"stages must be <= the number of layers ({len(model)}) of the model, "
                         f"got stages={stages}: a stage needs at least one layer")
    layers = list(model)
    bounds = [round(i * len(layers) / stages) for i in range(stages + 1)]
    return [nn.Sequential(*layers[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def bubble_fraction(stages: int, micro_batches: int) -> float:
    """GPipe's idle fraction per stage: ``(p - 1) / (m + p - 1)``."""
    p = check_int(stages, "stages", minimum=1)
    m = check_int(micro_batches, "micro_batches", minimum=1)
    return (p - 1) / (m + p - 1)


def pipeline_model(seed: int = 0, width: int = 32, layers: int = 4) -> nn.Sequential:
    """A small Linear/Tanh stack (deterministic from ``seed``) to split into stages."""
    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    for _ in range(layers):
        mods += [nn.Linear(width, width), nn.Tanh()]
    return nn.Sequential(*mods)


def gpipe_step(stage: nn.Module, x: torch.Tensor, target: torch.Tensor, micro_batches: int,
               loss_fn: nn.Module | None = None, stage_ms: float = 0.0) -> dict:
    """One GPipe forward + backward of this rank's ``stage`` (call on every rank).

    Rank 0 reads ``x`` (the whole batch); the last rank computes the loss against ``target``
    (mean over the whole batch, ``MSELoss`` by default). Returns this stage's ``outputs``
    (last rank: the model's output, concatenated), ``loss`` (last rank), ``busy_s`` (time in
    this stage's forward and backward), ``idle_s = total_s - busy_s`` (waiting for a
    neighbour) and ``total_s`` (wall time of the whole step, the same window on every rank).
    """
    check_module(stage, "stage")
    rank, p = dist.get_rank(), dist.get_world_size()
    m = check_int(micro_batches, "micro_batches", minimum=1)
    if x.shape[0] < m:
        raise ValueError(f"micro_batches must be <= the batch size ({x.shape[0]}), got {m}")
    loss_fn = loss_fn or nn.MSELoss(reduction="sum")
    xs = torch.tensor_split(x, m)
    ts = torch.tensor_split(target, m)
    n = x.shape[0]
    device = x.device
    # The previous stage sends each activation's shape first, then the activation.
    inputs, outputs, losses, sends = [], [], [], []
    busy = 0.0
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    cost_s = check_real(stage_ms, "stage_ms", low=0.0) / 1e3
    dist.barrier()
    start = time.perf_counter()
    for i in range(m):
        if rank == 0:
            inp = xs[i]
        else:
            shape = torch.empty(x.dim(), dtype=torch.long, device=device)
            dist.recv(shape, rank - 1)
            inp = torch.empty(*shape.tolist(), device=device)
            dist.recv(inp, rank - 1)
            inp.requires_grad_(True)
        t0 = time.perf_counter()
        out = stage(inp)
        time.sleep(cost_s * inp.shape[0] / n)
        if rank == p - 1:
            losses.append(loss_fn(out, ts[i]) / n)
        sync()
        busy += time.perf_counter() - t0
        inputs.append(inp)
        outputs.append(out)
        if rank < p - 1:
            o = out.detach().contiguous()
            sh = torch.tensor(o.shape, dtype=torch.long, device=device)
            sends += [(dist.isend(sh, rank + 1), sh), (dist.isend(o, rank + 1), o)]
    for i in reversed(range(m)):
        if rank == p - 1:
            t0 = time.perf_counter()
            losses[i].backward()
            time.sleep(2 * cost_s * xs[i].shape[0] / n)
        else:
            grad = torch.empty_like(outputs[i])
            dist.recv(grad, rank + 1)
            t0 = time.perf_counter()
            outputs[i].backward(grad)
            time.sleep(2 * cost_s * xs[i].shape[0] / n)
        sync()
        busy += time.perf_counter() - t0
        if rank > 0:
            g = inputs[i].grad.contiguous()
            sends.append((dist.isend(g, rank - 1), g))
    for req, _ in sends:
        req.wait()
    dist.barrier()  # the step ends when the last stage is done: waiting for it is idle too
    total = time.perf_counter() - start
    idle = max(total - busy, 0.0)
    result = {"idle_s": idle, "busy_s": busy, "total_s": total, "outputs": None, "loss": None}
    if rank == p - 1:
        result["outputs"] = torch.cat([o.detach() for o in outputs])
        result["loss"] = float(sum(loss.item() for loss in losses))
    return result


def pipeline_worker(rank: int, world_size: int, micro_batches: int = 4, batch: int = 16,
                    seed: int = 0, width: int = 32, layers: int = 4) -> dict:
    """Worker: GPipe step of :func:`pipeline_model` split over ``world_size`` ranks.

    Returns this stage's parameter gradients (``grads``, by full-model parameter name),
    the last rank's ``outputs`` and ``loss``, and the stage's ``idle_s`` / ``total_s``.
    """
    device = worker_device()
    full = pipeline_model(seed, width, layers)
    stages = split_stages(full, world_size)
    offset = sum(len(s) for s in stages[:rank])
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch, width, generator=gen).to(device)
    target = torch.randn(batch, width, generator=gen).to(device)
    res = gpipe_step(stages[rank].to(device), x, target, micro_batches)
    if res["outputs"] is not None:
        res["outputs"] = res["outputs"].cpu()
    grads = {}
    for name, param in stages[rank].named_parameters():
        idx, rest = name.split(".", 1)
        grads[f"{int(idx) + offset}.{rest}"] = param.grad.cpu().clone()
    res["grads"] = grads
    return res


def bubble_worker(rank: int, world_size: int, micro_counts: Sequence[int], batch: int = 64,
                  width: int = 64, layers_per_stage: int = 2, repeats: int = 2,
                  stage_ms: float = 40.0) -> list[dict]:
    """Worker: measured idle fraction of each stage for each micro-batch count.

    Stages are equal (``layers_per_stage`` Linear+Tanh of ``width`` plus ``stage_ms`` of fixed
    cost, see :func:`gpipe_step`), the batch is fixed, so the work per stage is the same for
    every ``m``. Returns, per ``m``, the median over
    ``repeats`` of ``idle_s / total_s`` on this rank.
    """
    full = pipeline_model(0, width, layers_per_stage * world_size)
    device = worker_device()
    stage = split_stages(full, world_size)[rank].to(device)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch, width, generator=gen).to(device)
    target = torch.randn(batch, width, generator=gen).to(device)
    out = []
    for m in micro_counts:
        fracs = []
        for _ in range(repeats + 1):
            stage.zero_grad(set_to_none=True)
            res = gpipe_step(stage, x, target, m, stage_ms=stage_ms)
            fracs.append(res["idle_s"] / res["total_s"])
        fracs = sorted(fracs[1:])
        out.append({"micro_batches": m, "idle_fraction": fracs[len(fracs) // 2],
                    "formula": bubble_fraction(world_size, m)})
    return out
