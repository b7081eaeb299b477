"""Per-step keys, AlgoPerf's ``split(fold_in(rng, step), 4)``, derived in blocks outside the timed interval
(runner/loop.py says why): one call per KEY_BLOCK steps instead of several per step."""

import functools

from compat import prng

KEY_BLOCK = 256


class _StepKeys:
    """(data_selection, update, prepare_for_eval, eval) keys of a step, derived KEY_BLOCK steps at a time."""

    def __init__(self):
        self._start, self._keys = 0, []

    def __call__(self, step: int):
        i = step - self._start
        if not 0 <= i < len(self._keys):
            self._start, i = step, 0
            self._keys = self._block(step)
        return self._keys[i]

    def _block(self, start: int) -> list:
        """The keys of steps ``start`` to ``start + KEY_BLOCK - 1``."""
        raise NotImplementedError


class TorchStepKeys(_StepKeys):
    """On AlgoPerf's numpy keys (compat/prng.py). ``fold_in(rng, step)`` is ``[draw(rng), step]``: its first entry
    does not depend on the step, so it is drawn once and each step costs one ``split`` (~9 us)."""

    def __init__(self, rng):
        super().__init__()
        self._folded = prng.fold_in(rng, 0)[0]

    def _block(self, start: int) -> list:
        return [prng.split([self._folded, s], 4) for s in range(start, start + KEY_BLOCK)]


class JaxStepKeys(_StepKeys):
    """On JAX keys (raw uint32, as ``jax.random.PRNGKey`` makes): one jitted call per block, copied to the host at
    once, where ``fold_in``, ``split`` and unpacking per step cost six dispatches (docs/measurements.md, "Runner
    overhead"). A step's keys are the same values as numpy arrays, which every ``jax.random`` function and jitted
    step takes as keys."""

    def __init__(self, rng):
        super().__init__()
        self._rng = rng

    def _block(self, start: int) -> list:
        import numpy as np

        return list(np.asarray(_jax_block()(self._rng, start)))


@functools.cache
def _jax_block():
    import jax
    import jax.numpy as jnp

    def block(rng, start):
        return jax.vmap(lambda step: jax.random.split(jax.random.fold_in(rng, step), 4))(start + jnp.arange(KEY_BLOCK))

    return jax.jit(block)
