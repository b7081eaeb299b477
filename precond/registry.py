"""Every Kronecker variant declared once, framework-free: its name, its torch preset's name, the hook class that
implements it (same name in ``precond.preconditioners`` and ``precond_jax.variants``), its preset, the options it
honours, its traits, its state keys, and the counters vocabulary of both engines.

Everything that lists variants derives from ``SPECS``: ``precond.config`` (VARIANTS, PRESETS, HONOURED), the torch
presets (``precond.presets``), ``precond_jax``'s preset functions, the submissions, the tests and benchmarks;
``tests/test_variant_registry.py`` fails, naming what is missing, when a declared variant lacks an implementation,
a preset, a submission folder or a docs row. Adding a variant: docs/contributing.md.

Imports neither torch nor JAX, so both cores share it.
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class VariantSpec:
    """One variant. Traits (read by both engines):

    grafted: the engine rescales each block's direction to the grafting method's norm.
    owns_first_moment: the variant keeps its own first moment (SOAP's, in the eigenbasis).
    ready_before_refresh: the direction is valid before the first refresh (EShampoo, SOAP).
    cubic_per_step: accumulating costs d^3 per factor every step (KrAD's inverse updates; sharding weighs it).
    state_keys: the keys of the hooks' ``init_state`` (both cores, same keys).
    statistics: the state key of the factor statistics checked for finiteness before a refresh.
    """

    name: str  # the preset's name: precond_jax.<name>, submissions/<name>/, PRESETS[name]
    optimizer: str  # the torch preset class: precond.<optimizer>
    hooks: str  # the hook class in precond.preconditioners and precond_jax.variants
    summary: str  # the torch preset's docstring
    preset: dict  # the variant's defaults on top of KronConfig's
    honours: frozenset = frozenset()  # options beyond COMMON_OPTIONS
    grafted: bool = True
    owns_first_moment: bool = False
    ready_before_refresh: bool = False
    cubic_per_step: bool = False
    state_keys: tuple[str, ...] = ("factors", "roots")
    statistics: str = "factors"


# Options every variant honours: the engine's (momentum, the diagonal method of 1-D parameters, scheduling,
# blocking, failure handling) and the factors' dtype.
COMMON_OPTIONS = frozenset(
    {
        "betas",
        "eps",
        "graft_eps",
        "precondition_frequency",
        "statistics_compute_steps",
        "start_preconditioning_step",
        "max_preconditioner_dim",
        "diagonal",
        "nesterov",
        "factor_dtype",
        "max_consecutive_failures",
        "nonfinite",
    }
)
_EIGENBASIS_STATE = ("factors", "bases", "second_moment", "refresh_counts")
# KrAD variants default to eps = 1e-4: their inverse factors start at I / eps, and with eps = 1e-8 the fp32 product
# X A X overflows.
_KRAD = dict(grafting=None, betas=(0.9, 1.0), diagonal="adagrad", eps=1e-4)

SPECS: dict[str, VariantSpec] = {
    spec.name: spec
    for spec in (
        VariantSpec(
            "shampoo",
            "Shampoo",
            "Shampoo",
            "Shampoo with Adam grafting per block, Nesterov first moment, stale roots (the AlgoPerf v0.5 recipe).",
            {"grafting": "adam"},
            frozenset({"grafting", "exponent_override", "root_method", "statistics_precision"}),
        ),
        VariantSpec(
            "shampoo2",
            "Shampoo2",
            "Shampoo",
            "Shampoo^2 (Morwani et al. 2024): L^(-1/2) G R^(-1/2) on trace-scaled factors, Adam-grafted.\n\n"
            "eps defaults to 1e-4: the -1/2 exponent amplifies directions the gradients have not visited by "
            "eps^(-1/2), and with 1e-8 it lost to SGD on the ill-conditioned quadratic of the tests (0.58 vs 0.32; "
            "5.7e-4 with 1e-4).",
            {"grafting": "adam", "eps": 1e-4},
            frozenset(
                {"grafting", "exponent_override", "root_method", "trace_scaling", "online", "statistics_precision"}
            ),
        ),
        VariantSpec(
            "kradagrad",
            "KrADagrad",
            "KrADagrad",
            "KrADagrad (Mei et al. 2023): one inverse factor per step, X^(1/2) roots, no grafting by default.\n\n"
            'Ungrafted its step size is set by eps alone; the authors\' code grafts per layer, and grafting="adam" '
            "with betas=(0.9, 0.999) made it 1000x better than SGD on the tests' quadratic where ungrafted it did "
            "not beat SGD.",
            _KRAD,
            frozenset({"grafting", "damping"}),
            cubic_per_step=True,
            state_keys=("inverse_factors", "roots", "half_roots"),
            statistics="inverse_factors",
        ),
        VariantSpec(
            "kradagrad_star",
            "KrADagradStar",
            "KrADagradStar",
            "KrADagrad* (Mei et al. 2023): inverse factors updated every step without inversion; X^(1/4) roots.",
            _KRAD,
            frozenset(),  # ungrafted: its direction keeps the first moment's norm per block
            grafted=False,
            cubic_per_step=True,
            state_keys=("inverse_factors", "roots"),
            statistics="inverse_factors",
        ),
        VariantSpec(
            "eshampoo",
            "EShampoo",
            "EShampoo",
            "Eigenvalue-corrected Shampoo (Eschenhagen et al. 2025) with the adaptive refresh criterion; at a "
            "refresh the second moment stays in place by position, as Meta's Distributed Shampoo (the paper's "
            "implementation) does.",
            {
                "grafting": None,
                "precondition_frequency": 50,
                "refresh_tau": 0.1,
                "second_moment_at_refresh": "position",  # the seed paper's implementation (Meta's)
            },
            frozenset(
                {"refresh_tau", "basis_method", "max_qr_iterations", "second_moment_at_refresh", "statistics_precision"}
            ),
            grafted=False,
            ready_before_refresh=True,
            state_keys=_EIGENBASIS_STATE,
        ),
        VariantSpec(
            "soap",
            "SOAP",
            "SOAP",
            "SOAP (Vyas et al. 2024): EShampoo with the first moment in the eigenbasis and QR refreshes every 10 "
            "steps; the second moment follows the basis columns at a refresh, as SOAP's reference code re-sorts it.",
            {"grafting": None, "precondition_frequency": 10, "nesterov": False},  # second moment: "follow"
            frozenset({"refresh_tau", "second_moment_at_refresh", "statistics_precision"}),
            grafted=False,
            owns_first_moment=True,
            ready_before_refresh=True,
            state_keys=(*_EIGENBASIS_STATE, "rotated_first_moment", "refreshed"),
        ),
    )
}

VARIANTS = tuple(SPECS)
# Every optimizer both cores provide (the variants and the NAdamW baseline), each a submission folder.
OPTIMIZERS = ("nadamw", *VARIANTS)
TORCH_NAMES = {"nadamw": "NAdamW", **{name: spec.optimizer for name, spec in SPECS.items()}}

# The counters vocabulary. A variant's refresh adds to REFRESH_COUNTERS; both engines report COUNTERS. The JAX
# engine cannot raise inside jit, so it also counts TRACED_ERRORS (``precond_jax.check`` raises them on the host);
# its nonfinite_skips live in the skip wrapper's state (``precond_jax.counters`` adds them).
REFRESH_COUNTERS = ("refreshes", "skipped", "fp64_retries")
COUNTERS = ("refreshes", "skipped", "failures", "fallbacks", "fp64_retries", "nonfinite_skips")
TRACED_ERRORS = ("nonfinite_factors", "exhausted")  # exhausted: max_consecutive_failures-th failure in a row


# The framework-free halves of the hooks, used by both cores.


def shampoo_exponent(cfg, order: int) -> float:
    """Shampoo's inverse-root exponent for an order-``order`` block: 1/(2k), Shampoo2's 1/k, or the override."""
    if cfg.exponent_override is not None:
        return cfg.exponent_override
    return 1.0 / order if cfg.variant == "shampoo2" else 1.0 / (2 * order)


def kradagrad_factors(dims: tuple[int, ...], square_step: bool) -> list[int]:
    """KrADagrad's factors updated this step: the largest dim's, or on perfect-square steps the others'."""
    largest = max(range(len(dims)), key=lambda i: dims[i])
    if square_step:
        return [i for i in range(len(dims)) if i != largest] or [largest]
    return [largest]


def kradagrad_damping(cfg) -> float:
    """X <- X - damping X^2 each update; None means eps**2."""
    return cfg.eps**2 if cfg.damping is None else cfg.damping


def inverse_decay_scale(b2: float) -> float:
    """The EMA L <- b2 L + (1 - b2) A in inverse form is X <- X / b2 (when b2 < 1), then the rank update with
    sqrt(1 - b2) u: this returns that scale for u."""
    return math.sqrt(1 - b2) if b2 < 1.0 else 1.0


def is_square(step: int) -> bool:
    return math.isqrt(step) ** 2 == step


class VariantHooks:
    """The framework-free half of every variant's hooks in both cores (``precond.preconditioners.Variant``,
    ``precond_jax.variants.Variant``): the config and the declared traits, which the engines read."""

    def __init__(self, cfg):
        self.cfg, self.spec = cfg, SPECS[cfg.variant]

    grafted = property(lambda self: self.spec.grafted)
    owns_first_moment = property(lambda self: self.spec.owns_first_moment)
    ready_before_refresh = property(lambda self: self.spec.ready_before_refresh)
    cubic_per_step = property(lambda self: self.spec.cubic_per_step)

    def statistics(self, state: dict) -> list:
        """The factor statistics an engine checks for finiteness before a refresh."""
        return list(state[self.spec.statistics])
