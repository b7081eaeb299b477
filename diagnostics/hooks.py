"""Per-example weight gradients of a model's small ``nn.Linear`` layers, by forward hooks and one backward pass.

For a loss that is a sum of per-example terms with no interaction between examples, layer ``y = x W^T`` has
per-example gradient ``sum_t delta_it x_it^T`` (summed over any sequence or token axes t), where
``delta = d loss / d y``. Batch norm in training mode couples examples, so for such models the result is the
gradient of the training-mode forward with its batch statistics held fixed: an approximation.
"""

from collections.abc import Callable

import torch
from torch import nn


def small_linear_layers(model: nn.Module, max_size: int) -> dict[str, nn.Linear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear) and m.weight.numel() <= max_size}


def per_example_linear_grads(layers: dict[str, nn.Linear], per_example_loss: Callable[[], torch.Tensor]) -> dict:
    """{name: (N, out, in)} for ``layers``; ``per_example_loss()`` runs the forward and returns the (N,) losses.
    Parameter ``.grad`` fields are left untouched."""
    captured: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def hook(name):
        def record(module, inputs, output):
            captured[name] = (inputs[0].detach(), output)

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in layers.items()]
    try:
        losses = per_example_loss()
    finally:
        for h in handles:
            h.remove()
    names = [n for n in layers if n in captured]
    deltas = torch.autograd.grad(losses.sum(), [captured[n][1] for n in names], allow_unused=True)
    out = {}
    for name, delta in zip(names, deltas, strict=True):
        if delta is None:
            continue
        x = captured[name][0]
        out[name] = torch.einsum("b...o,b...i->boi", delta.reshape(x.shape[0], -1, delta.shape[-1]),
                                 x.reshape(x.shape[0], -1, x.shape[-1]))  # fmt: skip
    return out
