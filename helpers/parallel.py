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
from typing import NamedTuple

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


def _average_gradients(model: nn.Module, world_size: int, fused: bool) -> None:
    """Replace every gradient by its mean over the processes: one all_reduce per tensor, or one for all (fused)."""

    grads = [p.grad for p in model.parameters()]
    if not fused:
        for g in grads:  # sum the gradients of all processes, divide by their number
            dist.all_reduce(g, op=dist.ReduceOp.SUM)
            g /= world_size
        return
    flat = torch.cat([g.reshape(-1) for g in grads])  # all gradients in one buffer, like one DDP bucket
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def _worker(rank: int, world_size: int, folder: str, steps: int, batch: int, lr: float, seed: int,
            use_ddp: bool, repeats: int, fused: bool) -> None:
    """One data-parallel process: its shard of every global batch, gradients averaged across processes.

    The training runs `repeats` times from the same start (timings repeat; the weights come out the same).
    """

    torch.set_num_threads(1)
    folder = Path(folder)
    dist.init_process_group("gloo", init_method=f"file://{folder / 'rendezvous'}", rank=rank, world_size=world_size)
    data = np.load(folder / "data.npz")
    xt, yt = torch.from_numpy(data["x"]), torch.from_numpy(data["y"].astype(np.int64))
    seconds, buckets = [], []
    for _ in range(repeats):
        model = small_mlp(seed)  # same seed: every process starts from the same weights
        if use_ddp:
            model = torch.nn.parallel.DistributedDataParallel(model)  # averages gradients during backward()
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        dist.barrier()  # start the clock together
        start = time.perf_counter()
        for idx in batch_indices(len(xt), steps, batch, seed):
            shard = np.array_split(idx, world_size)[rank]  # this process's part of the global batch
            optimizer.zero_grad()
            F.cross_entropy(model(xt[shard]), yt[shard]).backward()
            if not use_ddp:
                _average_gradients(model, world_size, fused)  # by hand
            optimizer.step()
        seconds.append(time.perf_counter() - start)
        if use_ddp:  # how DDP grouped the gradients: bytes per bucket, one all-reduce per bucket and step
            buckets = [int(b) for b in str(model._get_ddp_logging_data().get("bucket_sizes", "")).split(",") if b]
    if rank == 0:
        state = (model.module if use_ddp else model).state_dict()
        torch.save(state, folder / "state.pt")
        (folder / "result.json").write_text(json.dumps({"seconds": seconds, "buckets": buckets}))
    dist.barrier()  # nobody tears down the process group while another process still uses it
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown, where gloo's threads can still abort the process (SIGABRT)


class ParallelRun(NamedTuple):
    """What train_data_parallel returns: rank 0's final weights, its training seconds per repeat, and the sizes in
    bytes of DistributedDataParallel's gradient buckets (empty without DDP)."""

    state: dict[str, torch.Tensor]
    seconds: list[float]
    bucket_bytes: list[int]


def train_data_parallel(x: np.ndarray, y: np.ndarray, steps: int, batch: int, lr: float = 0.1, seed: int = 0,
                        world_size: int = 2, use_ddp: bool = False, repeats: int = 1,
                        fused: bool = False) -> ParallelRun:
    """Train small_mlp with world_size processes (gloo), each on 1/world_size of every global batch.

    Without DDP the gradients are averaged by hand after backward(): one all_reduce per tensor, or with
    fused=True one all_reduce of all of them concatenated.

    The processes start once and train `repeats` times from the same start; the seconds (process start-up
    excluded) are rank 0's, one per repeat.
    """

    if batch % world_size:
        raise ValueError(f"batch {batch} must split evenly over {world_size} processes")
    if fused and use_ddp:
        raise ValueError("fused applies to the hand-written averaging only; DDP does its own bucketing")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, not {repeats}")
    with tempfile.TemporaryDirectory(prefix="ddp-") as folder:
        np.savez(Path(folder) / "data.npz", x=x, y=y)
        mp.start_processes(_worker, args=(world_size, folder, steps, batch, lr, seed, use_ddp, repeats, fused),
                           nprocs=world_size, join=True, start_method="spawn")
        state = torch.load(Path(folder) / "state.pt", weights_only=True)
        result = json.loads((Path(folder) / "result.json").read_text())
    return ParallelRun(state, result["seconds"], result["buckets"])


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The largest absolute difference between two state_dicts with the same keys."""
    return max(float((a[k] - b[k]).abs().max()) for k in a)
