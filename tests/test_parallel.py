"""Chapter 11's data-parallel training: gradient accumulation and 2 gloo processes equal one process."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import parallel


def fake_data(n=512, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 784)).astype(np.float32), rng.integers(0, 10, n)


def test_batch_indices_are_seeded_and_without_repeats():
    a, b = parallel.batch_indices(100, 5, 32, seed=1), parallel.batch_indices(100, 5, 32, seed=1)
    assert a.shape == (5, 32) and np.array_equal(a, b)
    assert all(len(set(row)) == 32 for row in a)


def test_accumulation_equals_large_batch_and_training_changes_weights():
    x, y = fake_data()
    start = parallel.small_mlp(0).state_dict()
    single = parallel.train_single(x, y, steps=10, batch=64)
    accumulated = parallel.train_single(x, y, steps=10, batch=64, accumulate=4)
    assert parallel.max_difference(single, accumulated) < 1e-6
    assert parallel.max_difference(single, start) > 1e-3  # it did train


@pytest.mark.parametrize(("use_ddp", "fused"), [(False, False), (False, True), (True, False)])
def test_two_processes_equal_one(use_ddp, fused):
    x, y = fake_data()
    single = parallel.train_single(x, y, steps=10, batch=64)
    run = parallel.train_data_parallel(x, y, steps=10, batch=64, world_size=2, use_ddp=use_ddp, repeats=2,
                                       fused=fused)
    assert parallel.max_difference(single, run.state) < 1e-6
    assert len(run.seconds) == 2 and all(s > 0 for s in run.seconds)
    other = parallel.train_single(x, y, steps=10, batch=64, seed=1)  # a different run really differs
    assert parallel.max_difference(other, run.state) > 1e-3
    gradient_bytes = 4 * sum(p.numel() for p in parallel.small_mlp().parameters())
    # DDP reports its buckets (the whole small MLP fits in one); the hand-written loop has none
    assert run.bucket_bytes == ([gradient_bytes] if use_ddp else [])


def test_uneven_batch_and_no_repeats_are_refused():
    x, y = fake_data(64)
    with pytest.raises(ValueError, match="split evenly"):
        parallel.train_data_parallel(x, y, steps=1, batch=63, world_size=2)
    with pytest.raises(ValueError, match="repeats"):
        parallel.train_data_parallel(x, y, steps=1, batch=64, world_size=2, repeats=0)
    with pytest.raises(ValueError, match="fused"):
        parallel.train_data_parallel(x, y, steps=1, batch=64, world_size=2, use_ddp=True, fused=True)
