"""JAX trial checkpoints: the pytrees' array leaves and the trial's plain state in one ``.npz``, read with
``allow_pickle=False`` (a checkpoint is data, never code).

The tree structure is not stored: a resumed trial rebuilds it by initialising the model and the optimizer as
before, and the saved leaves replace that template's array leaves in order (their count, shapes and dtypes must
match, else a CheckpointError). Leaves that are not arrays (functions, e.g. an update function an AlgoPerf JAX
submission keeps beside its optimizer state, or Python numbers) keep the value initialisation gave them, as
runner/checkpoint.py does for PyTorch objects without a state_dict. Same public functions as runner/checkpoint.py.
"""

import json
import os
import re
from typing import Any

import numpy as np

from common import layout
from common.atomic import atomic_open
from runner.checkpoint import CheckpointError, check_identity, check_saved_state

TREES = ("model_params", "model_state", "optimizer_state")
PLAIN = ("identity", "train_state", "eval_results", "global_step", "preemption_count")
_LEAF = re.compile(rf"({'|'.join(TREES)})/\d{{1,9}}")  # an array leaf's entry: <tree>/<index among its leaves>


def path(trial_dir: str) -> str:
    return os.path.join(trial_dir, layout.CHECKPOINT_JAX)


def _array_leaves(tree) -> list[tuple[int, Any]]:
    import jax

    return [(i, leaf) for i, leaf in enumerate(jax.tree.leaves(tree)) if isinstance(leaf, (jax.Array, np.ndarray))]


def snapshot(trial_dir: str, **fields) -> dict:
    """Host copies of the array leaves, and the plain fields as JSON."""
    import jax

    del trial_dir
    arrays = {}
    for name in TREES:
        for i, leaf in _array_leaves(fields[name]):
            arrays[f"{name}/{i}"] = np.asarray(jax.device_get(leaf))
    plain = {k: fields[k] for k in PLAIN}
    plain["train_state"] = dict(plain["train_state"])
    arrays["plain"] = np.array(json.dumps(plain, default=float))
    return arrays


def write(trial_dir: str, blob: dict) -> None:
    """Write atomically, so a kill mid-write never leaves a torn checkpoint."""
    with atomic_open(path(trial_dir), "wb") as f:
        np.savez(f, **blob)


def restore(trial_dir: str, identity: dict, model_params, optimizer_state, model_state=None) -> dict | None:
    """The saved trees (on the template trees' structure) and plain fields; None when there is no checkpoint."""
    file = path(trial_dir)
    if not os.path.isfile(file):
        return None
    way_out = "move it away, or pass --overwrite to start the trial over"
    try:
        with np.load(file, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        text = arrays.pop("plain")
        if text.dtype.kind != "U" or text.ndim != 0:
            raise ValueError(f"its plain entry is a {text.dtype}{list(text.shape)} array, not one string")
        plain = json.loads(str(text))
    except Exception as e:  # a checkpoint is user input: any failure to read it is one line
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise CheckpointError(f"{file} is not a readable kronbench JAX checkpoint ({reason}); {way_out}") from None
    missing = [k for k in PLAIN if not isinstance(plain, dict) or k not in plain]
    if missing:
        raise CheckpointError(f"{file} is not a kronbench JAX checkpoint (no {', '.join(missing)}); {way_out}")
    foreign = next((k for k in arrays if not _LEAF.fullmatch(k)), None)
    if foreign is not None:
        raise CheckpointError(f"{file} is not a kronbench JAX checkpoint (an entry {foreign[:60]!r}); {way_out}")
    check_identity(file, plain["identity"], identity)
    check_saved_state(file, plain)
    templates = {"model_params": model_params, "model_state": model_state, "optimizer_state": optimizer_state}
    out = dict(plain, eval_results=[tuple(e) for e in plain["eval_results"]])
    for name, template in templates.items():
        out[name] = _fill(file, name, template, arrays, way_out)
    return out


def _fill(file: str, name: str, template, arrays: dict, way_out: str):
    import jax
    import jax.numpy as jnp

    leaves, treedef = jax.tree.flatten(template)
    saved = {int(k.split("/", 1)[1]): v for k, v in arrays.items() if k.startswith(name + "/")}
    expected = dict(_array_leaves(template))
    if set(saved) != set(expected):
        raise CheckpointError(
            f"{file} does not fit this model or optimizer ({name}: {len(saved)} saved arrays, {len(expected)} "
            f"expected); {way_out}"
        )
    for i, leaf in expected.items():
        if saved[i].shape != leaf.shape or saved[i].dtype != leaf.dtype:
            raise CheckpointError(
                f"{file} does not fit this model or optimizer ({name} leaf {i}: saved {saved[i].dtype}"
                f"{list(saved[i].shape)}, expected {leaf.dtype}{list(leaf.shape)}); {way_out}"
            )
        sharding = getattr(leaf, "sharding", None)
        leaves[i] = jax.device_put(jnp.asarray(saved[i]), sharding) if sharding is not None else saved[i]
    return jax.tree.unflatten(treedef, leaves)
