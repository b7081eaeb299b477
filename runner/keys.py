"""Per-step keys, AlgoPerf's ``split(fold_in(rng, step), 4)``, derived in blocks outside the timed interval
(runner/loop.py says why): one call per KEY_BLOCK steps instead of several per step."""

import functools

from compat import prng

KEY_BLOCK = 256
_MAX = 2**31 - 1  # AlgoPerf numpy keys: uint32 draws in [0, 2**31 - 1)


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
    does not depend on the step, so it is drawn once. Each step's ``split(., 4)`` seeds MT19937 as ``RandomState``
    does and takes eight raw outputs masked to 31 bits, which is what ``randint(0, 2**31 - 1, uint32)`` returns
    unless an output is 2**31 - 1 (randint redraws it; that step then takes ``prng.split`` itself, about once in
    2**28 steps). A block costs ~5x less than ``prng.split`` per step, whose ``randint`` and per-step arrays
    dominate once the state is seeded; its keys are views of one array."""

    def __init__(self, rng):
        super().__init__()
        import numpy as np

        self._folded = int(prng.fold_in(rng, 0)[0])
        self._mt = np.random.MT19937()
        self._fast = hasattr(self._mt, "_legacy_seeding")  # numpy's RandomState.seed calls it; private API

    def _block(self, start: int) -> list:
        import numpy as np

        if not self._fast:
            return [prng.split([self._folded, s], 4) for s in range(start, start + KEY_BLOCK)]
        raw = np.empty((KEY_BLOCK, 8), np.uint64)
        seed = np.array([self._folded % _MAX, 0], dtype=np.int64)
        for i in range(KEY_BLOCK):
            seed[1] = (start + i) % _MAX
            self._mt._legacy_seeding(seed)
            raw[i] = self._mt.random_raw(8)
        raw &= _MAX
        keys = list(raw.astype(np.uint32).reshape(KEY_BLOCK, 4, 2))
        for i in np.flatnonzero((raw == _MAX).any(axis=1)):  # randint would redraw there
            keys[i] = prng.split([self._folded, start + int(i)], 4)
        return keys


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
