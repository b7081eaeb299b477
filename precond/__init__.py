"""kronbench's optimizer core (torch): NAdamW and the Kronecker-factored family on one engine.

The torch classes are imported on first use, so that ``precond.config``, ``precond.registry``, ``precond.blocking``
and ``precond.tensor_ops`` (pure Python, shared with the JAX core ``precond_jax``) can be imported without torch.
"""

import importlib

from precond.config import KronConfig
from precond.registry import SPECS

_TORCH_NAMES = {
    "NAdamW": ".nadamw",
    "KronOptimizer": ".optimizer",
    **dict.fromkeys((spec.optimizer for spec in SPECS.values()), ".presets"),
}

__all__ = ["KronConfig", *_TORCH_NAMES]


def __getattr__(name: str):
    if name in _TORCH_NAMES:
        # relative, so the package still works when vendored under another name (submissions.export)
        return getattr(importlib.import_module(_TORCH_NAMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
