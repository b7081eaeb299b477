"""The framework-free half of the submissions' shared recipe, imported by the PyTorch glue (``glue``) and the JAX
glue (``glue_jax``) alike: the hyperparameters with their defaults and bounds, the warmup + cosine schedule, the
batch sizes, the baseline's defaults, where each parameter goes, and what a search-space point may set.

Imports neither torch nor JAX, so both glues state each rule once.
"""

import math
from dataclasses import dataclass, field, fields
from typing import Any

from common import search_space as ss
from precond import flops, guards
from precond.config import KronConfig
from submissions import routing


@dataclass(frozen=True)
class TrainingHParams:
    """The hyperparameters of the baseline recipe. Fields missing from a search-space point take defaults; the
    bounds are checked when a search space is loaded for a submission."""

    learning_rate: float = field(default=1e-3, metadata=ss.bounds(0, lo_open=True))
    one_minus_beta1: float = field(default=0.1, metadata=ss.bounds(0, 1))
    beta2: float = field(default=0.999, metadata=ss.bounds(0, 1))
    weight_decay: float = field(default=0.0, metadata=ss.bounds(0))
    warmup_factor: float = field(default=0.05, metadata=ss.bounds(0, 1))
    label_smoothing: float = field(default=0.0, metadata=ss.bounds(0, 1, hi_open=True))
    dropout_rate: float = field(default=0.0, metadata=ss.bounds(0, 1, hi_open=True))
    grad_clip: float | None = field(default=None, metadata=ss.bounds(0, lo_open=True))

    @classmethod
    def resolve(cls, hyperparameters: Any, defaults: "TrainingHParams") -> "TrainingHParams":
        """``hyperparameters`` (a namedtuple, or None under self-tuning) over ``defaults``."""
        if hyperparameters is None:
            return defaults
        values = {f.name: getattr(hyperparameters, f.name, getattr(defaults, f.name)) for f in fields(cls)}
        return cls(**values)

    @property
    def betas(self) -> tuple[float, float]:
        return 1.0 - self.one_minus_beta1, self.beta2

    @property
    def adam_betas(self) -> tuple[float, float]:
        """The betas of the NAdamW that huge tables get: it needs an EMA, so a beta2 of 1 (factor sums, KrAD)
        becomes the baseline's 0.999."""
        return self.betas[0], self.beta2 if self.beta2 < 1 else 0.999


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """LR factor: linear from 0 over ``warmup_steps``, then cosine to zero at ``total_steps``, zero after."""
    if step < warmup_steps:
        return step / warmup_steps
    if step >= total_steps:
        return 0.0
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_steps(hp: TrainingHParams, step_hint: int) -> int:
    return int(hp.warmup_factor * step_hint)


def scheduled_lr(hp: TrainingHParams, step: int, step_hint: int) -> float:
    return hp.learning_rate * warmup_cosine(step, warmup_steps(hp, step_hint), step_hint)


def data_selection(
    workload, input_queue, optimizer_state, current_param_container, model_state, hyperparameters, global_step, rng
) -> dict:
    """AlgoPerf's ``data_selection``, the same in both frameworks: the next batch of the pre-shuffled queue."""
    return next(input_queue)


# Global batch sizes: AlgoPerf's NAdamW baseline for the official workloads, ours for the CPU suite.
BATCH_SIZES = {
    "criteo1tb": 262_144,
    "fastmri": 32,
    "imagenet_resnet": 1024,
    "imagenet_vit": 1024,
    "librispeech_conformer": 256,
    "librispeech_deepspeech": 256,
    "ogbg": 512,
    "wmt": 128,
    "mnist": 128,
    "fashion_resnet": 128,
    "fashion_vit": 128,
    "stdlib_lm": 32,
    "flights_dlrm": 512,
    "qm9_gnn": 128,
    "mri_unet": 8,
    "bible_mt": 64,
    "espeak_asr": 32,
}


def batch_size(workload_name: str) -> int:
    """Raises ValueError for an unknown name, so the runner retries with the base workload name."""
    if workload_name not in BATCH_SIZES:
        raise ValueError(f"no batch size for workload {workload_name!r}")
    return BATCH_SIZES[workload_name]


def route_by_type(type_name: str | None, shape: tuple[int, ...], policy: routing.Policy = routing.DEFAULT) -> str:
    """Where a parameter goes (``routing.KRONECKER``, ``UNPRECONDITIONED`` or ``ADAM``): ``routing.route`` for a
    parameter known by its type name (None when the workload gives none) and shape: neither layout nor framework
    matters, only the largest dimension and the type."""
    return routing.route(type_name or "a parameter", type_name, shape, policy)


# AlgoPerf's NAdamW baseline, first point of its v0.5 external-tuning list: the self-tuning default of every
# submission whose learning rate is Adam's (grafted to Adam, or Adam in an eigenbasis).
BASELINE_DEFAULTS = TrainingHParams(
    learning_rate=0.001308209823469072,
    one_minus_beta1=0.02686663061,
    beta2=0.9981232922116359,
    weight_decay=0.16375311233774334,
    warmup_factor=0.1,
    label_smoothing=0.1,
    dropout_rate=0.0,
)

KRON_OVERRIDES = tuple(f.name for f in fields(KronConfig) if f.name not in ("variant", "betas"))


# The block-size rule's option (``precond.flops.block_for_budget``): the largest max_preconditioner_dim, halving,
# whose modelled step is at most this fraction of the first training batch's forward and backward FLOPs. Off (None)
# unless a submission's options or a search-space point set it; a submission's option, not the optimizer's, as
# only the training step sees the batch.
BLOCK_BUDGET = "block_budget"


def check_block_rule(variant: str) -> None:
    """Refuses the block-size rule for a variant the FLOP model does not cover."""
    if variant not in flops.APPLICATIONS:
        raise ValueError(
            f"block_budget: {variant} has no FLOP model (precond/flops.py), so the block-size rule cannot size its "
            f"blocks; drop block_budget or set max_preconditioner_dim"
        )


def rule_block(config: KronConfig, shapes, batch_flops: float, budget: float, counter: str) -> int:
    """The block-size rule's max_preconditioner_dim for preconditioned parameters of ``shapes`` (torch's layout)
    against a training batch's forward and backward FLOPs, as ``counter`` counted them; both glues' rule."""
    check_block_rule(config.variant)
    if not batch_flops > 0:
        raise ValueError(
            f"block_budget: {counter} counted no FLOPs in the model's forward and backward pass (no matmuls or "
            f"convolutions it knows); drop block_budget for this workload"
        )
    return flops.block_for_budget(config, shapes, batch_flops, budget)


def kron_overrides(hyperparameters: Any) -> dict:
    """The KronConfig options a search-space point sets (they override a submission's options)."""
    return {k: getattr(hyperparameters, k) for k in KRON_OVERRIDES if hasattr(hyperparameters, k)}


@dataclass(frozen=True)
class KronFactory:
    """The framework-free half of both glues' ``kronecker`` optimizer factories: the submission's options, the
    names a search-space point may override, its routing policy, and the rule that merges them; each glue keeps
    only building its framework's optimizers."""

    policy: routing.Policy = routing.DEFAULT
    options: dict = field(default_factory=dict)
    overridable: tuple[str, ...] = KRON_OVERRIDES

    def options_for(self, hp: TrainingHParams, hyperparameters: Any) -> dict:
        """The recipe's betas, overridden by the submission's options, overridden by the point's KronConfig options."""
        own = {k: v for k, v in self.options.items() if k != BLOCK_BUDGET}
        return {"betas": hp.betas, **own, **kron_overrides(hyperparameters)}

    def budget_for(self, hyperparameters: Any) -> float | None:
        """The block-size rule's budget: the point's ``block_budget``, else the submission's; None: off."""
        budget = getattr(hyperparameters, BLOCK_BUDGET, self.options.get(BLOCK_BUDGET))
        if budget is not None:
            guards.check_number("submission", BLOCK_BUDGET, budget, strict=True)
        return budget

    def policy_for(self, hyperparameters: Any) -> routing.Policy:
        """The submission's routing policy, ``precondition_embeddings`` overridden by the point's."""
        return self.policy.with_overrides(hyperparameters)

    def attach(self, build):
        """``build`` with the attributes ``hyperparameters`` (and the benchmarks) read: overridable, policy and
        block_budget."""
        build.overridable, build.policy, build.block_budget = self.overridable, self.policy, self.budget_for(None)
        return build


def hyperparameters(build_optimizer) -> dict[str, ss.Param]:
    """What a submission built by ``make_submission(build_optimizer, ...)`` reads from a search-space point (its
    ``HYPERPARAMETERS``): the recipe's fields, and for ``kronecker`` optimizers the KronConfig options it overrides.
    Every one has a default; KronConfig checks the values of its own options."""
    out = ss.declared(TrainingHParams, "glue")
    kron = {f.name: f for f in fields(KronConfig)}
    for name in getattr(build_optimizer, "overridable", ()):
        default = kron[name].default
        out[name] = ss.Param(default=default)
    if hasattr(build_optimizer, BLOCK_BUDGET):
        out[BLOCK_BUDGET] = ss.Param(default=build_optimizer.block_budget, lo=0.0, lo_open=True)
    if hasattr(build_optimizer, "policy"):  # the submission's routing is its default
        out[routing.POLICY_HYPERPARAMETER] = ss.Param(default=build_optimizer.policy.precondition_embeddings)
    return out
