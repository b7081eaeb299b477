"""Batch indices over in-memory datasets: shuffled repeating train batches and fixed evaluation batches.

Datasets of this suite fit in memory, so a batch is an index_select on tensors already on the device:
no worker processes, nothing to go stale, and the same order for the same data_rng.
"""

from collections.abc import Iterator

import torch


def seed_from_rng(rng) -> int:
    """A torch seed from an AlgoPerf key (uint32 array of shape (2,))."""
    return int(rng[0]) * 2**31 + int(rng[1])


def train_indices(n: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """Endless batches of indices from a fresh permutation each epoch; an epoch's ragged tail is dropped."""
    if batch_size > n:
        raise ValueError(f"batch size {batch_size} exceeds the {n} training examples")
    gen = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n - batch_size + 1, batch_size):
            yield perm[start : start + batch_size]


def eval_indices(n: int, batch_size: int, num_examples: int) -> Iterator[torch.Tensor]:
    """The first ``min(num_examples, n)`` indices in order, in batches; the last batch may be short."""
    stop = min(num_examples, n)
    for start in range(0, stop, batch_size):
        yield torch.arange(start, min(start + batch_size, stop))
