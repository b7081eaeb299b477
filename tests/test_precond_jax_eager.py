"""Eager (un-jitted) ``tx.update`` compiles a bounded number of executables (issue 27, item 11).

Before the fix every eager step traced the non-finite guard's ``lax.cond`` with fresh branch closures, so XLA
compiled the whole optimizer step again at each step (~15 s each here); 7 variants x 60 steps in one process with
x64 on ran out of LLVM memory and segfaulted. Compilations are counted with JAX's own monitoring event.
"""

import jax
import jax.monitoring
import jax.numpy as jnp
import pytest

import precond_jax

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_compiles = [0]


def _count(event: str, duration: float, **kwargs) -> None:
    if event == COMPILE_EVENT:
        _compiles[0] += 1


jax.monitoring.register_event_duration_secs_listener(_count)

VARIANTS = ["nadamw", "shampoo", "shampoo2", "kradagrad", "kradagrad_star", "eshampoo", "soap"]
WARM_UP = 2  # the first step compiles the update; the second may retrace once for the state's output types


def compiles_per_step(variant: str, steps: int, dtype) -> list[int]:
    """Backend compilations during each eager ``tx.update`` (refreshes every other step, so both branches run)."""
    shapes = [(8, 12), (8,), (6, 3, 3, 3)]  # the three parameters
    keys = jax.random.split(jax.random.PRNGKey(0), len(shapes) + steps)
    params = [jax.random.normal(k, s, dtype) for k, s in zip(keys, shapes, strict=False)]
    grads = [[jax.random.normal(k, p.shape, dtype) for p in params] for k in keys[len(shapes) :]]
    options = {} if variant == "nadamw" else {"precondition_frequency": 2, "start_preconditioning_step": 1}
    tx = getattr(precond_jax, variant)(1e-2, **options)
    state = tx.init(params)
    jax.block_until_ready((grads, state))  # data and state made before counting
    out = []
    for g in grads:
        before = _compiles[0]
        updates, state = tx.update(g, state, params)
        jax.block_until_ready(updates)
        out.append(_compiles[0] - before)
        if len(out) > WARM_UP and out[-1]:
            break  # recompiling after warm-up: the defect; no need to wait for more compilations
    return out


@pytest.mark.integration
def test_eager_shampoo_stops_compiling_after_warm_up():
    counts = compiles_per_step("shampoo", 20, jnp.float32)
    assert counts[0] >= 1  # the probe counts: the first step did compile
    assert sum(counts[WARM_UP:]) == 0 and len(counts) == 20, counts


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_in_fp64_stops_compiling_after_warm_up(variant):
    with jax.enable_x64(True):
        counts = compiles_per_step(variant, 20, jnp.float64)
    assert sum(counts[WARM_UP:]) == 0 and len(counts) == 20, counts
