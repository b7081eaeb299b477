"""When a metric has reached its target: the one definition, in AlgoPerf's two variants.

AlgoPerf's workloads stop training on a strict comparison (``accuracy > target``, ``loss < target``: its
``has_reached_*_target``), while its scorer counts an eval as reaching on an inclusive one (``>=`` / ``<=``).
kronbench keeps both, exactly: ``inclusive=False`` is the runner's stopping rule (through the workloads),
``inclusive=True`` is scoring's. The scorer also refuses a non-finite value (NaN, the inf of a diverged loss);
the strict rule needs no such guard for NaN (it fails any comparison) and the runner stops a trial whose loss
is not finite anyway.
"""

import numpy as np


def reached(value, target: float, lower_is_better: bool, *, inclusive: bool):
    """Whether ``value`` (a float or an array of them, elementwise) reaches ``target``."""
    with np.errstate(invalid="ignore"):
        if inclusive:
            hit = value <= target if lower_is_better else value >= target
            return np.isfinite(value) & hit
        return value < target if lower_is_better else value > target
