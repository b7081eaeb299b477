"""kronbench's optimizer core in JAX: NAdamW and the Kronecker-factored family as optax transformations.

    opt = precond_jax.shampoo(1e-3, weight_decay=0.01, precondition_frequency=10)   # any KronConfig option
    state = opt.init(params); updates, state = opt.update(grads, state, params)
    precond_jax.check(state)   # raises the torch core's errors (non-finite factors, repeated failures)

Same option names and defaults as the torch presets (``precond.config.PRESETS``, shared), the same blocking
(``precond.blocking``, shared) and the same formulas; the parity tests hold it to the torch core at fp64
rounding. Imports neither torch nor the harness. Runs on every jax >= 0.7 and optax >= 0.2.2, AlgoPerf's own pins
(pyproject's ``jax`` extra; ``make test-algoperf-env`` runs the parity tests under them).
"""

import jax
import optax

from precond.config import PRESETS, KronConfig
from precond.guards import check_betas, check_nonfinite_policy, check_number
from precond.registry import VARIANTS
from precond_jax.engine import COUNTERS, ScaleByKronState, scale_by_kron
from precond_jax.guards import NonfiniteState, frozen_stay, skip_nonfinite
from precond_jax.nadamw import ScaleByNadamState, scale_by_nadam

__all__ = [
    "KronConfig",
    "COUNTERS",
    "ScaleByKronState",
    "ScaleByNadamState",
    "NonfiniteState",
    "scale_by_kron",
    "scale_by_nadam",
    "kron",
    "nadamw",
    *VARIANTS,
    "counters",
    "check",
]


def _check_hyperparameters(owner: str, learning_rate, weight_decay) -> None:
    for name, value in (("learning_rate", learning_rate), ("weight_decay", weight_decay)):
        if not callable(value):  # a schedule is optax's to check
            check_number(owner, name, value)


def _with_decay_and_lr(name, direction, learning_rate, weight_decay, weight_decay_mask, nonfinite):
    """direction, then + wd p (decoupled), then x (-lr): p <- p - lr (U + wd p), the torch core's update; steps
    with a non-finite gradient change nothing; frozen parameters (gradient None) do not move."""
    _check_hyperparameters(name, learning_rate, weight_decay)
    chain = optax.chain(
        direction,
        optax.add_decayed_weights(weight_decay, weight_decay_mask),
        optax.scale_by_learning_rate(learning_rate),
        frozen_stay(),
    )
    return skip_nonfinite(chain, nonfinite)


def kron(
    variant: str, learning_rate=1e-3, weight_decay=0.0, *, weight_decay_mask=None, precondition=None, **options
) -> optax.GradientTransformation:
    """The engine with ``variant``'s preset and ``options`` (any KronConfig field) on top."""
    owner = f"precond_jax.{variant}"
    if variant not in PRESETS:
        raise ValueError(f"{owner}: unknown variant; use one of {', '.join(PRESETS)}")
    config = KronConfig.build(owner, PRESETS[variant], options)
    direction = scale_by_kron(config, precondition)
    return _with_decay_and_lr(owner, direction, learning_rate, weight_decay, weight_decay_mask, config.nonfinite)


def nadamw(
    learning_rate=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, nonfinite="raise", *, weight_decay_mask=None
) -> optax.GradientTransformation:
    """NAdamW as ``precond.NAdamW`` (AlgoPerf's: (b1 m + (1 - b1) g) / (1 - b1^t), not optax.nadamw's
    Dozat form, which bias-corrects the momentum term with 1 - b1^(t+1))."""
    owner = "precond_jax.nadamw"
    check_betas(owner, betas)
    check_number(owner, "eps", eps)
    check_nonfinite_policy(owner, nonfinite)
    direction = scale_by_nadam(betas, eps)
    return _with_decay_and_lr(owner, direction, learning_rate, weight_decay, weight_decay_mask, nonfinite)


def _preset(variant: str):
    def make(learning_rate=1e-3, weight_decay=0.0, *, weight_decay_mask=None, precondition=None, **options):
        return kron(
            variant,
            learning_rate,
            weight_decay,
            weight_decay_mask=weight_decay_mask,
            precondition=precondition,
            **options,
        )

    make.__name__ = make.__qualname__ = variant
    make.__doc__ = f"The {variant} preset ({PRESETS[variant]}) as an optax transformation; options as KronConfig."
    return make


# precond_jax.shampoo, precond_jax.soap, ...: one function per declared variant (precond.registry)
globals().update({variant: _preset(variant) for variant in VARIANTS})


def _find(opt_state, kind) -> list:
    """Every ``kind`` state inside an optax state (chains, masks and wrappers included)."""
    found = []

    def visit(node):
        if isinstance(node, kind):
            found.append(node)
        if isinstance(node, (tuple, list)):
            for child in node:
                visit(child)
        elif isinstance(node, dict):
            for child in node.values():
                visit(child)

    visit(opt_state)
    return found


def counters(opt_state) -> dict[str, int]:
    """The engine's counters (summed over every transformation in ``opt_state``) and ``nonfinite_skips``."""
    totals = dict.fromkeys(COUNTERS, 0)
    for state in _find(opt_state, ScaleByKronState):
        for name in COUNTERS:
            totals[name] += int(state.counters[name])
    totals["nonfinite_skips"] = sum(int(s.skips) for s in _find(opt_state, NonfiniteState))
    return totals


def check(opt_state, params=None) -> None:
    """Raise on the host what the torch core raises inside step(): FloatingPointError for a non-finite gradient
    (under nonfinite="raise"; ``params`` gives the parameter's name) or non-finite Kronecker factors,
    RuntimeError when refreshes failed max_consecutive_failures times in a row."""
    for state in _find(opt_state, NonfiniteState):
        if bool(state.raises) and int(state.skips):
            leaf = int(state.first_leaf)
            where = f"parameter #{leaf}"
            if params is not None:
                path, value = jax.tree_util.tree_flatten_with_path(params)[0][leaf]
                where = f"parameter {jax.tree_util.keystr(path)} (shape {tuple(value.shape)})"
            raise FloatingPointError(
                f"non-finite gradient in {where} at step {int(state.first_step)} (the step was not applied); lower "
                f"the learning rate, clip gradients, or pass nonfinite='skip' to skip such steps"
            )
    for state in _find(opt_state, ScaleByKronState):
        step = int(state.count)
        if int(state.counters["nonfinite_factors"]):
            raise FloatingPointError(
                f"non-finite values in the Kronecker factors by step {step}; lower the learning rate, clip "
                f"gradients or start preconditioning later (start_preconditioning_step)"
            )
        if int(state.counters["exhausted"]):
            raise RuntimeError(
                f"refreshes failed max_consecutive_failures times in a row by step {step}; try "
                f"factor_dtype='float64' (with jax_enable_x64), a larger eps, or a lower learning rate"
            )
