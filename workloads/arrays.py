"""Batch indices over in-memory datasets: shuffled repeating train batches and fixed evaluation batches.

Datasets of this suite fit in memory, so a batch is an index lookup on arrays already in place: no worker
processes, nothing to go stale, and the same order for the same data_rng. Indices are numpy arrays so that the
PyTorch and the JAX workloads draw the very same batches.
"""

from collections.abc import Iterator

import numpy as np


def seed_from_rng(rng) -> int:
    """A seed from an AlgoPerf key (a uint32 array of shape (2,), numpy-emulated or a raw JAX key)."""
    rng = np.asarray(rng)
    return int(rng[0]) * 2**31 + int(rng[1])


def train_indices(n: int, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Endless int64 batches of indices from a fresh permutation each epoch; an epoch's ragged tail is dropped."""
    if batch_size > n:
        raise ValueError(f"batch size {batch_size} exceeds the {n} training examples")
    gen = np.random.default_rng(seed)
    while True:
        perm = gen.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            yield perm[start : start + batch_size]


def eval_indices(n: int, batch_size: int, num_examples: int) -> Iterator[np.ndarray]:
    """The first ``min(num_examples, n)`` indices in order, in batches; the last batch may be short."""
    stop = min(num_examples, n)
    for start in range(0, stop, batch_size):
        yield np.arange(start, min(start + batch_size, stop))
