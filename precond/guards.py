"""Input checks the optimizers share: hyperparameters and parameters, checked once at construction, and the
per-step non-finite gradient check (one sum per gradient and one host sync per step).

Every failure is one line naming the optimizer, the problem and the fix.
"""

import math
from collections import defaultdict
from collections.abc import Callable
from numbers import Real

# torch is imported inside the two functions that need it: precond.config (shared with the torch-free JAX core,
# precond_jax) uses the number checks here.

NONFINITE_POLICIES = ("raise", "skip")


def _is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def check_number(owner: str, name: str, value, low: float = 0.0, strict: bool = False) -> None:
    """A finite real number >= low (> low when ``strict``)."""
    ok = _is_real(value) and math.isfinite(value) and (value > low if strict else value >= low)
    if not ok:
        raise ValueError(f"{owner}: {name}={value!r} must be a finite number {'>' if strict else '>='} {low}")


def check_int(owner: str, name: str, value, low: int = 1) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= low):
        raise ValueError(f"{owner}: {name}={value!r} must be an integer >= {low}")


def check_betas(owner: str, betas, beta2_may_be_one: bool = False) -> None:
    """(beta1, beta2) with 0 <= beta1 < 1 and 0 <= beta2 < 1 (or <= 1 where 1 means plain sums)."""
    ok = isinstance(betas, (tuple, list)) and len(betas) == 2 and all(_is_real(b) for b in betas)
    if ok:
        b1, b2 = betas
        ok = 0.0 <= b1 < 1.0 and (0.0 <= b2 <= 1.0 if beta2_may_be_one else 0.0 <= b2 < 1.0)
    if not ok:
        b2_range = "[0, 1] (1: plain sums)" if beta2_may_be_one else "[0, 1)"
        raise ValueError(f"{owner}: betas={betas!r} must be two numbers, beta1 in [0, 1) and beta2 in {b2_range}")


def check_nonfinite_policy(owner: str, policy) -> None:
    if policy not in NONFINITE_POLICIES:
        raise ValueError(f"{owner}: nonfinite={policy!r} must be one of {NONFINITE_POLICIES}")


def check_groups(owner: str, param_groups: list[dict], allowed: tuple[str, ...]) -> None:
    """Parameter groups set only the keys ``owner`` takes per group, with the constructor's rules for each."""
    for gi, group in enumerate(param_groups):
        where = f"param_groups[{gi}]"
        unknown = sorted(set(group) - set(allowed) - {"params", "param_names"})
        if unknown:
            raise ValueError(
                f"{owner}: {where} sets {', '.join(unknown)}, which {owner} does not take per group; it takes "
                f"{', '.join(allowed)}"
            )
        for name in ("lr", "weight_decay", "eps"):
            if name in group:
                check_number(owner, f"{where}['{name}']", group[name])
        if "betas" in group:
            check_betas(f"{owner} {where}", group["betas"])


def _label(group_index: int, group: dict, index: int, p) -> str:
    """A parameter's name when the optimizer got named parameters, then its place and shape."""
    names = group.get("param_names")
    name = f"{names[index]!r} " if names else ""
    return f"{name}(param_groups[{group_index}]['params'][{index}], shape {tuple(p.shape)})"


def check_params(owner: str, param_groups: list[dict]) -> None:
    """Dense floating-point tensors, each listed once across all groups."""
    import torch

    seen: dict[int, str] = {}
    for gi, group in enumerate(param_groups):
        for i, p in enumerate(group["params"]):
            label = _label(gi, group, i, p)
            if p.layout != torch.strided:
                raise ValueError(f"{owner}: parameter {label} is sparse ({p.layout}); pass dense parameters")
            if not p.is_floating_point():
                raise ValueError(
                    f"{owner}: parameter {label} has dtype {p.dtype}; only real floating-point parameters can be "
                    f"optimized (convert it, or leave it out of the optimizer)"
                )
            if id(p) in seen:
                raise ValueError(f"{owner}: parameter {label} is listed twice (also as {seen[id(p)]}); pass it once")
            seen[id(p)] = label


def sums_finite(tensors) -> bool:
    """Whether every tensor's sum is finite, with one host sync per device. NaN and infinities propagate through a
    sum, so True proves every value finite; False means a non-finite value or a sum that overflowed, which the
    caller checks exactly (``nonfinite_step`` says why a sum: the cheapest full read)."""
    import torch

    by_device = defaultdict(list)
    for t in tensors:
        by_device[t.device].append(t.sum())
    return all(bool(torch.stack(sums).isfinite().all()) for sums in by_device.values())


def nonfinite_step(owner: str, param_groups: list[dict], step: Callable[[], int], policy: str) -> bool:
    """Whether this step must be skipped because a gradient holds a NaN or infinity (policy "skip"); under
    "raise" the error names the first such parameter and the step (``step()``, evaluated only then) at once.

    The fast path is one sum per gradient and one host sync: NaN and infinities propagate through a sum, and a
    sum is the cheapest full read (about 2% of an AdamW step on the 784-1024-1024-10 MLP, against 6% for the
    2-norm and 110% for torch's max-abs norm). Only a non-finite sum (or an overflowing one) is checked exactly.
    """
    import torch

    entries = [(gi, group, i, p) for gi, group in enumerate(param_groups) for i, p in enumerate(group["params"])]
    entries = [e for e in entries if e[3].grad is not None]
    if sums_finite([e[3].grad for e in entries]):
        return False
    bad = [e for e in entries if not bool(torch.isfinite(e[3].grad).all())]
    if not bad:  # finite gradients whose sum overflowed
        return False
    if policy == "skip":
        return True
    raise FloatingPointError(
        f"{owner}: non-finite gradient in parameter {_label(*bad[0])} at step {step()} ({len(bad)} parameter(s) "
        f"affected); lower the learning rate, clip gradients, or pass nonfinite='skip' to skip such steps"
    )
