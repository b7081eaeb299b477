"""What every kronbench submission shares: hyperparameters with defaults, the warmup + cosine schedule,
and one training step (forward, loss with label smoothing, backward, optional clipping, optimizer step).

Submissions import only the AlgoPerf API, ``precond``, this module and modules in their own folder.
"""

import math
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.distributed.nn as dist_nn

from algoperf import spec
from algoperf.pytorch_utils import pytorch_setup

USE_DDP = pytorch_setup()[0]


@dataclass(frozen=True)
class TrainingHParams:
    """The hyperparameters of the baseline recipe. Fields missing from a search-space point take defaults."""

    learning_rate: float = 1e-3
    one_minus_beta1: float = 0.1
    beta2: float = 0.999
    weight_decay: float = 0.0
    warmup_factor: float = 0.05
    label_smoothing: float = 0.0
    dropout_rate: float = 0.0
    grad_clip: float | None = None

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
    if USE_DDP:  # sum over ranks so gradients are those of the global batch mean
        summed, n_valid = dist_nn.all_reduce(summed), dist_nn.all_reduce(n_valid)
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
}


def batch_size(workload_name: str) -> int:
    """Raises ValueError for an unknown name, so the runner retries with the base workload name."""
    if workload_name not in BATCH_SIZES:
        raise ValueError(f"no batch size for workload {workload_name!r}")
    return BATCH_SIZES[workload_name]
