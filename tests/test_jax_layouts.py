"""AlgoPerf v0.5/v0.6's pmap layout (``--jax_batch_layout=pmap``, runner/jax_layout.py) and the removed JAX names
(``--jax_removed_names``, compat/jax_removed_names.py), against fixture submissions written here: the pmap one sees
batches and parameters with a leading device axis, and trains to the same result as its jit twin."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from compat import jax_removed_names
from runner import frameworks, jax_layout
from runner.loading import load_submission
from runner.loop import TrialConfig, train_once
from tests.cli_helpers import FIXTURES, run_cli
from workloads.registry import get_workload

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

LAYOUT_FIXTURES = os.path.join(FIXTURES, "jax_layouts")
ENV = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "1"}


def _train(name: str, layout: str, steps: int = 12):
    workload = get_workload("mnist", "jax")
    for attr in ("num_eval_train_examples", "num_validation_examples", "num_test_examples"):
        setattr(workload, attr, 64)  # this instance only: evals on small subsets
    cfg = TrialConfig(
        workload_name="mnist", framework="jax", max_global_steps=steps, progress=False, jax_batch_layout=layout
    )
    submission = load_submission(os.path.join(LAYOUT_FIXTURES, f"{name}.py"))
    return train_once(workload, submission, None, frameworks.get("jax").root_key(0), cfg)


def test_the_pmap_layout_trains_as_the_jit_layout(tmp_path, monkeypatch):
    record = tmp_path / "seen.json"
    monkeypatch.setenv("LAYOUT_RECORD", str(record))
    with jax_removed_names.restored():
        pmapped = _train("sgd_pmap", "pmap")
    jitted = _train("sgd_jit", "jit")
    seen = json.loads(record.read_text())
    n = jax.local_device_count()
    assert seen["devices"] == n
    assert seen["batch"]["inputs"][:2] == [n, 32 // n] and seen["batch"]["targets"] == [n, 32 // n]
    shapes = [leaf for leaf in jax.tree.leaves(get_workload("mnist", "jax").init_model_fn(jax.random.PRNGKey(0))[0])]
    assert sorted(s for s, _ in seen["params"]) == sorted([n, *p.shape] for p in shapes)
    assert all(equal for _, equal in seen["params"])  # every device's copy the same
    (step_p, p), (step_j, j) = pmapped.eval_results[-1], jitted.eval_results[-1]  # the final evals (earlier
    assert step_p == step_j == 12  # ones fall where the clock says)
    assert p["train/loss"] < pmapped.eval_results[0][1]["train/loss"]  # it trained
    for key in ("train/loss", "validation/loss", "validation/accuracy"):
        assert p[key] == pytest.approx(j[key], rel=1e-5), key


def test_a_pmap_submission_fails_on_the_jit_layout():
    with jax_removed_names.restored(), pytest.raises(ValueError):
        _train("sgd_pmap", "jit", steps=1)


def test_pmap_layout_replicates_and_unreplicates():
    layout = jax_layout.Pmap()
    n = len(layout.devices)
    tree = {"w": jnp.arange(6.0).reshape(2, 3), "b": np.float32(2.0)}
    replicated, state = layout.model(tree, None)
    assert state is None and replicated["w"].shape == (n, 2, 3) and replicated["b"].shape == (n,)
    back, _ = layout.for_eval(replicated, None)
    np.testing.assert_array_equal(back["w"], tree["w"])
    batch = next(layout.batches(iter([{"inputs": np.zeros((8, 5)), "targets": np.arange(8)}])))
    assert batch["inputs"].shape == (n, 8 // n, 5)
    np.testing.assert_array_equal(np.asarray(batch["targets"]).reshape(-1), np.arange(8))


def test_removed_names_are_restored_only_within_the_block():
    x = jnp.array([-2.0, 0.5, 3.0])
    assert not hasattr(jax, "tree_map")
    with jax_removed_names.restored():
        assert jax.tree_map is jax.tree_util.tree_map
        assert jax.tree_leaves({"a": 1, "b": [2, 3]}) == [1, 2, 3]
        np.testing.assert_array_equal(jnp.clip(x, a_min=0.0, a_max=1.0), [0.0, 0.5, 1.0])
        np.testing.assert_array_equal(jnp.clip(a=x, a_max=1.0), [-2.0, 0.5, 1.0])
        np.testing.assert_array_equal(jnp.clip(x, 0.0, 1.0), [0.0, 0.5, 1.0])  # today's call unchanged
        with pytest.raises(TypeError):
            jnp.clip(x, min=0.0, a_min=0.0)
    assert not hasattr(jax, "tree_map")
    with pytest.raises(TypeError):
        jnp.clip(x, a_min=0.0)


@pytest.mark.slow
def test_the_runner_runs_a_v05_style_submission_with_both_flags(tmp_path):
    args = [
        "--framework=jax", "--workload=mnist", f"--submission_path={os.path.join(LAYOUT_FIXTURES, 'sgd_pmap.py')}",
        "--tuning_ruleset=self", f"--experiment_dir={tmp_path}", "--experiment_name=pmap", "--rng_seed=0",
        "--max_global_steps=3", "--progress=off",
    ]  # fmt: skip
    ok = run_cli(*args, "--jax_batch_layout=pmap", "--jax_removed_names", env=ENV)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "did NOT reach" in ok.stdout and "3 steps" in ok.stdout
