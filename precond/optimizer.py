"""One torch.optim.Optimizer shell for every Kronecker variant: blocking, stacking of same-shaped blocks,
first moment, grafting, weight decay, refresh scheduling with failure handling, checkpointing and counters.

Blocks of equal shape (across all parameters) are stacked so a refresh is one batched call per shape and
dimension. Parameter groups may set "lr", "weight_decay" and "precondition" (False: diagonal method only).
Parameters whose gradient is None do not move (no weight decay either), as in torch.optim; their blocks'
stacked statistics see a zero gradient that step.

Under torch.distributed (``process_group``: see ``precond.distributed``) each chunk of a block group lives on one
rank, which computes its direction; the directions are shared so every rank applies the same update. ``step`` is then
collective; ``state_dict`` is local unless taken inside ``precond.distributed.gathering_state()`` on every rank.
"""

import warnings
from collections import defaultdict

import torch
import torch.distributed as dist

from precond import blocking, distributed, grafting, guards
from precond.config import KronConfig
from precond.matrix_functions import MatrixFunctionError
from precond.preconditioners import make_variant
from precond.registry import COUNTERS
from precond.tensor_ops import block_norms

PER_BLOCK = "per_block"  # a saved value the chunks of a block group held differently, kept per block


class BlockGroup:
    """Same-shaped blocks from any parameters, with their stacked optimizer state."""

    def __init__(self, shape: tuple[int, ...], preconditioned: bool):
        self.shape, self.preconditioned = shape, preconditioned
        self.members: list[tuple[torch.Tensor, dict, tuple[int, ...], blocking.Block]] = []
        self.state: dict | None = None  # None: held by another rank
        self.ready = False  # a refresh has succeeded at least once
        self.consecutive_failures = 0

    def gather(self) -> torch.Tensor:
        grads = [
            torch.zeros(b.shape, dtype=p.dtype, device=p.device) if p.grad is None else p.grad.reshape(merged)[b.slices]
            for p, _, merged, b in self.members
        ]
        return torch.stack(grads)

    def apply(self, update: torch.Tensor) -> None:
        """p <- p (1 - lr wd) - lr U for every block with a gradient, batched per (lr, wd)."""
        by_hparams = defaultdict(lambda: ([], []))
        for (p, group, merged, b), u in zip(self.members, update.unbind(0), strict=True):
            if p.grad is None:  # frozen this step: torch.optim leaves it alone, weight decay included
                continue
            views, updates = by_hparams[(group["lr"], group["weight_decay"])]
            views.append(p.data.view(merged)[b.slices])
            updates.append(u.to(p.dtype))
        for (lr, wd), (views, updates) in by_hparams.items():
            if wd:
                torch._foreach_mul_(views, 1 - lr * wd)
            torch._foreach_add_(views, updates, alpha=-lr)

    def state_dict(self) -> dict:
        return {"state": self.state, "ready": self.ready, "consecutive_failures": self.consecutive_failures}

    def load_state_dict(self, saved: dict) -> None:
        self.state = _copy_into(self.state, saved["state"])
        self.ready, self.consecutive_failures = saved["ready"], saved["consecutive_failures"]


class KronOptimizer(torch.optim.Optimizer):
    """The engine. Use a preset (precond.Shampoo, SOAP, ...) or pass ``variant=`` and any KronConfig field.

    ``process_group``: None shards the block groups over the default process group when torch.distributed is
    initialised with several processes; False never shards; or a ``torch.distributed.ProcessGroup``."""

    PRESET: dict = {}

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.0, process_group=None, **options):
        owner = type(self).__name__
        guards.check_number(owner, "lr", lr)
        guards.check_number(owner, "weight_decay", weight_decay)
        self.config = KronConfig.build(owner, self.PRESET, options)
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay, "precondition": True})
        guards.check_groups(owner, self.param_groups, ("lr", "weight_decay", "precondition"))
        guards.check_params(owner, self.param_groups)
        self.variant = make_variant(self.config)
        self.counters = dict.fromkeys(COUNTERS, 0)
        self._step = 0
        self._groups = self._build_groups()
        # the saved layout: each block group's chunks (under a process group, runs of its blocks on their owners)
        self._layout = [[i] for i in range(len(self._groups))]
        self._sharding = self._shard(distributed.resolve(process_group))
        for i, bg in enumerate(self._groups):
            if self._sharding is None or self._sharding.owns(i):
                bg.state = self._init_state(bg)

    def add_param_group(self, param_group: dict) -> None:
        if hasattr(self, "_groups"):
            raise NotImplementedError(
                "parameter groups cannot be added after construction: the block plan is fixed; "
                "pass every group to the constructor"
            )
        super().add_param_group(param_group)

    def _build_groups(self) -> list[BlockGroup]:
        groups: dict[tuple, BlockGroup] = {}
        for group in self.param_groups:
            for p in group["params"]:
                if not p.is_contiguous():
                    raise ValueError(
                        f"parameter of shape {tuple(p.shape)} is not contiguous; blocks update it through "
                        f"views, so call .contiguous() (e.g. no channels_last) before building the optimizer"
                    )
                plan = blocking.plan(tuple(p.shape), self.config.max_preconditioner_dim, group["precondition"])
                for block in plan.blocks:
                    key = (block.shape, plan.preconditioned, p.device, p.dtype)
                    if key not in groups:
                        groups[key] = BlockGroup(block.shape, plan.preconditioned)
                    groups[key].members.append((p, group, plan.merged_shape, block))
        return list(groups.values())

    def _shard(self, process_group) -> distributed.Sharding | None:
        """Under a process group, the block groups become their chunks (``distributed.split``), each on its owner."""
        if process_group is None:
            return None
        groups = self._groups
        chunks = distributed.split(
            [(bg.shape, len(bg.members), bg.preconditioned) for bg in groups],
            self.config.precondition_frequency,
            self.variant.cubic_per_step,
            dist.get_world_size(process_group),
        )
        self._groups = [BlockGroup(groups[i].shape, groups[i].preconditioned) for i, _, _, _ in chunks]
        for bg, (i, start, stop, _) in zip(self._groups, chunks, strict=True):
            bg.members = groups[i].members[start:stop]
        self._layout = [[j for j, chunk in enumerate(chunks) if chunk[0] == i] for i in range(len(groups))]
        shapes = [
            (bg.shape, len(bg.members), bg.preconditioned, bg.members[0][0].dtype, bg.members[0][0].device)
            for bg in self._groups
        ]
        owners = [owner for _, _, _, owner in chunks]
        return distributed.Sharding(process_group, shapes, owners, self._local_group_states, self._fresh_group_state)

    def _init_state(self, bg: BlockGroup, device=None) -> dict:
        """A fresh state for ``bg`` (on its parameters' device, or ``device``: "meta" gives shapes only)."""
        p = bg.members[0][0]
        stack, device = (len(bg.members),) + bg.shape, device or p.device
        zeros = torch.zeros(stack, dtype=p.dtype, device=device)
        state = {}
        if not (bg.preconditioned and self.variant.owns_first_moment):
            state["first_moment"] = zeros.clone()
        if not bg.preconditioned or self.variant.grafted or not self.variant.ready_before_refresh:
            state["diagonal"] = grafting.init_state(self.config.diagonal_method, zeros)
        if bg.preconditioned:
            state.update(self.variant.init_state(stack, getattr(torch, self.config.factor_dtype), device))
        return state

    @torch.no_grad()
    def step(self, closure=None):
        loss = evaluate_closure(closure)
        cfg = self.config
        if guards.nonfinite_step(type(self).__name__, self.param_groups, lambda: self._step + 1, cfg.nonfinite):
            self.counters["nonfinite_skips"] += 1  # nothing else changes: the step did not happen
            return loss
        self._step += 1
        if self._sharding is None:
            for bg in self._groups:
                bg.apply(self._direction(bg, self.counters))
        else:
            self._sharding.step(self._groups, self._direction, self.counters, cfg.refresh_due(self._step))
        return loss

    def _direction(self, bg: BlockGroup, counters: dict) -> torch.Tensor:
        """This step's update direction of one group (its statistics and refresh first)."""
        cfg, variant, t = self.config, self.variant, self._step
        b1, b2 = cfg.betas
        g = bg.gather()
        state = bg.state
        pre = bg.preconditioned
        m_hat = None
        if not (pre and variant.owns_first_moment):
            m = state["first_moment"].lerp_(g, 1 - b1)
            m_hat = (b1 * m + (1 - b1) * g if cfg.nesterov else m) / (1 - b1**t)
        if pre:
            if cfg.statistics_due(t):
                variant.accumulate(state, g, t)
            if cfg.refresh_due(t):
                self._refresh(bg, t, counters)
        use_variant = pre and (bg.ready or variant.ready_before_refresh)
        # The diagonal method's moments must see every step whenever its direction or norm is used.
        if not use_variant or (variant.grafted and cfg.grafting is not None):
            diag = grafting.direction(cfg.diagonal_method, state["diagonal"], m_hat, g, t, b2, cfg.graft_eps)
        if not use_variant:
            return diag
        u = variant.direction(state, g, m_hat, t)
        if variant.grafted and cfg.grafting is not None:
            u = u * (block_norms(diag) / (block_norms(u) + 1e-16))
        return u

    def _refresh(self, bg: BlockGroup, step: int, counters: dict) -> None:
        if not all(torch.isfinite(f).all() for f in self.variant.statistics(bg.state)):
            raise FloatingPointError(
                f"non-finite values in the Kronecker factors of {tuple(bg.shape)} blocks at step {step}; lower the "
                f"learning rate, clip gradients or start preconditioning later (start_preconditioning_step)"
            )
        try:
            self.variant.refresh(bg.state, step, counters)
        except MatrixFunctionError as e:
            counters["failures"] += 1
            counters["fallbacks"] += int(bg.ready)  # keep the previous preconditioner
            bg.consecutive_failures += 1
            if bg.consecutive_failures >= self.config.max_consecutive_failures:
                raise MatrixFunctionError(
                    f"{bg.consecutive_failures} refreshes in a row failed for {tuple(bg.shape)} blocks at step "
                    f"{step} ({e}); try factor_dtype='float64', a larger eps, or a lower learning rate"
                ) from None
            return
        bg.ready, bg.consecutive_failures = True, 0

    def refresh_counts(self) -> list[dict]:
        """Eigenbasis refreshes per factor (EShampoo, SOAP): per block shape and factor, each block's count
        (under a process group, of the chunks this rank owns, one entry per chunk)."""
        return [
            {"block_shape": tuple(bg.shape), "factor": i, "counts": c.tolist()}
            for bg in self._groups
            if bg.preconditioned and bg.state is not None
            for i, c in enumerate(bg.state.get("refresh_counts", ()))
        ]

    def state_dict(self) -> dict:
        """Complete on a single process. Under a process group, the groups this rank holds whole (None for the
        others), and complete on rank 0 inside ``with precond.distributed.gathering_state():`` entered on every
        rank."""
        sd = super().state_dict()
        chunks = self._local_group_states() if self._sharding is None else self._sharding.saved_groups()
        groups = [
            _joined([chunks[j] for j in layout], [len(self._groups[j].members) for j in layout])
            for layout in self._layout
        ]
        sd["kron"] = {"step": self._step, "counters": dict(self.counters), "groups": groups}
        return sd

    def _local_group_states(self) -> list:
        return [None if bg.state is None else bg.state_dict() for bg in self._groups]

    def _fresh_group_state(self, index: int) -> dict:
        bg = self._groups[index]
        return BlockGroup(bg.shape, bg.preconditioned).state_dict() | {"state": self._init_state(bg)}

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        kron = state_dict.pop("kron")
        self._check_layout(kron["groups"])  # before anything changes
        before = list(self.param_groups)
        super().load_state_dict(state_dict)
        # torch.optim replaces the group dicts; the blocks read lr and weight_decay from theirs, so re-point them
        # (else a learning-rate schedule set after a load would not reach the blocks)
        loaded = {id(old): new for old, new in zip(before, self.param_groups, strict=True)}
        for bg in self._groups:
            bg.members = [(p, loaded[id(group)], merged, b) for p, group, merged, b in bg.members]
        missing = sum(saved is None for saved in kron["groups"])
        if missing:
            warnings.warn(
                f"{type(self).__name__}: the checkpoint lacks {missing} of {len(kron['groups'])} block groups (saved "
                f"by one rank of a process group outside precond.distributed.gathering_state()); their "
                f"preconditioner state starts afresh",
                stacklevel=2,
            )
        self._step, self.counters = kron["step"], {**dict.fromkeys(COUNTERS, 0), **kron["counters"]}
        for layout, saved in zip(self._layout, kron["groups"], strict=True):
            start = 0
            for bg in (self._groups[j] for j in layout):
                stop = start + len(bg.members)
                if bg.state is None:  # another rank owns it
                    pass
                elif saved is None:
                    bg.state, bg.ready, bg.consecutive_failures = self._init_state(bg), False, 0
                else:
                    bg.load_state_dict(_blocks(saved, start, stop))
                start = stop

    def _check_layout(self, saved_groups: list) -> None:
        """The saved block groups are this optimizer's: as many, each with as many blocks of the same shapes."""
        hint = "it was saved for other parameters or another max_preconditioner_dim"
        if len(saved_groups) != len(self._layout):
            raise ValueError(
                f"checkpoint has {len(saved_groups)} block groups, this optimizer {len(self._layout)}; {hint}"
            )
        for i, (layout, saved) in enumerate(zip(self._layout, saved_groups, strict=True)):
            blocks = sum(len(self._groups[j].members) for j in layout)
            held = None if saved is None else _block_count(saved)
            if held not in (None, blocks):
                raise ValueError(f"checkpoint's block group {i} holds {held} blocks, this optimizer's {blocks}; {hint}")
            fresh = None if saved is None else self._init_state(self._groups[layout[0]], "meta")
            mismatch = None if saved is None else _shape_mismatch(saved["state"], fresh)
            if mismatch:
                raise ValueError(f"checkpoint's block group {i}: {mismatch}; {hint}")


def evaluate_closure(closure):
    """torch.optim's closure protocol: re-evaluate the loss with gradients enabled."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


def _joined(chunks: list, sizes: list[int]):
    """One block group's saved state from its chunks' (``sizes`` blocks each, in block order; None when a chunk's
    is missing): per-block tensors concatenated; a value the chunks hold alike (a refresh's outcome, SOAP's
    ``refreshed``, the failure count) kept as it is, and one they hold differently (a refresh failed on one chunk
    alone) kept per block as ``{"per_block": tensor}``, so that each chunk gets its own back (``_blocks``)."""
    if len(chunks) == 1 or any(c is None for c in chunks):
        return chunks[0] if len(chunks) == 1 else None
    return _concatenated(chunks, sizes)


def _concatenated(items: list, sizes: list[int]):
    first = items[0]
    if isinstance(first, dict):
        return {k: _concatenated([item[k] for item in items], sizes) for k in first}
    if isinstance(first, (list, tuple)):
        return [_concatenated(list(parts), sizes) for parts in zip(*items, strict=True)]
    if isinstance(first, torch.Tensor) and first.dim() > 0:
        return torch.cat(items)
    if all(item == first for item in items):
        return first
    return {PER_BLOCK: torch.tensor([item for item, n in zip(items, sizes, strict=True) for _ in range(n)])}


def _blocks(saved: dict, start: int, stop: int) -> dict:
    """A block group's saved state cut to its blocks [start, stop) (a chunk's part): per-block tensors sliced, a
    per-block value (``_joined``) back to one: a chunk's own, or for blocks that differed (a checkpoint of several
    chunks loaded into fewer) the cautious one: not ready, not refreshed, the most failures."""

    def cut(x):
        if isinstance(x, dict) and set(x) == {PER_BLOCK}:
            values = x[PER_BLOCK][start:stop]
            if values.dtype == torch.bool:
                return bool(values.all())
            if values.is_floating_point():
                raise TypeError(f"a per-block float {values.tolist()} has no cautious value; save it as a tensor")
            return int(values.max())
        if isinstance(x, dict):
            return {k: cut(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [cut(v) for v in x]
        return x[start:stop] if isinstance(x, torch.Tensor) and x.dim() > 0 else x

    return cut(saved)


def _block_count(saved: dict) -> int | None:
    """How many blocks a saved group holds: the leading size of its per-block tensors (None: it holds none)."""
    stack = [saved["state"]]
    while stack:
        x = stack.pop()
        if isinstance(x, torch.Tensor) and x.dim() > 0:
            return x.shape[0]
        stack += list(x.values()) if isinstance(x, dict) else list(x) if isinstance(x, (list, tuple)) else []
    return None


def _shape_mismatch(saved, fresh, path: str = "") -> str | None:
    """Where a saved state's per-block tensors differ in shape from a fresh state's (the first place), else None;
    entries only one side has are left to ``_copy_into``."""
    if isinstance(saved, dict) and isinstance(fresh, dict):
        found = (_shape_mismatch(saved[k], fresh[k], f"{path}.{k}" if path else k) for k in saved if k in fresh)
        return next((m for m in found if m), None)
    if isinstance(saved, (list, tuple)) and isinstance(fresh, (list, tuple)):
        found = (_shape_mismatch(a, b, f"{path}[{j}]") for j, (a, b) in enumerate(zip(saved, fresh, strict=False)))
        return next((m for m in found if m), None)
    if isinstance(saved, torch.Tensor) and isinstance(fresh, torch.Tensor) and saved.shape[1:] != fresh.shape[1:]:
        return f"{path} is {tuple(saved.shape[1:])} per block, this optimizer's {tuple(fresh.shape[1:])}"
    return None


def _copy_into(current, saved):
    """Saved values in the current containers' dtype and device (tensors copied, not aliased)."""
    if isinstance(saved, dict):
        return {k: _copy_into(current.get(k) if isinstance(current, dict) else None, v) for k, v in saved.items()}
    if isinstance(saved, (list, tuple)):
        cur = current if isinstance(current, (list, tuple)) and len(current) == len(saved) else [None] * len(saved)
        return [_copy_into(c, s) for c, s in zip(cur, saved, strict=True)]
    if isinstance(saved, torch.Tensor):
        like = current if isinstance(current, torch.Tensor) else saved
        return saved.to(dtype=like.dtype, device=like.device, copy=True)
    return saved
