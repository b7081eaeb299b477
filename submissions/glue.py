"""What every kronbench submission shares: hyperparameters with defaults, the warmup + cosine schedule, one
training step (forward, loss with label smoothing, backward, optional clipping, optimizer step), parameter
routing (huge tables to Adam, norms and biases unpreconditioned), and the AlgoPerf functions themselves, built
from an optimizer factory so that a submission states only its optimizer and defaults.

Submissions import only the AlgoPerf API, ``precond``, this module and modules in their own folder.
"""

import math
import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.distributed.nn as dist_nn
from torch.nn.parallel import DistributedDataParallel

import compat  # noqa: F401  (so `from algoperf import spec` resolves)
import precond
from algoperf import spec
from algoperf.pytorch_utils import pytorch_setup
from common import search_space as ss
from submissions import routing

USE_DDP = pytorch_setup()[0]
# The differentiable all_reduce AlgoPerf's baselines use; torch suggests a private module in its place.
warnings.filterwarnings("ignore", message="torch.distributed.nn.functional.all_reduce is deprecated")


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


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """LR factor: linear from 0 over ``warmup_steps``, then cosine to zero at ``total_steps``, zero after."""
    if step < warmup_steps:
        return step / warmup_steps
    if step >= total_steps:
        return 0.0
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def scheduled_lr(hp: TrainingHParams, step: int, step_hint: int) -> float:
    return hp.learning_rate * warmup_cosine(step, int(hp.warmup_factor * step_hint), step_hint)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def train_step(
    workload: spec.Workload, model, model_state, batch: dict, rng, optimizer: torch.optim.Optimizer, hp: TrainingHParams
) -> tuple[torch.Tensor, Any]:
    """One forward/backward/step; returns (mean loss, new model state)."""
    optimizer.zero_grad(set_to_none=True)
    logits, new_model_state = workload.model_fn(
        params=model,
        augmented_and_preprocessed_input_batch=batch,
        model_state=model_state,
        mode=spec.ForwardPassMode.TRAIN,
        rng=rng,
        update_batch_norm=True,
        dropout_rate=hp.dropout_rate,
    )
    loss_dict = workload.loss_fn(
        label_batch=batch["targets"],
        logits_batch=logits,
        mask_batch=batch.get("weights"),
        label_smoothing=hp.label_smoothing,
    )
    summed, n_valid = loss_dict["summed"], loss_dict["n_valid_examples"]
    if USE_DDP:  # sum over ranks (one collective for both) so gradients are those of the global batch mean
        summed, n_valid = dist_nn.all_reduce(torch.stack([summed, torch.as_tensor(n_valid).to(summed)])).unbind()
    loss = summed / n_valid
    loss.backward()
    if hp.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=hp.grad_clip)
    optimizer.step()
    return loss.detach(), new_model_state


def next_batch(input_queue) -> dict:
    """The trivial data_selection: the next batch of the pre-shuffled queue."""
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
    "bible_mt": 32,
    "espeak_asr": 32,
}


def batch_size(workload_name: str) -> int:
    """Raises ValueError for an unknown name, so the runner retries with the base workload name."""
    if workload_name not in BATCH_SIZES:
        raise ValueError(f"no batch size for workload {workload_name!r}")
    return BATCH_SIZES[workload_name]


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


class OptimizerSet:
    """Several torch optimizers stepped as one (a Kronecker optimizer plus Adam for huge tables)."""

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer]):
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:
        return [g for opt in self.optimizers.values() for g in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers.values():
            opt.step()

    def state_dict(self) -> dict:
        return {name: opt.state_dict() for name, opt in self.optimizers.items()}

    def load_state_dict(self, state: dict) -> None:
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])


def route_parameters(
    model, param_types, policy: routing.Policy = routing.DEFAULT
) -> tuple[list[dict], list[tuple[str, torch.nn.Parameter]]]:
    """(Kronecker parameter groups, parameters for Adam), as (name, parameter) pairs so the optimizers' errors
    name the parameter; ``routing.route`` decides each one from its AlgoPerf type and shape."""
    dest = {routing.KRONECKER: [], routing.UNPRECONDITIONED: [], routing.ADAM: []}
    for name, p in model.named_parameters():
        dest[routing.route(name, (param_types or {}).get(name), tuple(p.shape), policy)].append((name, p))
    groups = [{"params": dest[routing.KRONECKER]}, {"params": dest[routing.UNPRECONDITIONED], "precondition": False}]
    return [g for g in groups if g["params"]], dest[routing.ADAM]


KRON_OVERRIDES = tuple(f.name for f in fields(precond.KronConfig) if f.name not in ("variant", "betas"))


def hyperparameters(build_optimizer) -> dict[str, ss.Param]:
    """What a submission built by ``make_submission(build_optimizer, ...)`` reads from a search-space point (its
    ``HYPERPARAMETERS``): the recipe's fields, and for ``kronecker`` optimizers the KronConfig options it overrides.
    Every one has a default; KronConfig checks the values of its own options."""
    out = ss.declared(TrainingHParams, "glue")
    kron = {f.name: f for f in fields(precond.KronConfig)}
    for name in getattr(build_optimizer, "overridable", ()):
        default = kron[name].default
        out[name] = ss.Param(default=default)
    if hasattr(build_optimizer, "policy"):  # the submission's routing is its default
        out[routing.POLICY_HYPERPARAMETER] = ss.Param(default=build_optimizer.policy.precondition_embeddings)
    return out


def kronecker(optimizer_cls, policy: routing.Policy = routing.DEFAULT, **options):
    """An optimizer factory: ``optimizer_cls`` with ``options`` (any of them overridden by a hyperparameter of the
    same name in the search-space point) on the parameters ``policy`` routes to it (``precondition_embeddings``
    in the point overrides the policy's), NAdamW on huge tables."""
    config_fields = set(KRON_OVERRIDES)

    def build(model, param_types, hp: TrainingHParams, hyperparameters) -> torch.optim.Optimizer:
        overrides = {k: getattr(hyperparameters, k) for k in config_fields if hasattr(hyperparameters, k)}
        kw = {"betas": hp.betas, **options, **overrides}
        groups, adam_params = route_parameters(model, param_types, policy.with_overrides(hyperparameters))
        optimizers = {"kron": optimizer_cls(groups, lr=hp.learning_rate, weight_decay=hp.weight_decay, **kw)}
        if adam_params:  # Adam needs an EMA: a beta2 of 1 (factor sums, KrAD) becomes the baseline's 0.999
            betas = (hp.betas[0], hp.beta2 if hp.beta2 < 1 else 0.999)
            optimizers["adam"] = precond.NAdamW(
                adam_params, lr=hp.learning_rate, betas=betas, weight_decay=hp.weight_decay
            )
        return OptimizerSet(optimizers)

    build.overridable, build.policy = KRON_OVERRIDES, policy
    return build


def make_submission(build_optimizer, defaults: TrainingHParams):
    """(get_batch_size, init_optimizer_state, update_params, data_selection) for ``build_optimizer``:
    a callable (model, param_types, resolved hparams, raw hyperparameters or None) -> optimizer."""

    def get_batch_size(workload_name):
        return batch_size(workload_name)

    def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
        del model_state, rng
        hp = TrainingHParams.resolve(hyperparameters, defaults)
        model = model_params.module if isinstance(model_params, DistributedDataParallel) else model_params
        optimizer = build_optimizer(model, workload.model_params_types, hp, hyperparameters)  # names unprefixed
        return {"optimizer": optimizer, "hparams": asdict(hp)}  # a plain dict: checkpoints hold no classes

    def update_params(
        workload,
        current_param_container,
        current_params_types,
        model_state,
        hyperparameters,
        batch,
        loss_type,
        optimizer_state,
        eval_results,
        global_step,
        rng,
        train_state=None,
    ):
        del current_params_types, hyperparameters, loss_type, eval_results, train_state
        hp, optimizer = TrainingHParams(**optimizer_state["hparams"]), optimizer_state["optimizer"]
        set_lr(optimizer, scheduled_lr(hp, global_step, workload.step_hint))
        _, new_model_state = train_step(workload, current_param_container, model_state, batch, rng, optimizer, hp)
        return optimizer_state, current_param_container, new_model_state

    def data_selection(
        workload, input_queue, optimizer_state, current_param_container, model_state, hyperparameters, global_step, rng
    ):
        return next_batch(input_queue)

    return get_batch_size, init_optimizer_state, update_params, data_selection
