"""Diagonal methods: the grafting directions of Shampoo-family optimizers and the fallback for 1-D parameters.

Each direction takes the first-moment estimate ``m`` (the bias-corrected, possibly Nesterov, momentum; the
gradient itself when beta1 = 0) and the raw gradient ``g``, and returns the step direction:
- "sgd":     m
- "adagrad": m / (sqrt(sum g^2) + eps)
- "rmsprop": m / (sqrt(EMA_b2 g^2) + eps)
- "adam":    m / (sqrt(EMA_b2 g^2 / (1 - b2^t)) + eps)
"""

import torch

from precond.config import METHODS


def init_state(method: str, like: torch.Tensor) -> dict[str, torch.Tensor]:
    if method not in METHODS:
        raise ValueError(f"unknown grafting/diagonal method {method!r}; use one of {', '.join(METHODS)}")
    return {} if method == "sgd" else {"second_moment": torch.zeros_like(like)}


def direction(
    method: str, state: dict, m: torch.Tensor, g: torch.Tensor, step: int, beta2: float, eps: float
) -> torch.Tensor:
    """Update the method's second moment in place and return its direction."""
    if method == "sgd":
        return m
    v = state["second_moment"]
    if method == "adagrad":
        v.addcmul_(g, g)
        denom = v.sqrt()
    else:
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denom = v.sqrt() if method == "rmsprop" else (v / (1 - beta2**step)).sqrt()
    return m / denom.add_(eps)
