"""Multi-process training through ``torchrun`` (one process per GPU, or several CPU processes with gloo).

A single process needs no setup: every function here is a no-op when ``WORLD_SIZE`` is unset or 1.
Data parallelism is explicit: every rank draws the same global batch indices from the step's generator,
takes its contiguous shard, and gradients are averaged across ranks after ``backward`` (what DDP does,
without its wrapper, so the training loop can call the model's sub-networks directly). BatchNorm
statistics are per process (torch's SyncBatchNorm needs GPUs).
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist


def setup() -> tuple[int, int]:
    """Initialise the process group from torchrun's environment. Returns (rank, world size)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(hours=12))
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return dist.get_rank(), dist.get_world_size()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first, the other ranks after it (rank 0 computes and caches, the others load)."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def shard(batch: torch.Tensor) -> torch.Tensor:
    """This rank's contiguous part of a global batch (dimension 0)."""
    if world_size() == 1:
        return batch
    return batch.chunk(world_size())[rank()]


def average_gradients(parameters) -> None:
    """All-reduce and average the gradients of ``parameters`` (missing gradients count as zero)."""
    if world_size() == 1:
        return
    for p in parameters:
        if not p.requires_grad:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad.div_(world_size())


def _device() -> torch.device:
    """Where small collective tensors live: NCCL reduces only CUDA tensors, gloo CPU ones."""
    return torch.device("cuda") if dist.get_backend() == "nccl" else torch.device("cpu")


def average_scalars(*values: float) -> list[float]:
    """Mean of each value over ranks (identical running statistics on every rank)."""
    if world_size() == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return (t / world_size()).tolist()


def agree(flag: bool) -> bool:
    """Rank 0's decision, shared by all ranks (e.g. a time budget that ran out)."""
    if world_size() == 1:
        return flag
    t = torch.tensor([1 if flag else 0], device=_device())
    dist.broadcast(t, src=0)
    return bool(t.item())


def any_rank(flag: bool) -> bool:
    """True when ``flag`` is true on at least one rank (e.g. a non-finite loss anywhere)."""
    if world_size() == 1:
        return flag
    t = torch.tensor([1 if flag else 0], device=_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
