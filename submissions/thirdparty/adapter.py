"""What the third-party submissions share: a library's optimizer put under kronbench's recipe (``submissions.glue``:
warmup + cosine, label smoothing, dropout, clipping, NAdamW for tables of a million rows) with the library's own
option names declared as hyperparameters, and its routing expressed in the library's per-group settings.

A submission states ``make(groups, hp, **options) -> torch optimizer``: ``groups`` are kronbench's routing as plain
parameter groups, each with a ``precondition`` flag that ``make`` turns into the library's way of leaving a
parameter unpreconditioned (``unpreconditioned_group``). ``library`` imports the library or says in one line how to
get it: the runner reports that ImportError as its usual one-line ``error:`` and exit 2.
"""

import importlib
from collections.abc import Callable
from dataclasses import fields
from types import ModuleType
from typing import Any

import torch

import precond
from common import search_space as ss
from submissions import glue, recipe, routing

# Option values a search-space point may override: the ones a JSON point can hold.
_SCALARS = (bool, int, float, str)


def library(module: str, how_to_get: str) -> ModuleType:
    """``import module``, or an ImportError whose message is the way to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{module} is not importable ({e}); {how_to_get}") from None


def options_of(options: dict, hyperparameters: Any) -> dict:
    """``options`` with the scalar ones a search-space point sets taken from it."""
    return {k: getattr(hyperparameters, k, v) if isinstance(v, _SCALARS) else v for k, v in options.items()}


def unpreconditioned_group(group: dict, **library_settings) -> dict:
    """A routed group as plain parameters; ``library_settings`` apply where it is not preconditioned."""
    out = {"params": [p for _, p in group["params"]], "precondition": group.get("precondition", True)}
    return out if out["precondition"] else {**out, **library_settings}


def optimizer(make: Callable, policy: routing.Policy, **options):
    """An optimizer factory for ``glue.make_submission``: ``make(groups, hp, **options)`` on the parameters
    ``policy`` does not send to NAdamW, with ``options`` overridden by the point's values of the same names."""

    def build(model, param_types, hp: recipe.TrainingHParams, hyperparameters) -> torch.optim.Optimizer:
        groups, adam_params = glue.route_parameters(model, param_types, policy.with_overrides(hyperparameters))
        optimizers = {"kron": make(groups, hp, **options_of(options, hyperparameters))}
        if adam_params:
            optimizers["adam"] = precond.NAdamW(
                adam_params, lr=hp.learning_rate, betas=hp.adam_betas, weight_decay=hp.weight_decay
            )
        return glue.OptimizerSet(optimizers)

    build.options = options
    build.policy = policy
    return build


def hyperparameters(build) -> dict[str, ss.Param]:
    """What a point may set: the recipe's fields, the library options the submission states (by the library's
    names, the library checks their values), and the routing policy."""
    out = ss.declared(recipe.TrainingHParams, "glue")
    assert not {f.name for f in fields(recipe.TrainingHParams)} & set(build.options), "an option shadows the recipe"
    out.update({k: ss.Param(default=v) for k, v in build.options.items() if isinstance(v, _SCALARS)})
    out[routing.POLICY_HYPERPARAMETER] = ss.Param(default=build.policy.precondition_embeddings)
    return out
