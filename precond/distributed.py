"""The Kronecker engine on several processes: each stacked block group is cut into contiguous runs of blocks
(chunks), each chunk belongs to one rank, which keeps its whole state (factor statistics, roots or bases, first
moment, grafting moments), refreshes it and computes its update direction; one all_gather per step (per parameter
dtype and device) shares the directions, so every rank applies the same update. The Distributed Shampoo idea (Shi
et al. 2023), for kronbench's stacked groups.

Ownership is balanced over single blocks by estimated cost with greedy longest-processing-time, deterministic from
the group shapes alone, so every rank derives the same plan; a rank then holds at most one chunk of each group, so
its batched calls stay as few as one process's. Whole groups would leave the work of a deep model (a few block
shapes, each stacked over its layers) unsplittable: a 6-layer transformer's largest group caps 8 ranks at 2.8x.

Counters change only on refresh steps (which every rank knows), so their deltas, and any refresh failure, are
summed over ranks then, keeping ``counters`` global and identical on every rank.

A complete state_dict needs every owner's state on rank 0, which only a collective can bring; yet AlgoPerf's runner
calls ``state_dict()`` on rank 0 alone, also after the last step when the other ranks have moved on, so a collective
there would hang. Hence ``state_dict()`` is local (the groups whose every chunk this rank owns; None for the others),
and inside ``with gathering_state():``, entered on every rank, it brings every chunk to rank 0 (for a runner that
checkpoints under torchrun).

Every rank must see the same gradients (DDP all-reduces them; without DDP, average them yourself) and call
``step()`` together.
"""

import contextlib
import math
import threading
from collections.abc import Callable, Sequence

import torch
import torch.distributed as dist

# eigh / Newton / QR on a d x d factor costs about this many times d^3 multiply-adds
REFRESH_FLOPS_PER_CUBE = 10

_GATHERING = threading.local()


@contextlib.contextmanager
def gathering_state():
    """Within it (entered on every rank of the process group), a sharded optimizer's ``state_dict()`` is collective
    and complete on rank 0; outside it, local."""
    previous = getattr(_GATHERING, "on", False)
    _GATHERING.on = True
    try:
        yield
    finally:
        _GATHERING.on = previous


def resolve(process_group):
    """The process group to shard over, or None for single-process behaviour.

    ``process_group``: None (the default group when torch.distributed is initialised with more than one process),
    False (never shard) or a ``torch.distributed.ProcessGroup``."""
    if process_group is False:
        return None
    if process_group is None:
        if not (dist.is_available() and dist.is_initialized()):
            return None
        process_group = dist.group.WORLD
    elif not (dist.is_available() and isinstance(process_group, dist.ProcessGroup)):
        raise ValueError(
            f"process_group={process_group!r} must be a torch.distributed.ProcessGroup, None (the default group "
            f"when torch.distributed is initialised) or False (no sharding)"
        )
    return process_group if dist.get_world_size(process_group) > 1 else None


def group_cost(
    block_shape: tuple[int, ...], n_blocks: int, preconditioned: bool, frequency: int, cubic_per_step: bool
) -> float:
    """Estimated multiply-adds per step of one stacked group: mode products and statistics (numel * sum d),
    amortised refreshes (d^3 each), and d^3 per step for variants that update inverse factors every step."""
    numel = math.prod(block_shape)
    if not preconditioned:
        return float(n_blocks * numel)
    cubes = sum(d**3 for d in block_shape)
    per_step = numel * sum(block_shape) + (cubes if cubic_per_step else 0)
    return float(n_blocks * (per_step + REFRESH_FLOPS_PER_CUBE * cubes / frequency))


def balance(costs: Sequence[float], world: int) -> tuple[int, ...]:
    """Owner rank of each item: greedy longest-processing-time (largest first, to the least-loaded rank; ties by
    index and by rank), so the result depends only on ``costs`` and ``world``."""
    load = [0.0] * world
    owners = [0] * len(costs)
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        r = min(range(world), key=lambda r: (load[r], r))
        owners[i] = r
        load[r] += costs[i]
    return tuple(owners)


def split(groups: Sequence[tuple], frequency: int, cubic_per_step: bool, world: int) -> list[tuple[int, int, int, int]]:
    """The chunks (group, first block, end block, owner rank) of block groups given as (block shape, number of
    blocks, preconditioned): every block costs its group's cost per block (``group_cost``), ``balance`` assigns
    the single blocks, and each group's blocks go to their ranks as contiguous runs, in rank order."""
    costs, of_group = [], []
    for i, (shape, n, preconditioned) in enumerate(groups):
        costs += [group_cost(shape, 1, preconditioned, frequency, cubic_per_step)] * n
        of_group += [i] * n
    counts = [[0] * world for _ in groups]
    for i, owner in zip(of_group, balance(costs, world), strict=True):
        counts[i][owner] += 1
    chunks = []
    for i, per_rank in enumerate(counts):
        start = 0
        for rank, k in enumerate(per_rank):
            if k:
                chunks.append((i, start, start + k, rank))
                start += k
    return chunks


def shares(costs: Sequence[float], owners: Sequence[int], world: int) -> tuple[float, ...]:
    """Each rank's part of the total cost: what its step time over the unsharded one would be if time followed
    the cost model and sharing the directions were free."""
    total = sum(costs) or 1.0
    return tuple(sum(c for c, o in zip(costs, owners, strict=True) if o == r) / total for r in range(world))


class Sharding:
    """Which rank owns which chunk, and the collectives that share directions, counters and state.

    ``groups``: per chunk (block shape, number of blocks, preconditioned, parameter dtype, device); ``owners``: its
    rank (``split``). ``local_state()``: this rank's saved state per chunk (None where another rank owns it);
    ``template(i)``: a freshly initialised saved state of chunk i, whose structure the owner's matches."""

    def __init__(
        self,
        process_group,
        groups: Sequence[tuple],
        owners: Sequence[int],
        local_state: Callable[[], list],
        template: Callable[[int], dict],
    ):
        self.group, self.local_state, self.template = process_group, local_state, template
        self.rank, self.world = dist.get_rank(process_group), dist.get_world_size(process_group)
        self.owners = tuple(owners)
        # where the small collectives (counters, scalars of the state) live: NCCL takes only CUDA tensors
        self.device = groups[0][4] if groups else torch.device("cpu")
        # Static all_gather layout: per (dtype, device) bucket, each rank's owned groups at fixed offsets.
        self.buckets: dict[tuple, dict] = {}
        for i, (shape, n, _, dtype, device) in enumerate(groups):
            bucket = self.buckets.setdefault((dtype, device), {"slots": [], "sizes": [0] * self.world})
            owner, stack = self.owners[i], (n, *shape)
            bucket["slots"].append((i, owner, bucket["sizes"][owner], stack))
            bucket["sizes"][owner] += math.prod(stack)

    def owns(self, index: int) -> bool:
        return self.owners[index] == self.rank

    def step(self, groups: Sequence, direction: Callable, counters: dict, sync_counters: bool) -> None:
        """Compute the owned groups' directions (``direction(group, counters)``), share them, apply all of them.
        On ``sync_counters`` steps the counters' deltas and any failure are summed over ranks first."""
        delta = dict.fromkeys(counters, 0)
        directions, error = {}, None
        try:
            for i, bg in enumerate(groups):
                if self.owns(i):
                    directions[i] = direction(bg, delta)
        except Exception as e:  # noqa: BLE001  (re-raised below, after the other ranks learn of it)
            if not sync_counters:
                raise
            error = e
        if sync_counters:
            self._sum_counters(delta, counters, error)
        for bucket_key, bucket in self.buckets.items():
            for i, update in self._exchange(bucket_key, bucket, directions):
                groups[i].apply(update)

    def _sum_counters(self, delta: dict, counters: dict, error: Exception | None) -> None:
        names = sorted(delta)
        values = torch.tensor(
            [delta[k] for k in names] + [int(error is not None)], dtype=torch.int64, device=self.device
        )
        dist.all_reduce(values, group=self.group)
        if error is not None:
            raise error
        if values[-1]:
            raise RuntimeError(
                f"a preconditioner refresh failed on {int(values[-1])} other rank(s) of the process group; their "
                f"error says why"
            )
        for k, v in zip(names, values.tolist(), strict=False):
            counters[k] += v

    def _exchange(self, bucket_key: tuple, bucket: dict, directions: dict):
        """One all_gather of every rank's owned directions in this bucket (padded to the largest share)."""
        dtype, device = bucket_key
        width = max(bucket["sizes"])
        if width == 0:
            return
        mine = [directions[i].to(dtype).reshape(-1) for i, owner, _, _ in bucket["slots"] if owner == self.rank]
        send = torch.zeros(width, dtype=dtype, device=device)
        if mine:
            torch.cat(mine, out=send[: bucket["sizes"][self.rank]])
        received = [torch.empty_like(send) for _ in range(self.world)]
        dist.all_gather(received, send, group=self.group)
        for i, owner, offset, stack in bucket["slots"]:
            yield i, received[owner][offset : offset + math.prod(stack)].view(stack)

    def saved_groups(self) -> list:
        """Each group's saved state: this rank's own (None for the others), or, inside ``gathering_state()``,
        every group's on rank 0, sent by its owner."""
        if not getattr(_GATHERING, "on", False):
            return list(self.local_state())
        root = dist.get_global_rank(self.group, 0) if self.group is not dist.group.WORLD else 0
        saved, template = list(self.local_state()), self.template
        for i, owner in enumerate(self.owners):
            if owner == 0 or self.rank not in (0, owner):
                continue
            if self.rank == owner:
                for leaf in _leaves(saved[i], self.device):
                    dist.send(leaf.contiguous(), dst=root, group=self.group)
            else:
                src = dist.get_global_rank(self.group, owner) if self.group is not dist.group.WORLD else owner
                shape = template(i)
                received = _leaves(shape, self.device)
                for leaf in received:
                    dist.recv(leaf, src=src, group=self.group)
                saved[i] = _rebuild(shape, iter(received))
        return saved


def _leaves(obj, device) -> list[torch.Tensor]:
    """The tensors of a nested state in a fixed order; plain numbers and booleans as float64 scalars on ``device``."""
    if isinstance(obj, dict):
        return [leaf for k in sorted(obj) for leaf in _leaves(obj[k], device)]
    if isinstance(obj, (list, tuple)):
        return [leaf for item in obj for leaf in _leaves(item, device)]
    if isinstance(obj, torch.Tensor):
        return [obj]
    return [torch.tensor(float(obj), dtype=torch.float64, device=device)]


def _rebuild(template, leaves):
    """``template``'s structure filled from ``leaves`` (in ``_leaves`` order), numbers back in their types."""
    if isinstance(template, dict):
        return {k: _rebuild(template[k], leaves) for k in sorted(template)}
    if isinstance(template, (list, tuple)):
        return [_rebuild(item, leaves) for item in template]
    leaf = next(leaves)
    return leaf if isinstance(template, torch.Tensor) else type(template)(leaf.item())
