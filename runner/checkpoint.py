"""Trial checkpoints: everything needed to continue a trial where it stopped (``--resume_last_run``).

A checkpoint holds only tensors and plain containers, and is read with ``torch.load(weights_only=True)``: a
checkpoint file is data, never code, so a planted or foreign one cannot run anything. Entries of a submission's
optimizer state that are neither plain nor have a ``state_dict`` are left out with a warning (as AlgoPerf's own
checkpoints do); on resume they keep the value ``init_optimizer_state`` gave them. The checkpoint also records
what the trial is (submission, workload, seed, hyperparameters), so a resume of something else is refused.
"""

import logging
import os
from typing import Any

import torch

from common import layout
from common.atomic import atomic_open
from common.errors import UsageError
from precond.distributed import gathering_state
from runner.trial import saved_state_problem
from workloads import ddp

log = logging.getLogger("kronbench.runner")

KEYS = (
    "identity",
    "model_params",
    "model_state",
    "optimizer_state",
    "train_state",
    "eval_results",
    "global_step",
    "preemption_count",
)
_warned: dict[str, list[str]] = {}  # trial dir -> what its last warning named: warned once, not at every eval
PLAIN = (type(None), bool, int, float, str)  # exact types: a subclass (namedtuple, enum) would need its class


class CheckpointError(UsageError):
    """A checkpoint that cannot be resumed: unreadable, foreign, or of another trial."""


def path(trial_dir: str) -> str:
    return os.path.join(trial_dir, layout.CHECKPOINT)


def snapshot(
    trial_dir: str,
    *,
    identity: dict,
    model_params,
    model_state,
    optimizer_state,
    train_state: dict,
    eval_results: list,
    global_step: int,
    preemption_count: int,
) -> dict:
    """What a checkpoint holds, as tensors and plain containers. Under torchrun every rank calls it together:
    a sharded optimizer's state is gathered to rank 0 here (precond/distributed.py), and rank 0 writes it."""
    dropped: list[str] = []
    with gathering_state():
        optimizer_blob = to_plain(optimizer_state, "optimizer_state", dropped)
    blob = {
        "identity": identity,
        "model_params": ddp.unwrap(model_params).state_dict(),  # unprefixed: loads into any world size
        "model_state": to_plain(model_state, "model_state", dropped),
        "optimizer_state": optimizer_blob,
        "train_state": to_plain(dict(train_state), "train_state", dropped),
        "eval_results": to_plain(eval_results, "eval_results", dropped),
        "global_step": global_step,
        "preemption_count": preemption_count,
    }
    if dropped and _warned.get(trial_dir) != dropped:
        _warned[trial_dir] = dropped
        log.warning(
            "left out of the checkpoint (neither tensors, plain containers nor objects with a state_dict; a resumed "
            "trial gets them from init_optimizer_state again): %s",
            ", ".join(dropped),
        )
    return blob


def write(trial_dir: str, blob: dict) -> None:
    """Write atomically, so a kill mid-write never leaves a torn checkpoint."""
    with atomic_open(path(trial_dir), "wb") as f:
        torch.save(blob, f)


def save(trial_dir: str, **fields) -> None:
    """``snapshot`` then ``write``: the checkpoint of a trial run by one process."""
    write(trial_dir, snapshot(trial_dir, **fields))


def to_plain(obj: Any, where: str, dropped: list[str]) -> Any:
    """``obj`` as tensors and plain containers: objects with a ``state_dict`` by it, numpy scalars as numbers;
    anything else is None and its place is appended to ``dropped``."""
    if hasattr(obj, "state_dict") and callable(obj.state_dict) and not isinstance(obj, torch.Tensor):
        return to_plain(obj.state_dict(), where, dropped)
    if isinstance(obj, torch.Tensor) or type(obj) in PLAIN:
        return obj
    if type(obj) is dict:
        out = {}
        for k, v in obj.items():
            value = to_plain(v, f"{where}[{k!r}]", dropped)
            if value is not None or v is None:
                out[k] = value
        return out
    if type(obj) in (list, tuple):
        return type(obj)(to_plain(v, f"{where}[{i}]", dropped) for i, v in enumerate(obj))
    if type(obj).__module__ == "numpy" and hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        return obj.item()
    dropped.append(f"{where} ({type(obj).__name__})")
    return None


def restore(trial_dir: str, identity: dict, model_params, optimizer_state, model_state=None) -> dict[str, Any] | None:
    """Load the checkpoint into ``model_params``/``optimizer_state``/``model_state``; None when there is none. The
    returned blob holds the objects to continue with under the same keys. A checkpoint that cannot be read, or that
    belongs to another trial, is a CheckpointError naming the file and the way out."""
    file = path(trial_dir)
    if not os.path.isfile(file):
        return None
    way_out = "move it away, or pass --overwrite to start the trial over"
    try:
        blob = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # a checkpoint is user input: any failure to read it is one line
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise CheckpointError(f"{file} is not a readable kronbench checkpoint ({reason}); {way_out}") from None
    missing = [k for k in KEYS if not isinstance(blob, dict) or k not in blob]
    if missing:
        raise CheckpointError(f"{file} is not a kronbench checkpoint (no {', '.join(missing)}); {way_out}")
    check_identity(file, blob["identity"], identity)
    check_saved_state(file, blob)
    try:
        ddp.unwrap(model_params).load_state_dict(blob["model_params"])
        blob["optimizer_state"] = load_into(optimizer_state, blob["optimizer_state"])
        blob["model_state"] = load_into(model_state, blob["model_state"])
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise CheckpointError(f"{file} does not fit this model or optimizer ({reason}); {way_out}") from None
    blob["model_params"] = model_params
    return blob


def load_into(target: Any, saved: Any) -> Any:
    """``target`` with ``saved`` (what ``to_plain`` made of it) loaded in: state_dicts into their objects, dict
    entries key by key; entries the checkpoint left out keep their value in ``target``."""
    if saved is None:
        return target
    if hasattr(target, "load_state_dict") and not isinstance(target, torch.Tensor):
        target.load_state_dict(saved)
        return target
    if type(target) is dict and type(saved) is dict:
        for k, v in saved.items():
            target[k] = load_into(target[k], v) if k in target else v
        return target
    if type(target) in (list, tuple) and type(saved) is type(target) and len(saved) == len(target):
        return type(target)(load_into(t, s) for t, s in zip(target, saved, strict=True))
    return saved


def check_saved_state(file: str, blob: dict) -> None:
    """The trial's plain state in a checkpoint (either framework's) has the types and ranges a trial can continue
    from; refused before anything is written."""
    problem = saved_state_problem(
        *(blob[k] for k in ("train_state", "eval_results", "global_step", "preemption_count"))
    )
    if problem is not None:
        raise CheckpointError(
            f"{file} is not a consistent kronbench checkpoint ({problem}); move it away, or pass --overwrite to start "
            f"the trial over"
        )


def check_identity(file: str, saved: Any, current: dict) -> None:
    if not isinstance(saved, dict):
        raise CheckpointError(f"{file} does not say which trial it belongs to; move it away or pass --overwrite")
    changed = [k for k in current if saved.get(k) != current[k]]
    if changed:
        what = "; ".join(f"{k} was {saved.get(k)!r}, now {current[k]!r}" for k in changed)
        raise CheckpointError(
            f"{file} belongs to another trial ({what}); repeat the original flags to resume it, or pass "
            f"--overwrite to start the trial over"
        )
