"""Trial checkpoints: everything needed to continue a trial where it stopped (``--resume_last_run``)."""

import os
from typing import Any

import torch

CHECKPOINT = "checkpoint.pt"


def path(trial_dir: str) -> str:
    return os.path.join(trial_dir, CHECKPOINT)


def save(
    trial_dir: str,
    *,
    model_params,
    model_state,
    optimizer_state,
    train_state: dict,
    eval_results: list,
    global_step: int,
    preemption_count: int,
) -> None:
    """Write atomically (tmp + rename) so a kill mid-write never leaves a torn checkpoint."""
    blob = {
        "model_params": model_params.state_dict(),
        "model_state": model_state,
        "optimizer_state": _optimizer_state_dict(optimizer_state),
        "train_state": dict(train_state),
        "eval_results": eval_results,
        "global_step": global_step,
        "preemption_count": preemption_count,
    }
    tmp = path(trial_dir) + ".tmp"
    torch.save(blob, tmp)
    os.replace(tmp, path(trial_dir))


def restore(trial_dir: str, model_params, optimizer_state) -> dict[str, Any] | None:
    """Load the checkpoint into ``model_params``/``optimizer_state`` in place; None when there is none."""
    if not os.path.isfile(path(trial_dir)):
        return None
    blob = torch.load(path(trial_dir), map_location="cpu", weights_only=False)
    model_params.load_state_dict(blob["model_params"])
    saved = blob["optimizer_state"]
    if isinstance(optimizer_state, dict):
        for key, value in saved.items():
            if hasattr(optimizer_state.get(key), "load_state_dict"):
                optimizer_state[key].load_state_dict(value)
            else:
                optimizer_state[key] = value
    blob["optimizer_state"] = optimizer_state
    return blob


def _optimizer_state_dict(optimizer_state) -> Any:
    if isinstance(optimizer_state, dict):
        return {k: v.state_dict() if hasattr(v, "state_dict") else v for k, v in optimizer_state.items()}
    return optimizer_state
