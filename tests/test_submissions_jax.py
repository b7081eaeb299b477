"""The JAX submissions (``submissions/<name>/submission_jax.py`` over ``submissions/glue_jax.py``): a few steps of
every one with preconditioning forced on, parity with the PyTorch submission of the same name (same weights, same
batches, the whole recipe), routing as the torch glue routes, conv kernels blocked as torch's, the same declared
hyperparameters, the schedule, and an optimizer state that survives a round trip through numpy."""

import ast
import importlib
import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F

import precond
import precond_jax
from algoperf import spec
from common import search_space
from compat import prng
from precond import blocking
from precond.registry import OPTIMIZERS
from runner.loading import REQUIRED
from submissions import glue, glue_jax, recipe, routing
from tests.cli_helpers import ROOT
from tests.coverage_workload import CoverageWorkload
from tests.fakes import SleepyWorkload

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

NAMES = list(OPTIMIZERS)
PT = spec.ParameterType


def jax_submission(name):
    return importlib.import_module(f"submissions.{name}.submission_jax")


def torch_submission(name):
    return importlib.import_module(f"submissions.{name}.submission")


def point(name, **overrides):
    space = search_space.load(f"{ROOT}/submissions/{name}/tuning_search_space.json")
    return search_space.make_hyperparameters({**space.points(1)[0], **overrides})


def dropout(x, rate, rng, train):
    """Dropout whose rate may be traced (AlgoPerf passes it into the jitted step)."""
    if not train:
        return x
    keep = jax.random.bernoulli(rng, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x, dropout_rate, rng, train):
        h = dropout(nn.relu(nn.Dense(16)(x)), dropout_rate, rng, train)
        return nn.Dense(4)(h)


class Coverage(nn.Module):
    """Every parameter kind (as tests/coverage_workload.py in torch): conv, batch norm (model state), a table of
    a million rows, dense kernels, layer norm, biases."""

    @nn.compact
    def __call__(self, inputs, dropout_rate, rng, train):
        x, ids = inputs
        h = nn.Conv(4, (3, 3), padding="SAME")(x)
        h = nn.relu(nn.BatchNorm(use_running_average=not train)(h)).reshape(x.shape[0], -1)
        h = jnp.concatenate([h, nn.Embed(1_000_000, 2)(ids)], axis=1)
        h = nn.LayerNorm()(dropout(nn.relu(nn.Dense(16)(h)), dropout_rate, rng, train))
        return nn.Dense(2)(h)


def flax_types(params):
    """AlgoPerf parameter types from flax module and leaf names."""

    def kind(path, p):
        module, leaf = path[-2].key.lower(), path[-1].key
        if module.startswith("embed"):
            return PT.EMBEDDING
        if module.startswith("batchnorm"):
            return PT.BATCH_NORM_SCALE if leaf == "scale" else PT.BATCH_NORM_BIAS
        if module.startswith("layernorm"):
            return PT.LAYER_NORM_SCALE if leaf == "scale" else PT.LAYER_NORM_BIAS
        if leaf == "bias":
            return PT.BIAS
        return PT.CONV_WEIGHT if p.ndim >= 3 else PT.WEIGHT

    return jax.tree_util.tree_map_with_path(kind, params)


class FlaxWorkload(SleepyWorkload):
    """A minimal AlgoPerf JAX workload around a flax module: init_model_fn, model_fn (dropout rate, rng, batch
    norm state), loss_fn with label smoothing, model_params_types, step_hint."""

    def __init__(self, module, example, step_hint=10):
        super().__init__()
        self.module, self.example, self.step_hint = module, example, step_hint

    def init_model_fn(self, rng, params=None):
        variables = self.module.init(rng, self.example, 0.0, None, train=False)
        params = variables["params"] if params is None else params
        self._param_shapes = jax.tree.map(lambda p: spec.ShapeTuple(p.shape), params)
        self._param_types = flax_types(params)
        return params, {k: v for k, v in variables.items() if k != "params"} or None

    def model_fn(self, params, batch, model_state, mode, rng, update_batch_norm, dropout_rate=0.0):
        train = mode == spec.ForwardPassMode.TRAIN
        variables = {"params": params, **(model_state or {})}
        if model_state and train and update_batch_norm:
            return self.module.apply(variables, batch["inputs"], dropout_rate, rng, True, mutable=list(model_state))
        return self.module.apply(variables, batch["inputs"], dropout_rate, rng, train), model_state

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing=0.0):
        k = logits_batch.shape[-1]
        targets = (1 - label_smoothing) * jax.nn.one_hot(label_batch, k) + label_smoothing / k
        per = optax.softmax_cross_entropy(logits_batch, targets)
        return {"summed": per.sum(), "n_valid_examples": per.shape[0], "per_example": per}


class TorchMLPWorkload(SleepyWorkload):
    """MLP's twin in torch, with given weights."""

    def __init__(self, weights, step_hint=10):
        super().__init__()
        self.weights, self.step_hint = weights, step_hint

    def init_model_fn(self, rng):
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
        model.to(torch.from_numpy(self.weights["0.weight"]).dtype)
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(torch.from_numpy(self.weights[name]))
        self._param_types = {n: PT.BIAS if n.endswith("bias") else PT.WEIGHT for n, _ in model.named_parameters()}
        return model, None

    def model_fn(self, params, augmented_and_preprocessed_input_batch, model_state, mode, rng, *args, **kwargs):
        return params(augmented_and_preprocessed_input_batch["inputs"]), model_state

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing=0.0):
        per = F.cross_entropy(logits_batch, label_batch, reduction="none", label_smoothing=label_smoothing)
        return {"summed": per.sum(), "n_valid_examples": torch.tensor(len(per)), "per_example": per}


def coverage_batch(seed, n=8):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, 4, 4, 1)).astype(np.float32)
    ids = r.integers(0, 1_000_000, n).astype(np.int32)
    return {"inputs": (x, ids), "targets": (x.mean(axis=(1, 2, 3)) > 0).astype(np.int32)}


def train(submission, workload, params, model_state, hp, batches, key=0):
    """update_params over ``batches`` (one JAX key per step, AlgoPerf style); returns (params, model state, opt)."""
    opt = submission.init_optimizer_state(workload, params, model_state, hp, jax.random.PRNGKey(0))
    for step, batch in enumerate(batches):
        rng = jax.random.fold_in(jax.random.PRNGKey(key), step)
        opt, params, model_state = submission.update_params(
            workload, params, None, model_state, hp, batch, workload.loss_type, opt, [], step, rng
        )
    return params, model_state, opt


def kron_states(tree):
    """Every precond_jax.ScaleByKronState and ScaleByNadamState inside an optax state."""
    kinds = (precond_jax.ScaleByKronState, precond_jax.ScaleByNadamState)
    return [x for x in jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, kinds)) if isinstance(x, kinds)]


FORCED = dict(precondition_frequency=1, start_preconditioning_step=1)
# Each compiles a Kronecker step (~15 s of CPU here): three in the default run, the rest with `make test-slow`.
FAST = ("nadamw", "shampoo")  # the demo's pair by default; the rest (soap alone ~25 s) under make test-slow


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in NAMES])
def test_five_steps_with_preconditioning_forced_on_change_the_parameters_finitely(name):
    workload = FlaxWorkload(Coverage(), coverage_batch(0)["inputs"], step_hint=20)
    params, model_state = workload.init_model_fn(jax.random.PRNGKey(0))
    before = jax.tree.map(np.array, params)
    hp = point(name, warmup_factor=0.0, dropout_rate=0.1, **(FORCED if name != "nadamw" else {}))
    params, model_state, (opt_state, _) = train(
        jax_submission(name), workload, params, model_state, hp, [coverage_batch(s) for s in range(5)]
    )
    for (path, b), a in zip(jax.tree_util.tree_flatten_with_path(before)[0], jax.tree.leaves(params), strict=True):
        assert np.all(np.isfinite(a)), jax.tree_util.keystr(path)
        if "Embed" not in jax.tree_util.keystr(path):  # the table: only 40 of its million rows are used
            assert not np.allclose(a, b), f"{name}: {jax.tree_util.keystr(path)} did not move"
    assert model_state["batch_stats"]["BatchNorm_0"]["mean"].any()  # the batch norm state came back
    assert all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(opt_state))  # a pytree of arrays
    if name != "nadamw":
        counts = precond_jax.counters(opt_state)
        assert counts["refreshes"] > 0 and counts["failures"] == 0 and counts["nonfinite_skips"] == 0


def mlp_setup(seed=0, steps=10, n=32, dtype=np.float32):
    r = np.random.default_rng(seed)
    weights = {
        "0.weight": r.normal(0, 0.5, (16, 8)).astype(dtype),
        "0.bias": r.normal(0, 0.1, 16).astype(dtype),
        "2.weight": r.normal(0, 0.5, (4, 16)).astype(dtype),
        "2.bias": r.normal(0, 0.1, 4).astype(dtype),
    }
    batches = [{"inputs": r.normal(0, 2.0, (n, 8)).astype(dtype), "targets": r.integers(0, 4, n)} for _ in range(steps)]
    return weights, batches


def to_flax(weights):
    return {
        "Dense_0": {"kernel": weights["0.weight"].T, "bias": weights["0.bias"]},
        "Dense_1": {"kernel": weights["2.weight"].T, "bias": weights["2.bias"]},
    }


def relative_errors(jax_params, model) -> dict[str, float]:
    """||jax - torch|| / ||torch|| per parameter, flax kernels transposed back to torch's layout."""
    ours = {n: p.detach().numpy() for n, p in model.named_parameters()}
    theirs = to_flax(ours)
    out = {}
    for path, a in jax.tree_util.tree_flatten_with_path(jax_params)[0]:
        b = theirs[path[0].key][path[1].key]
        out[jax.tree_util.keystr(path)] = float(np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b))
    return out


def parity(name, dtype=np.float32, **overrides) -> tuple[dict[str, float], float, dict]:
    """10 steps of the whole recipe (warmup + cosine to zero at step_hint 10, weight decay, label smoothing 0.1,
    gradient clipping active), torch and JAX submissions from the same weights on the same batches:
    (relative difference per parameter, the smallest relative distance a parameter moved, JAX counters)."""
    weights, batches = mlp_setup(dtype=dtype)
    hp = point(name, warmup_factor=0.2, grad_clip=0.5, **overrides)
    assert hp.label_smoothing == 0.1 and hp.weight_decay > 0.1

    torch_workload = TorchMLPWorkload(weights)
    model, _ = torch_workload.init_model_fn(prng.PRNGKey(0))
    logits = model(torch.from_numpy(batches[0]["inputs"]))
    F.cross_entropy(logits, torch.from_numpy(batches[0]["targets"]), label_smoothing=0.1).backward()
    assert torch.sqrt(sum((p.grad**2).sum() for p in model.parameters())) > 2 * hp.grad_clip  # clipping bites
    model.zero_grad()
    submission = torch_submission(name)
    state = submission.init_optimizer_state(torch_workload, model, None, hp, prng.PRNGKey(0))
    for step, b in enumerate(batches):
        batch = {"inputs": torch.from_numpy(b["inputs"]), "targets": torch.from_numpy(b["targets"])}
        state, model, _ = submission.update_params(
            torch_workload, model, None, None, hp, batch, None, state, [], step, prng.PRNGKey(step)
        )

    workload = FlaxWorkload(MLP(), batches[0]["inputs"])
    params, _ = workload.init_model_fn(jax.random.PRNGKey(0), params=jax.tree.map(jnp.asarray, to_flax(weights)))
    start = jax.tree.map(np.array, params)
    params, _, (opt_state, _) = train(jax_submission(name), workload, params, None, hp, batches)
    pairs = zip(jax.tree.leaves(params), jax.tree.leaves(start), strict=True)
    moved = min(np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b) for a, b in pairs)
    return relative_errors(params, model), moved, precond_jax.counters(opt_state)


# fp32 Shampoo at eps 1e-6: at the default 1e-8, the output layer's right factor (16 x 16, rank <= 4 per step) is
# nearly singular at the first refresh and fp32 eigh rounding, amplified, leaves 3e-4 (fp64 below: 6e-13).
PARITY = {"nadamw": {}, "shampoo": dict(precondition_frequency=2, start_preconditioning_step=2, eps=1e-6)}


@pytest.mark.parametrize("name", PARITY)
def test_torch_and_jax_submissions_agree_on_the_same_mlp(name):
    errors, moved, counters = parity(name, **PARITY[name])
    assert max(errors.values()) < 1e-5, errors  # measured: nadamw 4e-7, shampoo 3e-6
    assert moved > 100 * max(errors.values())  # the agreement is not that of two runs that barely moved
    assert counters["refreshes"] > 0 or name == "nadamw"


FP64_DRIVER = """
import json, sys
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
import compat  # makes `algoperf` resolve, as conftest does under pytest
from tests import test_submissions_jax as t
errors, _, _ = t.parity("shampoo", np.float64, precondition_frequency=2, start_preconditioning_step=2,
                        factor_dtype="float64")
print(json.dumps(errors))
"""


@pytest.mark.slow
def test_torch_and_jax_shampoo_agree_in_fp64_at_the_default_eps():
    """The recipe itself, not fp32 rounding: at eps 1e-8 in fp64 (its own process: x64 is global)."""
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, "-c", FP64_DRIVER], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    errors = json.loads(proc.stdout.strip().splitlines()[-1])
    assert max(errors.values()) < 1e-10, errors  # measured: 6e-13


def test_dropout_rate_reaches_the_model():
    weights, batches = mlp_setup(steps=1)
    workload = FlaxWorkload(MLP(), batches[0]["inputs"])
    runs = {}
    for rate, key in ((0.0, 1), (0.0, 2), (0.5, 1)):
        params, _ = workload.init_model_fn(jax.random.PRNGKey(0), params=jax.tree.map(jnp.asarray, to_flax(weights)))
        hp = point("nadamw", warmup_factor=0.0, dropout_rate=rate)
        runs[rate, key] = jax.tree.leaves(train(jax_submission("nadamw"), workload, params, None, hp, batches, key)[0])
    assert all(np.array_equal(a, b) for a, b in zip(runs[0.0, 1], runs[0.0, 2], strict=True))  # rate 0: no noise
    assert not all(np.array_equal(a, b) for a, b in zip(runs[0.0, 1], runs[0.5, 1], strict=True))


# The torch coverage model's parameters and the flax coverage model's, kind for kind.
TWINS = {
    "conv.weight": "['Conv_0']['kernel']",
    "conv.bias": "['Conv_0']['bias']",
    "batch_norm.weight": "['BatchNorm_0']['scale']",
    "batch_norm.bias": "['BatchNorm_0']['bias']",
    "embed.weight": "['Embed_0']['embedding']",
    "wide.weight": "['Dense_0']['kernel']",
    "wide.bias": "['Dense_0']['bias']",
    "layer_norm.weight": "['LayerNorm_0']['scale']",
    "layer_norm.bias": "['LayerNorm_0']['bias']",
    "out.weight": "['Dense_1']['kernel']",
    "out.bias": "['Dense_1']['bias']",
}


def test_every_parameter_kind_goes_where_the_torch_glue_sends_it():
    torch_workload = CoverageWorkload()
    model, _ = torch_workload.init_model_fn(prng.PRNGKey(0))
    groups, adam = glue.route_parameters(model, torch_workload.model_params_types)
    torch_routes = {n: routing.ADAM for n, _ in adam}
    for g in groups:
        torch_routes |= {
            n: routing.KRONECKER if g.get("precondition", True) else routing.UNPRECONDITIONED for n, _ in g["params"]
        }
    assert set(torch_routes) == set(TWINS)

    workload = FlaxWorkload(Coverage(), coverage_batch(0)["inputs"])
    params, _ = workload.init_model_fn(jax.random.PRNGKey(0))
    jax_routes = glue_jax.route_parameters(params, workload.model_params_types)
    assert {t: jax_routes[f] for t, f in TWINS.items()} == torch_routes

    # and the built optimizer holds them so: the table in NAdamW, the kernels preconditioned in torch's layout
    build = jax_submission("shampoo")._build
    hp = recipe.BASELINE_DEFAULTS
    opt = build(params, workload.model_params_types, hp, None, 1e-3)
    states = kron_states(opt.init(params))
    (kron,) = [s for s in states if isinstance(s, precond_jax.ScaleByKronState)]
    (adam,) = [s for s in states if isinstance(s, precond_jax.ScaleByNadamState)]
    assert [x.shape for x in jax.tree.leaves(adam.first_moment)] == [(1_000_000, 2)]
    preconditioned = sorted(g["first_moment"].shape[1:] for g in kron.groups if "variant" in g)
    conv = blocking.plan(tuple(model.conv.weight.shape), 1024).blocks[0].shape  # torch's (4, 1, 3, 3) as (4, 9)
    assert preconditioned == sorted([conv, (16, 66), (2, 16)])  # the kernels (outputs, inputs), as in torch


def test_flax_conv_kernels_are_preconditioned_as_torch_conv_weights():
    """Shampoo on a (c_out, c_in, kh, kw) torch conv weight and on its (kh, kw, c_in, c_out) flax twin, same
    gradients: same updates, because the glue hands precond_jax the kernel in torch's layout (without that hook,
    blocking would keep kh as a factor of its own and the updates would differ)."""
    r = np.random.default_rng(0)
    weight = r.normal(size=(6, 3, 3, 3)).astype(np.float32)
    grads = [r.normal(size=weight.shape).astype(np.float32) for _ in range(4)]
    options = dict(precondition_frequency=1, start_preconditioning_step=1, eps=1e-6)

    p = torch.nn.Parameter(torch.from_numpy(weight.copy()))
    opt = precond.Shampoo([p], lr=0.1, **options)
    for g in grads:
        p.grad = torch.from_numpy(g)
        opt.step()

    def jax_run(types):
        kernel = {"conv": {"kernel": jnp.asarray(weight.transpose(2, 3, 1, 0))}}
        tx = glue_jax.kronecker(precond_jax.shampoo, **options)(kernel, types, recipe.TrainingHParams(), None, 0.1)
        state, update = tx.init(kernel), jax.jit(tx.update)
        for g in grads:
            updates, state = update({"conv": {"kernel": jnp.asarray(g.transpose(2, 3, 1, 0))}}, state, kernel)
            kernel = optax.apply_updates(kernel, updates)
        return np.asarray(kernel["conv"]["kernel"]).transpose(3, 2, 0, 1)

    expected = p.detach().numpy()
    ours = jax_run({"conv": {"kernel": PT.CONV_WEIGHT}})
    assert np.abs(ours - expected).max() < 1e-5 * np.abs(expected).max()
    untyped = jax_run(None)  # no type: left in flax's layout, blocked (3, 3*3*6): another preconditioner
    assert np.abs(untyped - expected).max() > 1e-3 * np.abs(expected).max()


@pytest.mark.parametrize("name", NAMES)
def test_both_frameworks_declare_the_same_hyperparameters_and_jax_files_import_only_the_api(name):
    torch_module, jax_module = torch_submission(name), jax_submission(name)
    assert jax_module.HYPERPARAMETERS == torch_module.HYPERPARAMETERS
    assert jax_module.SELF_TUNING_DEFAULTS is torch_module.SELF_TUNING_DEFAULTS
    assert all(callable(getattr(jax_module, fn)) for fn in REQUIRED)
    allowed = ("algoperf", "precond_jax", "submissions.glue_jax", f"submissions.{name}.options")
    with open(jax_module.__file__) as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            full = f"{node.module}.{node.names[0].name}" if node.module == "submissions" else node.module
            assert full.startswith(allowed), f"{name} imports {full}"
        elif isinstance(node, ast.Import):
            assert all(a.name.startswith(allowed) for a in node.names), f"{name} imports {ast.dump(node)}"


@pytest.mark.parametrize(("warmup_factor", "step_hint"), [(0.1, 50), (0.0, 20), (1.0, 7), (0.3, 1)])
def test_the_schedule_is_the_torch_glues(warmup_factor, step_hint):
    hp = recipe.TrainingHParams(learning_rate=0.3, warmup_factor=warmup_factor)
    schedule = glue_jax.lr_schedule(hp, step_hint)
    steps = range(step_hint + 3)
    expected = [recipe.scheduled_lr(hp, s, step_hint) for s in steps]
    assert np.allclose([float(schedule(s)) for s in steps], expected, rtol=1e-6, atol=1e-7)


def test_the_optimizer_state_survives_a_round_trip_through_numpy():
    """What a checkpoint holds (AlgoPerf saves the first element of the optimizer state) resumes exactly."""
    weights, batches = mlp_setup(steps=4)
    workload = FlaxWorkload(MLP(), batches[0]["inputs"])
    submission = jax_submission("shampoo")
    hp = point("shampoo", warmup_factor=0.0, **FORCED)
    params, _ = workload.init_model_fn(jax.random.PRNGKey(0), params=jax.tree.map(jnp.asarray, to_flax(weights)))
    params, _, (opt_state, update) = train(submission, workload, params, None, hp, batches[:2])
    saved = jax.tree.map(np.array, (params, opt_state))

    def two_more(params, opt_state):
        for step in (2, 3):
            rng = jax.random.PRNGKey(step)
            (opt_state, _), params, _ = submission.update_params(
                workload, params, None, None, hp, batches[step], None, (opt_state, update), [], step, rng
            )
        return jax.tree.leaves(params)

    live = two_more(params, opt_state)
    resumed = two_more(*jax.tree.map(jnp.asarray, saved))
    assert all(np.array_equal(a, b) for a, b in zip(live, resumed, strict=True))
