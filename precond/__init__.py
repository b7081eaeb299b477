"""kronbench's optimizer core (torch): NAdamW and the Kronecker-factored family on one engine."""

from precond.config import KronConfig
from precond.nadamw import NAdamW
from precond.optimizer import KronOptimizer
from precond.presets import SOAP, EShampoo, KrADagrad, KrADagradStar, Shampoo, Shampoo2

__all__ = [
    "NAdamW",
    "KronConfig",
    "KronOptimizer",
    "Shampoo",
    "Shampoo2",
    "KrADagrad",
    "KrADagradStar",
    "EShampoo",
    "SOAP",
]
