"""Data-parallel training on one CPU, for Chapter 11: several processes, each with a shard of every batch,
averaging their gradients with `torch.distributed` (the gloo backend) — by hand or through
DistributedDataParallel — and a single-process reference that must end with the same weights.

The worker runs in freshly spawned processes, so it lives here (a notebook's functions cannot be spawned).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn


def small_mlp(seed: int = 0, hidden: int = 128) -> nn.Module:
    """A seeded 784-hidden-10 MLP without dropout or BatchNorm, so that sharding a batch changes nothing."""

    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def batch_indices(n: int, steps: int, batch: int, seed: int = 0) -> np.ndarray:
    """The examples of every global batch, (steps, batch): the same on every worker, drawn from a seeded generator."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(n, batch, replace=False) for _ in range(steps)])


def train_single(x: np.ndarray, y: np.ndarray, steps: int, batch: int, lr: float = 0.1, seed: int = 0,
                 accumulate: int = 1) -> dict[str, torch.Tensor]:
    """Plain SGD in one process on the global batches; accumulate > 1 splits each batch into that many
    micro-batches whose gradients add up before one step (gradient accumulation). Returns the final state_dict."""

    model = small_mlp(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    for idx in batch_indices(len(x), steps, batch, seed):
        optimizer.zero_grad()
        for part in np.array_split(idx, accumulate):
            loss = F.cross_entropy(model(xt[part]), yt[part]) / accumulate  # mean over the whole batch in the end
            loss.backward()
        optimizer.step()
    return model.state_dict()


def _worker(rank: int, world_size: int, folder: str, steps: int, batch: int, lr: float, seed: int,
            use_ddp: bool) -> None:
    """One data-parallel process: its shard of every global batch, gradients averaged across processes."""

    torch.set_num_threads(1)
    folder = Path(folder)
    dist.init_process_group("gloo", init_method=f"file://{folder / 'rendezvous'}", rank=rank, world_size=world_size)
    data = np.load(folder / "data.npz")
    xt, yt = torch.from_numpy(data["x"]), torch.from_numpy(data["y"].astype(np.int64))
    model = small_mlp(seed)  # same seed: every process starts from the same weights
    if use_ddp:
        model = torch.nn.parallel.DistributedDataParallel(model)  # averages gradients during backward()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    start = time.perf_counter()
    for idx in batch_indices(len(xt), steps, batch, seed):
        shard = np.array_split(idx, world_size)[rank]  # this process's part of the global batch
        optimizer.zero_grad()
        F.cross_entropy(model(xt[shard]), yt[shard]).backward()
        if not use_ddp:
            for p in model.parameters():  # by hand: sum the gradients of all processes, divide by their number
                dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                p.grad /= world_size
        optimizer.step()
    seconds = time.perf_counter() - start
    if rank == 0:
        state = (model.module if use_ddp else model).state_dict()
        torch.save(state, folder / "state.pt")
        (folder / "result.json").write_text(json.dumps({"seconds": seconds, "world_size": world_size}))
    dist.barrier()  # nobody tears down the process group while another process still uses it
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown, where gloo's threads can still abort the process (SIGABRT)


def train_data_parallel(x: np.ndarray, y: np.ndarray, steps: int, batch: int, lr: float = 0.1, seed: int = 0,
                        world_size: int = 2, use_ddp: bool = False) -> tuple[dict[str, torch.Tensor], float]:
    """Train small_mlp with world_size processes (gloo), each on 1/world_size of every global batch.

    Returns rank 0's final state_dict and its training seconds (process start-up excluded).
    """

    if batch % world_size:
        raise ValueError(f"batch {batch} must split evenly over {world_size} processes")
    with tempfile.TemporaryDirectory(prefix="ddp-") as folder:
        np.savez(Path(folder) / "data.npz", x=x, y=y)
        mp.start_processes(_worker, args=(world_size, folder, steps, batch, lr, seed, use_ddp), nprocs=world_size,
                           join=True, start_method="spawn")
        state = torch.load(Path(folder) / "state.pt", weights_only=True)
        seconds = json.loads((Path(folder) / "result.json").read_text())["seconds"]
    return state, seconds


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The largest absolute difference between two state_dicts with the same keys."""
    return max(float((a[k] - b[k]).abs().max()) for k in a)
