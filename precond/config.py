"""The one configuration of the Kronecker engine; presets (Shampoo, SOAP, ...) are values of it."""

import math
from dataclasses import dataclass

VARIANTS = ("shampoo", "shampoo2", "kradagrad", "kradagrad_star", "eshampoo", "soap")
METHODS = ("adam", "adagrad", "rmsprop", "sgd")  # grafting / diagonal methods (precond.grafting)

# Each variant's defaults on top of KronConfig's (the presets; shared with the JAX core). KrAD variants default to
# eps = 1e-4: their inverse factors start at I / eps, and with eps = 1e-8 the fp32 product X A X overflows.
PRESETS = {
    "shampoo": {"variant": "shampoo", "grafting": "adam"},
    "shampoo2": {"variant": "shampoo2", "grafting": "adam", "eps": 1e-4},
    "kradagrad_star": {
        "variant": "kradagrad_star",
        "grafting": None,
        "betas": (0.9, 1.0),
        "diagonal": "adagrad",
        "eps": 1e-4,
    },
    "kradagrad": {"variant": "kradagrad", "grafting": None, "betas": (0.9, 1.0), "diagonal": "adagrad", "eps": 1e-4},
    "eshampoo": {"variant": "eshampoo", "grafting": None, "precondition_frequency": 50, "refresh_tau": 0.1},
    "soap": {"variant": "soap", "grafting": None, "precondition_frequency": 10, "nesterov": False},
}


@dataclass(frozen=True)
class KronConfig:
    """Options shared by every variant, then variant-specific ones.

    betas: (beta1 for the first moment, beta2 for factor statistics and second moments; 1.0 = plain sums).
    eps: the preconditioner's epsilon (root regulariser; KrAD's X starts at I/eps; EShampoo/SOAP's denominator).
    graft_eps: epsilon of the grafting / diagonal method.
    precondition_frequency: steps between refreshes (roots or eigenbases), from start_preconditioning_step
        (None: equal to precondition_frequency; math.inf: never precondition).
    max_preconditioner_dim: small dims are merged up to it, larger ones split into blocks of it.
    grafting: "adam" | "adagrad" | "rmsprop" | "sgd" | None. Grafted variants take each block's direction norm
        from this method, and step with it alone before their first refresh.
    diagonal: the method for 1-D parameters (and before the first refresh) when grafting is None.
    nesterov: use b1 m + (1 - b1) g as the first-moment estimate (NAdam style), else m; both bias-corrected.
    exponent_override: inverse-root exponent (Shampoo: 1/(2k), Shampoo2: 1/k for order-k blocks).
    factor_dtype: "float32" | "float64" for factor statistics and their roots.
    root_method: "eigh" (fp64 retry) | "newton" (coupled Newton, integer roots).
    max_consecutive_failures: failed refreshes of one block group in a row before an error is raised.
    trace_scaling (shampoo2): factors scaled by 1/sqrt(trace) so steps are invariant to gradient scale.
    online (shampoo2): power-iteration statistics L += G R^ G^T with the other factor's normalised estimate.
    refresh_tau (eshampoo, soap): skip a block factor's refresh while ||B - diag B|| / ||B|| <= tau, B = Q^T L Q
        (SOAP: after its first, eigh, refresh).
    basis_method (eshampoo): "eigh" | "qr" (warm-started QR iteration to tau); max_qr_iterations bounds it.
    damping (kradagrad): X <- X - damping X^2 each update; None means eps**2.
    """

    variant: str
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    graft_eps: float = 1e-8
    precondition_frequency: int = 100
    start_preconditioning_step: int | float | None = None
    max_preconditioner_dim: int = 1024
    grafting: str | None = "adam"
    diagonal: str = "adam"
    nesterov: bool = True
    exponent_override: float | None = None
    factor_dtype: str = "float32"
    root_method: str = "eigh"
    max_consecutive_failures: int = 5
    trace_scaling: bool = True
    online: bool = False
    refresh_tau: float = 0.0
    basis_method: str = "eigh"
    max_qr_iterations: int = 10
    damping: float | None = None

    def __post_init__(self):
        b1, b2 = self.betas
        checks = [
            (self.variant in VARIANTS, f"variant must be one of {VARIANTS}"),
            (0.0 <= b1 < 1.0 and 0.0 < b2 <= 1.0, "betas must satisfy 0 <= beta1 < 1 and 0 < beta2 <= 1"),
            (self.eps > 0 and self.graft_eps >= 0, "eps must be > 0 and graft_eps >= 0"),
            (self.precondition_frequency >= 1, "precondition_frequency must be >= 1"),
            (
                self.start_preconditioning_step is None or self.start_preconditioning_step >= 1,
                "start_preconditioning_step must be >= 1 (math.inf turns preconditioning off)",
            ),
            (self.max_preconditioner_dim >= 1, "max_preconditioner_dim must be >= 1"),
            (self.grafting is None or self.grafting in METHODS, f"grafting must be None or one of {METHODS}"),
            (self.diagonal in METHODS, f"diagonal must be one of {METHODS}"),
            (self.factor_dtype in ("float32", "float64"), "factor_dtype must be 'float32' or 'float64'"),
            (self.root_method in ("eigh", "newton"), "root_method must be 'eigh' or 'newton'"),
            (self.basis_method in ("eigh", "qr"), "basis_method must be 'eigh' or 'qr'"),
            (self.max_consecutive_failures >= 1, "max_consecutive_failures must be >= 1"),
            (self.refresh_tau >= 0, "refresh_tau must be >= 0"),
            (self.exponent_override is None or self.exponent_override > 0, "exponent_override must be > 0"),
            (
                b2 < 1.0 or self.diagonal_method not in ("adam", "rmsprop"),
                f"{self.diagonal_method} needs beta2 < 1 (1 means plain sums); use betas=(b1, 0.999) or adagrad",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"{self.variant}: {message}")

    @property
    def start(self) -> float:
        return (
            self.precondition_frequency if self.start_preconditioning_step is None else self.start_preconditioning_step
        )

    def refresh_due(self, step: int) -> bool:
        return (
            step >= self.start and (step - self.start) % self.precondition_frequency == 0 and math.isfinite(self.start)
        )

    @property
    def diagonal_method(self) -> str:
        return self.grafting or self.diagonal
