"""The variants as torch optimizers: thin presets over ``KronOptimizer``, one class per declared variant
(``precond.registry.SPECS``: the class name, docstring and preset come from there). Each takes the KronConfig fields
its variant honours (``precond.config.HONOURED``) as keywords and refuses any other.

First-moment estimate, with m <- b1 m + (1 - b1) g: every preset but SOAP defaults to nesterov=True, the NAdam
estimate (b1 m + (1 - b1) g) / (1 - b1^t), which is what the AlgoPerf v0.5/v0.6 Shampoo submission feeds its
preconditioner (and precond.NAdamW uses); SOAP defaults to nesterov=False, Adam's m / (1 - b1^t), as SOAP's paper
and reference code (kept in the eigenbasis). Either can be chosen for every preset.
"""

from precond.config import PRESETS
from precond.optimizer import KronOptimizer
from precond.registry import SPECS


def _preset(name: str) -> type[KronOptimizer]:
    spec = SPECS[name]
    attributes = {"PRESET": PRESETS[name], "__doc__": spec.summary, "__module__": __name__}
    return type(spec.optimizer, (KronOptimizer,), attributes)


PRESET_CLASSES = {spec.optimizer: _preset(name) for name, spec in SPECS.items()}
globals().update(PRESET_CLASSES)
__all__ = list(PRESET_CLASSES)
