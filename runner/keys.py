"""Per-step keys of a PyTorch trial, derived in blocks outside the timed interval (runner/loop.py says why)."""

from compat import prng

KEY_BLOCK = 256


class StepKeys:
    """(data_selection, update, prepare_for_eval, eval) keys of a step, derived KEY_BLOCK steps at a time.

    ``fold_in(rng, step)`` is ``[draw(rng), step]``: its first entry does not depend on the step, so it is drawn
    once and each step costs one ``split``.
    """

    def __init__(self, rng):
        self._folded, self._start, self._keys = prng.fold_in(rng, 0)[0], 0, []

    def __call__(self, step: int):
        i = step - self._start
        if not 0 <= i < len(self._keys):
            self._start, i = step, 0
            self._keys = [prng.split([self._folded, s], 4) for s in range(step, step + KEY_BLOCK)]
        return self._keys[i]
