"""The one configuration of the Kronecker engine; presets (Shampoo, SOAP, ...) are values of it.

Each variant declares the options it honours (``precond.registry``, gathered in ``HONOURED``); ``KronConfig.build``
refuses any other option a user passes, so that no option is silently ignored.
"""

import math
from dataclasses import dataclass

from precond import guards, registry

METHODS = ("adam", "adagrad", "rmsprop", "sgd")  # grafting / diagonal methods (precond.grafting)

# Derived from the variants' declarations (precond.registry), shared with the JAX core: each variant's defaults on
# top of KronConfig's (the presets) and the options it honours.
VARIANTS = registry.VARIANTS
PRESETS = {name: {"variant": name, **spec.preset} for name, spec in registry.SPECS.items()}
HONOURED = {name: registry.COMMON_OPTIONS | spec.honours for name, spec in registry.SPECS.items()}
SECOND_MOMENT_RULES = ("position", "follow")  # KronConfig.second_moment_at_refresh
STATISTICS_PRECISIONS = ("highest", "tf32", "bfloat16")  # KronConfig.statistics_precision


@dataclass(frozen=True)
class KronConfig:
    """Options shared by every variant, then variant-specific ones.

    betas: (beta1 for the first moment, beta2 for factor statistics and second moments; 1.0 = plain sums).
    eps: the preconditioner's epsilon (root regulariser; KrAD's X starts at I/eps; EShampoo/SOAP's denominator).
    graft_eps: epsilon of the grafting / diagonal method.
    precondition_frequency: steps between refreshes (roots or eigenbases), from start_preconditioning_step
        (None: equal to precondition_frequency; math.inf: never precondition).
    statistics_compute_steps: the Kronecker factor statistics are accumulated every k-th step only (Google's
        distributed_shampoo option of this name): steps 1, 1 + k, 1 + 2k, ..., each with the same beta2, and
        factor bias corrections use 1 - beta2^n for the n accumulations so far. Everything else (first moment,
        grafting, EShampoo/SOAP's second moment and rotated first moment) sees every step. 1 (default): every step.
    max_preconditioner_dim: trailing dims are merged while their product stays <= it, larger ones split into
        blocks of it.
    grafting: "adam" | "adagrad" | "rmsprop" | "sgd" | None. Grafted variants take each block's direction norm
        from this method, and step with it alone before their first refresh.
    diagonal: the method for 1-D parameters (and before the first refresh) when grafting is None.
    nesterov: use b1 m + (1 - b1) g as the first-moment estimate (NAdam style), else m; both bias-corrected.
    exponent_override: inverse-root exponent (Shampoo: 1/(2k), Shampoo2: 1/k for order-k blocks).
    factor_dtype: "float32" | "float64" for factor statistics and their roots.
    statistics_precision (shampoo, shampoo2, eshampoo, soap): the inputs of the factor-statistics products
        G_(i) G_(i)^T. "highest" (default): factor_dtype's own. "tf32" | "bfloat16": each input rounded to that
        format (TF32: 10 mantissa bits, to nearest with ties away, as PTX's cvt.rna.tf32.f32; bfloat16: 7 bits,
        to nearest even), the products summed in fp32 or wider: a relative error per input of at most 2^-11
        (tf32) or 2^-8 (bfloat16). On a CUDA device with fp32 factors the tensor cores compute it (torch:
        fp32_precision "tf32" or a bf16 bmm with fp32 output; JAX: the TF32_TF32_F32 or BF16_BF16_F32 dot
        algorithm); elsewhere it is emulated (inputs rounded, then multiplied exactly): the same numerics up to
        the order of the sums, and no faster. The tensor cores may truncate rather than round TF32 inputs
        (then up to 2^-10).
    root_method: "eigh" (fp64 retry) | "newton" (coupled Newton, integer roots).
    max_consecutive_failures: failed refreshes of one block group in a row before an error is raised.
    nonfinite: a NaN or infinite gradient "raise"s at once (naming the parameter and step) or "skip"s the step
        (no parameter or state changes; counted in ``counters["nonfinite_skips"]``).
    trace_scaling (shampoo2): factors scaled by 1/sqrt(trace) so steps are invariant to gradient scale.
    online (shampoo2): power-iteration statistics L += G R^ G^T with the other factor's normalised estimate.
    refresh_tau (eshampoo, soap): skip a block factor's refresh while ||B - diag B|| / ||B|| <= tau, B = Q^T L Q
        (SOAP: after its first, eigh, refresh).
    basis_method (eshampoo): "eigh" | "qr" (warm-started QR iteration to tau); max_qr_iterations bounds it.
    damping (kradagrad): X <- X - damping X^2 each update; None means eps**2.
    second_moment_at_refresh (eshampoo, soap): what a basis refresh does to the second moment D (see
        ``RefreshRule``). "position": Meta's Distributed Shampoo (the EShampoo preset): only the eigenvectors are
        replaced, in ascending eigenvalue order, D stays in place by index, and the basis is computed from
        L / bc + eps I. "follow" (the SOAP preset, kronbench's own rule): D moves with the basis columns it
        matches, bases in descending order, computed from L.
    """

    variant: str
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    graft_eps: float = 1e-8
    precondition_frequency: int = 100
    statistics_compute_steps: int = 1
    start_preconditioning_step: int | float | None = None
    max_preconditioner_dim: int = 1024
    grafting: str | None = "adam"
    diagonal: str = "adam"
    nesterov: bool = True
    exponent_override: float | None = None
    factor_dtype: str = "float32"
    root_method: str = "eigh"
    max_consecutive_failures: int = 5
    nonfinite: str = "raise"
    trace_scaling: bool = True
    online: bool = False
    refresh_tau: float = 0.0
    basis_method: str = "eigh"
    max_qr_iterations: int = 10
    damping: float | None = None
    second_moment_at_refresh: str = "follow"
    statistics_precision: str = "highest"

    @classmethod
    def build(cls, owner: str, preset: dict, options: dict) -> "KronConfig":
        """The preset's values overridden by ``options``; an option ``owner``'s variant does not honour is refused."""
        if "variant" in preset and "variant" in options:
            raise ValueError(f"{owner}: variant is fixed by the preset; use KronOptimizer(variant=...) instead")
        variant = {**preset, **options}.get("variant")
        if variant not in VARIANTS:
            raise ValueError(f"{owner}: variant={variant!r} must be one of {VARIANTS}")
        honoured = HONOURED[variant] | ({"variant"} if "variant" not in preset else set())
        refused = sorted(set(options) - honoured)
        if refused:
            raise ValueError(
                f"{owner} ({variant}) does not use {', '.join(refused)}; it accepts {', '.join(sorted(honoured))}"
            )
        cfg = cls(**{**preset, **options})
        if "diagonal" in options and cfg.grafting is not None:
            raise ValueError(
                f"{owner}: diagonal applies only with grafting=None; 1-D parameters use the grafting method "
                f"({cfg.grafting!r})"
            )
        if "max_qr_iterations" in options and cfg.basis_method != "qr":
            raise ValueError(f"{owner}: max_qr_iterations applies only with basis_method='qr'")
        return cfg

    def __post_init__(self):
        owner = f"{self.variant}"
        if self.variant not in VARIANTS:
            raise ValueError(f"variant={self.variant!r} must be one of {VARIANTS}")
        guards.check_betas(owner, self.betas, beta2_may_be_one=True)
        guards.check_number(owner, "eps", self.eps, strict=True)
        guards.check_number(owner, "graft_eps", self.graft_eps)
        for name in (
            "precondition_frequency",
            "statistics_compute_steps",
            "max_preconditioner_dim",
            "max_consecutive_failures",
        ):
            guards.check_int(owner, name, getattr(self, name))
        guards.check_int(owner, "max_qr_iterations", self.max_qr_iterations)
        start = self.start_preconditioning_step
        if not (start is None or start == math.inf):
            guards.check_int(owner, "start_preconditioning_step (or None, or math.inf: never)", start)
        guards.check_number(owner, "refresh_tau", self.refresh_tau)
        if self.exponent_override is not None:
            guards.check_number(owner, "exponent_override", self.exponent_override, strict=True)
        if self.damping is not None:
            guards.check_number(owner, "damping", self.damping)
        guards.check_nonfinite_policy(owner, self.nonfinite)
        b2 = self.betas[1]
        checks = [
            (self.grafting is None or self.grafting in METHODS, f"grafting must be None or one of {METHODS}"),
            (self.diagonal in METHODS, f"diagonal must be one of {METHODS}"),
            (self.factor_dtype in ("float32", "float64"), "factor_dtype must be 'float32' or 'float64'"),
            (self.root_method in ("eigh", "newton"), "root_method must be 'eigh' or 'newton'"),
            (self.basis_method in ("eigh", "qr"), "basis_method must be 'eigh' or 'qr'"),
            (
                self.statistics_precision in STATISTICS_PRECISIONS,
                f"statistics_precision must be one of {STATISTICS_PRECISIONS}",
            ),
            (
                self.second_moment_at_refresh in SECOND_MOMENT_RULES,
                f"second_moment_at_refresh must be one of {SECOND_MOMENT_RULES}",
            ),
            (
                all(isinstance(getattr(self, f), bool) for f in ("nesterov", "trace_scaling", "online")),
                "nesterov, trace_scaling and online must be True or False",
            ),
            (
                self.root_method != "newton" or self._newton_root_is_integer(),
                "root_method='newton' needs an integer root: exponent_override must be 1/k for an integer k",
            ),
            (
                b2 < 1.0 or self.diagonal_method not in ("adam", "rmsprop"),
                f"{self.diagonal_method} needs beta2 < 1 (1 means plain sums); use betas=(b1, 0.999) or adagrad",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"{owner}: {message}")

    def _newton_root_is_integer(self) -> bool:
        if self.exponent_override is None:
            return True
        root = 1.0 / self.exponent_override
        return abs(root - round(root)) < 1e-9

    @property
    def start(self) -> float:
        """The first step that refreshes the preconditioner (roots or eigenbases; before it, grafted and KrAD
        variants step with the diagonal method): start_preconditioning_step, or precondition_frequency when it is
        None; math.inf: never."""
        return (
            self.precondition_frequency if self.start_preconditioning_step is None else self.start_preconditioning_step
        )

    def refresh_due(self, step: int) -> bool:
        return (
            step >= self.start and (step - self.start) % self.precondition_frequency == 0 and math.isfinite(self.start)
        )

    def statistics_due(self, step):
        """Whether step ``step`` (1-based; an int or a traced integer array) accumulates the factor statistics."""
        return (step - 1) % self.statistics_compute_steps == 0

    def statistics_count(self, step):
        """How many accumulations of the factor statistics steps 1..``step`` made (``step`` itself when k = 1)."""
        k = self.statistics_compute_steps
        return step if k == 1 else (step - 1) // k + 1

    @property
    def diagonal_method(self) -> str:
        return self.grafting or self.diagonal

    @property
    def refresh_rule(self) -> "RefreshRule":
        return RefreshRule.of(self.second_moment_at_refresh)


@dataclass(frozen=True)
class RefreshRule:
    """How an eigenbasis refresh (EShampoo, SOAP) treats the second moment D and orders the basis; both cores
    read it from here.

    D's entry at a multi-index is the gradient's second moment along one product of basis columns.
    - "position" (Meta's Distributed Shampoo, which the Purifying Shampoo authors use): the refresh replaces the
      eigenvectors only: eigh's ascending order, or the QR iteration's columns sorted by ascending Rayleigh
      quotient (stable); D keeps its values by index, so a column whose eigenvalue rank changed inherits another
      direction's statistic until the EMA forgets it. The basis (criterion, eigh, QR) is computed from
      L / bc + eps I, as Meta's does.
    - "follow" (kronbench's rule): D is permuted with the columns, so each entry stays with the direction it
      measured: QR keeps each column's identity, eigh's new columns are matched to the old ones
      (``match_columns``). A refresh that only re-sorts the basis, or two eigenvalues crossing, then leaves the
      step unchanged; bases are kept in descending order, the order unshifted QR iterations converge to, so
      warm starts need no reversal. The basis is computed from L (its eigenvectors are L / bc + eps I's).
    """

    descending: bool  # basis columns by descending eigenvalue
    follow_columns: bool  # permute D with the columns
    regularised_input: bool  # compute the basis from L / bc + eps I instead of L

    @staticmethod
    def of(name: str) -> "RefreshRule":
        follow = name == "follow"
        return RefreshRule(descending=follow, follow_columns=follow, regularised_input=not follow)
