"""Input pipelines over in-memory tensors: shuffled repeating train batches and fixed eval batches.

Datasets of this suite fit in memory, so a batch is an index_select on tensors already on the device:
no worker processes, nothing to go stale, and the same order for the same data_rng.
"""

from collections.abc import Iterator

import torch


def seed_from_rng(rng) -> int:
    """A torch seed from an AlgoPerf key (uint32 array of shape (2,))."""
    return int(rng[0]) * 2**31 + int(rng[1])


def train_batches(arrays: dict[str, torch.Tensor], batch_size: int, seed: int) -> Iterator[dict]:
    """Endless batches from a fresh permutation each epoch; the ragged tail of an epoch is dropped."""
    n = len(next(iter(arrays.values())))
    if batch_size > n:
        raise ValueError(f"batch size {batch_size} exceeds the {n} training examples")
    device = next(iter(arrays.values())).device
    gen = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(n, generator=gen).to(device)
        for start in range(0, n - batch_size + 1, batch_size):
            idx = perm[start : start + batch_size]
            yield {k: v.index_select(0, idx) for k, v in arrays.items()}


def eval_batches(arrays: dict[str, torch.Tensor], batch_size: int, num_examples: int) -> Iterator[dict]:
    """The first ``num_examples`` rows in order, in batches; the last batch may be short."""
    for start in range(0, num_examples, batch_size):
        stop = min(start + batch_size, num_examples)
        yield {k: v[start:stop] for k, v in arrays.items()}
