"""Where a Kronecker submission sends each parameter, decided by its AlgoPerf parameter type and shape alone.

Three destinations:
- ``kronecker``: preconditioned by the submission's Kronecker method (blocked at max_preconditioner_dim);
- ``unpreconditioned``: the same optimizer's diagonal method (its grafting or its Adam in the identity basis);
- ``adam``: a separate NAdamW, for tables with a dimension of 10^6 or more, as the AlgoPerf v0.5 winner did.

Framework-free (no torch, no jax), so the PyTorch and JAX glue route alike. Types are matched by name
(``spec.ParameterType.EMBEDDING.name`` or the string itself), which both frameworks' enums share.
"""

from dataclasses import dataclass
from typing import Any

from common.errors import UsageError

KRONECKER, UNPRECONDITIONED, ADAM = "kronecker", "unpreconditioned", "adam"

# The AlgoPerf v0.5 winner sent parameters with a dimension of a million or more (embedding tables) to Adam.
ADAM_DIM_THRESHOLD = 1_000_000
# One-dimensional in every model, and scale/shift rather than linear maps: Kronecker factors say nothing here.
NORM_AND_BIAS_TYPES = frozenset(
    {"BIAS", "ATTENTION_BIAS", "BATCH_NORM_SCALE", "BATCH_NORM_BIAS", "LAYER_NORM_SCALE", "LAYER_NORM_BIAS"}
)
EMBEDDING_TYPE = "EMBEDDING"
POLICY_HYPERPARAMETER = "precondition_embeddings"


class RoutingError(UsageError, ValueError):
    """A routing policy given a value it cannot use; the message names it and the fix."""


@dataclass(frozen=True)
class Policy:
    """A submission's routing: whether embedding tables below the Adam threshold are preconditioned (else they take
    the diagonal method), and the dimension from which a table goes to Adam. Norms and biases are never
    preconditioned."""

    precondition_embeddings: bool = True
    adam_dim_threshold: int = ADAM_DIM_THRESHOLD

    def __post_init__(self):
        if not isinstance(self.precondition_embeddings, bool):
            raise RoutingError(
                f"{POLICY_HYPERPARAMETER}={self.precondition_embeddings!r} is not a boolean; write true or false"
            )
        if isinstance(self.adam_dim_threshold, bool) or not isinstance(self.adam_dim_threshold, int):
            raise RoutingError(f"adam_dim_threshold={self.adam_dim_threshold!r} is not an integer; give one")
        if self.adam_dim_threshold < 1:
            raise RoutingError(f"adam_dim_threshold={self.adam_dim_threshold} is below 1; give a positive integer")

    def with_overrides(self, hyperparameters: Any) -> "Policy":
        """This policy with ``precondition_embeddings`` taken from a search-space point (namedtuple) when it sets
        it; ``None`` (self-tuning) keeps the submission's own."""
        value = getattr(hyperparameters, POLICY_HYPERPARAMETER, self.precondition_embeddings)
        return Policy(precondition_embeddings=value, adam_dim_threshold=self.adam_dim_threshold)


def type_name(param_type: Any) -> str | None:
    """An AlgoPerf ``ParameterType`` (either framework's enum) or its name, as the name; None when unknown."""
    return getattr(param_type, "name", param_type)


def route(name: str, param_type: Any, shape: tuple[int, ...], policy: Policy) -> str:
    """The destination of parameter ``name`` (used only in errors) of type ``param_type`` and ``shape``. A parameter
    without a type (a workload that gives none) is routed as a weight."""
    if not isinstance(policy, Policy):
        raise RoutingError(f"{name}: the routing policy is a {type(policy).__name__}, not a routing.Policy; pass one")
    kind = type_name(param_type)
    if max(shape, default=0) >= policy.adam_dim_threshold:
        return ADAM
    if kind in NORM_AND_BIAS_TYPES:
        return UNPRECONDITIONED
    if kind == EMBEDDING_TYPE and not policy.precondition_embeddings:
        return UNPRECONDITIONED
    return KRONECKER


DEFAULT = Policy()  # embeddings preconditioned, as before the policy existed
