"""NAdamW: Adam with a Nesterov-style first moment and decoupled weight decay (AlgoPerf's baseline).

Per step t, with g the gradient:
    p <- p (1 - lr wd)
    m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
    p <- p - lr / (1 - b1^t) * (b1 m + (1 - b1) g) / (sqrt(v / (1 - b2^t)) + eps)
Parameters are updated with multi-tensor (_foreach) ops, one launch per group and step count. Parameters whose
gradient is None are left alone. A NaN or infinite gradient raises at once (``nonfinite="raise"``) or skips the
whole step, counted in ``nonfinite_skips`` (``nonfinite="skip"``).
"""

import math
from collections import defaultdict

import torch

from precond import guards
from precond.optimizer import evaluate_closure


class NAdamW(torch.optim.Optimizer):
    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        nonfinite: str = "raise",
    ):
        guards.check_number("NAdamW", "lr", lr)
        guards.check_betas("NAdamW", betas)
        guards.check_number("NAdamW", "eps", eps)
        guards.check_number("NAdamW", "weight_decay", weight_decay)
        guards.check_nonfinite_policy("NAdamW", nonfinite)
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)
        guards.check_groups("NAdamW", self.param_groups, tuple(defaults))
        guards.check_params("NAdamW", self.param_groups)
        self.nonfinite, self.nonfinite_skips = nonfinite, 0

    @torch.no_grad()
    def step(self, closure=None):
        loss = evaluate_closure(closure)
        if guards.nonfinite_step("NAdamW", self.param_groups, self._next_step, self.nonfinite):
            self.nonfinite_skips += 1
            return loss
        for group in self.param_groups:
            buckets: dict[int, list[torch.Tensor]] = defaultdict(list)
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("NAdamW does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                buckets[int(state["step"].item())].append(p)
            for step, params in buckets.items():
                self._update(params, step, group)
        return loss

    def _next_step(self) -> int:
        """The step about to be taken (the largest per-parameter count + 1), for error messages."""
        steps = [int(s["step"].item()) for s in self.state.values() if "step" in s]
        return max(steps, default=0) + 1

    def state_dict(self) -> dict:
        return {**super().state_dict(), "nonfinite_skips": self.nonfinite_skips}

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        self.nonfinite_skips = state_dict.pop("nonfinite_skips", 0)
        super().load_state_dict(state_dict)

    def _update(self, params: list[torch.Tensor], step: int, group: dict) -> None:
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        grads = [p.grad for p in params]
        exp_avgs = [self.state[p]["exp_avg"] for p in params]
        exp_avg_sqs = [self.state[p]["exp_avg_sq"] for p in params]
        if wd != 0:
            torch._foreach_mul_(params, 1 - lr * wd)
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
        numer = torch._foreach_mul(exp_avgs, beta1)
        torch._foreach_add_(numer, grads, alpha=1 - beta1)
        denom = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denom, math.sqrt(1 - beta2**step))
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(params, numer, denom, value=-lr / (1 - beta1**step))
