"""kronbench's optimizer core (torch): NAdamW now, the Kronecker-factored family on one engine next."""

from precond.nadamw import NAdamW

__all__ = ["NAdamW"]
