"""The variants as torch optimizers: thin presets over ``KronOptimizer``. Each takes the KronConfig fields its
variant honours (``precond.config.HONOURED``) as keywords and refuses any other.

The presets' option values live in ``precond.config.PRESETS`` (shared with the JAX core ``precond_jax``).

First-moment estimate, with m <- b1 m + (1 - b1) g: every preset but SOAP defaults to nesterov=True, the NAdam
estimate (b1 m + (1 - b1) g) / (1 - b1^t), which is what the AlgoPerf v0.5/v0.6 Shampoo submission feeds its
preconditioner (and precond.NAdamW uses); SOAP defaults to nesterov=False, Adam's m / (1 - b1^t), as SOAP's paper
and reference code (kept in the eigenbasis). Either can be chosen for every preset.
"""

from precond.config import PRESETS
from precond.optimizer import KronOptimizer


class Shampoo(KronOptimizer):
    """Shampoo with Adam grafting per block, Nesterov first moment, stale roots (the AlgoPerf v0.5 recipe)."""

    PRESET = PRESETS["shampoo"]


class Shampoo2(KronOptimizer):
    """Shampoo^2 (Morwani et al. 2024): L^(-1/2) G R^(-1/2) on trace-scaled factors, Adam-grafted.

    eps defaults to 1e-4: the -1/2 exponent amplifies directions the gradients have not visited by eps^(-1/2),
    and with 1e-8 it lost to SGD on the ill-conditioned quadratic of the tests (0.58 vs 0.32; 5.7e-4 with 1e-4).
    """

    PRESET = PRESETS["shampoo2"]


class KrADagradStar(KronOptimizer):
    """KrADagrad* (Mei et al. 2023): inverse factors updated every step without inversion; X^(1/4) roots."""

    PRESET = PRESETS["kradagrad_star"]


class KrADagrad(KronOptimizer):
    """KrADagrad (Mei et al. 2023): one inverse factor per step, X^(1/2) roots, no grafting by default.

    Ungrafted its step size is set by eps alone; the authors' code grafts per layer, and grafting="adam" with
    betas=(0.9, 0.999) made it 1000x better than SGD on the tests' quadratic where ungrafted it did not beat SGD.
    """

    PRESET = PRESETS["kradagrad"]


class EShampoo(KronOptimizer):
    """Eigenvalue-corrected Shampoo (Eschenhagen et al. 2025) with the adaptive refresh criterion; at a refresh the
    second moment stays in place by position, as Meta's Distributed Shampoo (the paper's implementation) does."""

    PRESET = PRESETS["eshampoo"]


class SOAP(KronOptimizer):
    """SOAP (Vyas et al. 2024): EShampoo with the first moment in the eigenbasis and QR refreshes every 10 steps; the
    second moment follows the basis columns at a refresh, as SOAP's reference code re-sorts it."""

    PRESET = PRESETS["soap"]
