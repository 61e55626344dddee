"""The data-parallel training script, the same file from one process to a cluster.

One process (no launcher; a world of 1)::

    python -m accel_lib.parallel.ddp_script --steps 20 --batch-size 64

Two processes on this machine (``torchrun`` sets RANK, WORLD_SIZE, MASTER_ADDR/PORT)::

    torchrun --standalone --nproc-per-node 2 -m accel_lib.parallel.ddp_script --steps 20

Several machines (run the same line on each node; HOST:PORT is reachable from all of them,
e.g. node 0's address; ``--nproc-per-node`` = GPUs per node)::

    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d \\
        --rdzv-endpoint HOST:29400 --rdzv-id job42 -m accel_lib.parallel.ddp_script --steps 20

``--batch-size`` is the global batch, split evenly over the ranks (DistributedSampler), so
every world size trains the same model; rank 0 prints a JSON summary and, with ``--out``,
saves the final state dict.
"""

from __future__ import annotations

import argparse
import json
import os

import torch
import torch.distributed as dist

from .data import data_parallel_worker
from .launcher import default_backend, free_port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", choices=("ddp", "manual"), default="ddp")
    parser.add_argument("--out", default=None, help="save rank 0's final state dict here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if "RANK" not in os.environ:  # plain `python -m`: a world of one
        os.environ.update(RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(free_port()))
    if default_backend(int(os.environ["WORLD_SIZE"])) == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(default_backend(int(os.environ["WORLD_SIZE"])))
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        res = data_parallel_worker(rank, world, args.mode, args.steps, args.batch_size,
                                   args.lr, args.seed)
        # every rank done with every collective before any tears its gloo threads down: a
        # rank that exits while its peer is still closing aborts ("terminate called without
        # an active exception", seen once in CI)
        dist.barrier()
    finally:
        dist.destroy_process_group()
    if rank == 0:
        if args.out:
            torch.save(res["state"], args.out)
        print(json.dumps({"world_size": world, "steps": args.steps, "final_loss": res["losses"][-1],
                          "median_step_ms": sorted(res["step_ms"])[len(res["step_ms"]) // 2]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
