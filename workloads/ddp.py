"""Workloads under torchrun, as AlgoPerf's PyTorch workloads run: the model wrapped in DistributedDataParallel,
each rank fed its slice of every global training batch, and evaluation split over the ranks.

Evaluation: rank r runs the eval batches r, r + W, ...; the (batch, output) pairs are gathered so that every rank
summarises the whole split in the original order. Gathering outputs, rather than all-reducing sums, keeps every
metric exact, also those that are not sums over examples (BLEU, WER, mean average precision), and leaves each
workload's ``summarize`` unchanged. The eval forward passes use the unwrapped module: DDP's forward broadcasts
buffers, a collective that ranks with different numbers of eval batches would never match.
"""

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_and_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if active() else (0, 1)


def wrap(model: nn.Module) -> nn.Module:
    """``model`` in DDP when several processes train it (device_ids on GPU, none on CPU), else itself."""
    if not active():
        return model
    on_gpu = next(model.parameters()).is_cuda
    device_ids = [torch.cuda.current_device()] if on_gpu else None
    return DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model):
    """The module inside a DDP wrapper (its parameter names carry no ``module.`` prefix), or ``model`` itself."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def local_slice(global_batch_size: int) -> slice:
    """This rank's part of a global batch. Raises ValueError when the batch does not split evenly."""
    rank, world = rank_and_world()
    if global_batch_size % world:
        raise ValueError(
            f"global batch size {global_batch_size} does not split evenly over {world} processes; "
            f"choose a batch size divisible by {world} or another --nproc_per_node"
        )
    per_rank = global_batch_size // world
    return slice(rank * per_rank, (rank + 1) * per_rank)


def mine(items):
    """Every W-th item starting at this rank's (all items on one process)."""
    rank, world = rank_and_world()
    return (item for i, item in enumerate(items) if i % world == rank)


def gather_in_order(pairs: list) -> list:
    """Every rank's ``pairs`` (made by ``mine`` over one sequence), interleaved back into the sequence's order,
    on every rank. Tensors travel on the CPU."""
    if not active():
        return pairs
    local = [tuple(_to_cpu(x) for x in pair) for pair in pairs]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, local)
    out = []
    for i in range(max(len(g) for g in gathered)):
        out += [g[i] for g in gathered if i < len(g)]
    return out


def _to_cpu(x):
    if isinstance(x, torch.Tensor):
        return x.cpu()
    if isinstance(x, dict):
        return {k: _to_cpu(v) for k, v in x.items()}
    return x
