"""One torch.optim.Optimizer shell for every Kronecker variant: blocking, stacking of same-shaped blocks,
first moment, grafting, weight decay, refresh scheduling with failure handling, checkpointing and counters.

Blocks of equal shape (across all parameters) are stacked so a refresh is one batched call per shape and
dimension. Parameter groups may set "lr", "weight_decay" and "precondition" (False: diagonal method only).
Parameters whose gradient is None do not move (no weight decay either), as in torch.optim; their blocks'
stacked statistics see a zero gradient that step.
"""

from collections import defaultdict

import torch

from precond import blocking, grafting, guards
from precond.config import KronConfig
from precond.matrix_functions import MatrixFunctionError
from precond.preconditioners import make_variant
from precond.tensor_ops import block_norms

COUNTERS = ("refreshes", "skipped", "failures", "fallbacks", "fp64_retries", "nonfinite_skips")


class BlockGroup:
    """Same-shaped blocks from any parameters, with their stacked optimizer state."""

    def __init__(self, shape: tuple[int, ...], preconditioned: bool):
        self.shape, self.preconditioned = shape, preconditioned
        self.members: list[tuple[torch.Tensor, dict, tuple[int, ...], blocking.Block]] = []
        self.state: dict = {}
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
    """The engine. Use a preset (precond.Shampoo, SOAP, ...) or pass ``variant=`` and any KronConfig field."""

    PRESET: dict = {}

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.0, **options):
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

    def add_param_group(self, param_group: dict) -> None:
        if hasattr(self, "_groups"):
            raise NotImplementedError(
                "parameter groups cannot be added after construction: the block plan is fixed; "
                "pass every group to the constructor"
            )
        super().add_param_group(param_group)

    def _build_groups(self) -> list[BlockGroup]:
        dtype = getattr(torch, self.config.factor_dtype)
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
        for bg in groups.values():
            p = bg.members[0][0]
            stack = (len(bg.members),) + bg.shape
            zeros = torch.zeros(stack, dtype=p.dtype, device=p.device)
            if not (bg.preconditioned and self.variant.owns_first_moment):
                bg.state["first_moment"] = zeros.clone()
            if not bg.preconditioned or self.variant.grafted or not self.variant.ready_before_refresh:
                bg.state["diagonal"] = grafting.init_state(self.config.diagonal_method, zeros)
            if bg.preconditioned:
                bg.state.update(self.variant.init_state(stack, dtype, p.device))
        return list(groups.values())

    @torch.no_grad()
    def step(self, closure=None):
        loss = evaluate_closure(closure)
        cfg, variant = self.config, self.variant
        if guards.nonfinite_step(type(self).__name__, self.param_groups, lambda: self._step + 1, cfg.nonfinite):
            self.counters["nonfinite_skips"] += 1  # nothing else changes: the step did not happen
            return loss
        self._step += 1
        t = self._step
        b1, b2 = cfg.betas
        for bg in self._groups:
            g = bg.gather()
            state = bg.state
            pre = bg.preconditioned
            m_hat = None
            if not (pre and variant.owns_first_moment):
                m = state["first_moment"].lerp_(g, 1 - b1)
                m_hat = (b1 * m + (1 - b1) * g if cfg.nesterov else m) / (1 - b1**t)
            if pre:
                variant.accumulate(state, g, t)
                if cfg.refresh_due(t):
                    self._refresh(bg, t)
            use_variant = pre and (bg.ready or variant.ready_before_refresh)
            # The diagonal method's moments must see every step whenever its direction or norm is used.
            if not use_variant or (variant.grafted and cfg.grafting is not None):
                diag = grafting.direction(cfg.diagonal_method, state["diagonal"], m_hat, g, t, b2, cfg.graft_eps)
            if use_variant:
                u = variant.direction(state, g, m_hat, t)
                if variant.grafted and cfg.grafting is not None:
                    u = u * (block_norms(diag) / (block_norms(u) + 1e-16))
            else:
                u = diag
            bg.apply(u)
        return loss

    def _refresh(self, bg: BlockGroup, step: int) -> None:
        factors = [f for key in ("factors", "inverse_factors") for f in bg.state.get(key, [])]
        if not all(torch.isfinite(f).all() for f in factors):
            raise FloatingPointError(
                f"non-finite values in the Kronecker factors of {tuple(bg.shape)} blocks at step {step}; lower the "
                f"learning rate, clip gradients or start preconditioning later (start_preconditioning_step)"
            )
        try:
            self.variant.refresh(bg.state, step, self.counters)
        except MatrixFunctionError as e:
            self.counters["failures"] += 1
            self.counters["fallbacks"] += int(bg.ready)  # keep the previous preconditioner
            bg.consecutive_failures += 1
            if bg.consecutive_failures >= self.config.max_consecutive_failures:
                raise MatrixFunctionError(
                    f"{bg.consecutive_failures} refreshes in a row failed for {tuple(bg.shape)} blocks at step "
                    f"{step} ({e}); try factor_dtype='float64', a larger eps, or a lower learning rate"
                ) from None
            return
        bg.ready, bg.consecutive_failures = True, 0

    def refresh_counts(self) -> list[dict]:
        """Eigenbasis refreshes per factor (EShampoo, SOAP): per block shape and factor, each block's count."""
        return [
            {"block_shape": tuple(bg.shape), "factor": i, "counts": c.tolist()}
            for bg in self._groups
            if bg.preconditioned
            for i, c in enumerate(bg.state.get("refresh_counts", ()))
        ]

    def state_dict(self) -> dict:
        sd = super().state_dict()
        sd["kron"] = {
            "step": self._step,
            "counters": dict(self.counters),
            "groups": [bg.state_dict() for bg in self._groups],
        }
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        kron = state_dict.pop("kron")
        super().load_state_dict(state_dict)
        if len(kron["groups"]) != len(self._groups):
            raise ValueError(
                f"checkpoint has {len(kron['groups'])} block groups, this optimizer {len(self._groups)}; "
                f"it was saved for other parameters or another max_preconditioner_dim"
            )
        self._step, self.counters = kron["step"], {**dict.fromkeys(COUNTERS, 0), **kron["counters"]}
        for bg, saved in zip(self._groups, kron["groups"], strict=True):
            bg.load_state_dict(saved)


def evaluate_closure(closure):
    """torch.optim's closure protocol: re-evaluate the loss with gradients enabled."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


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
