"""The JAX (flax) workloads against their PyTorch twins: the same batches from the same data_rng, the same loss
and logits at initialisation given the same (converted) weights in train mode without dropout and in eval mode,
the same initial distributions, the same evaluation metrics, parameter types over every leaf, and the same
constants. Each workload's model is compiled a few times only: batches are 32 examples, evaluations 64."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from algoperf import jax_sharding_utils, spec
from compat import prng
from workloads import losses, losses_jax
from workloads.base_jax import InMemoryJaxWorkload
from workloads.convert import flax_params, state_dict_to_flax
from workloads.nn import param_types as torch_param_types
from workloads.nn_jax import param_types as jax_param_types
from workloads.param_names import flax_module_path
from workloads.registry import JAX_WORKLOADS, WORKLOADS, WorkloadError, get_workload

BATCH = 32
EVAL_EXAMPLES = 64
TRAIN, EVAL = spec.ForwardPassMode.TRAIN, spec.ForwardPassMode.EVAL
CONSTANTS = (
    "target_metric_name",
    "validation_target_value",
    "test_target_value",
    "loss_type",
    "lower_is_better",
    "num_train_examples",
    "num_eval_train_examples",
    "num_validation_examples",
    "num_test_examples",
    "eval_batch_size",
    "train_mean",
    "train_stddev",
    "max_allowed_runtime_sec",
    "eval_period_time_sec",
    "step_hint",
    "output_param_prefixes",
)


def leaves_by_path(tree) -> dict[tuple, object]:
    return {tuple(k.key for k in path): leaf for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def torch_leaf_paths(model) -> dict[str, tuple]:
    """named_parameters() names to the flax paths the converter gives them."""
    converted = leaves_by_path(flax_params(model))
    out = {}
    for module_name, module in model.named_modules():
        for leaf, _ in module.named_parameters(recurse=False):
            path = flax_module_path(module_name)
            matches = [p for p in converted if p[:-1] == path and (len(p) - 1 == len(path))]
            name = {"weight": ("kernel", "scale", "embedding")}.get(leaf, (leaf,))
            (match,) = [p for p in matches if p[-1] in name]
            out[f"{module_name}.{leaf}" if module_name else leaf] = match
    return out


@pytest.fixture(scope="module", params=sorted(JAX_WORKLOADS))
def pair(request):
    """Both twins with the PyTorch model's initial weights, and the first train batch of each queue."""
    name = request.param
    tw, jw = get_workload(name), get_workload(name, "jax")
    model, _ = tw.init_model_fn(prng.PRNGKey(0))
    params = jax_sharding_utils.replicate(flax_params(model))
    data_rng = prng.PRNGKey(1)
    tq = tw._build_input_queue(data_rng, "train", "", BATCH)
    jq = jw._build_input_queue(data_rng, "train", "", BATCH)
    return name, tw, jw, model, params, (next(tq), next(tq)), (next(jq), next(jq))


def as_numpy(tree):
    return jax.tree.map(lambda x: x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x), tree)


def test_registry_gives_the_jax_ports_and_names_them_for_the_others():
    for name in JAX_WORKLOADS:
        jw, tw = get_workload(name, "jax"), get_workload(name)
        assert isinstance(jw, InMemoryJaxWorkload) and not isinstance(tw, InMemoryJaxWorkload)
        assert {c: getattr(jw, c) for c in CONSTANTS} == {c: getattr(tw, c) for c in CONSTANTS}
    unported = sorted(set(WORKLOADS) - set(JAX_WORKLOADS))
    assert unported, "every workload has a JAX port: turn this into a check that none is missing"
    with pytest.raises(WorkloadError, match=r"has no JAX port yet; JAX workloads: mnist") as e:
        get_workload(unported[0], "jax")
    assert "\n" not in str(e.value) and all(n in str(e.value) for n in JAX_WORKLOADS)


@pytest.mark.parametrize("framework", ["pytorch", "jax"])
def test_classification_summary_has_the_closed_form_accuracy_and_loss(framework):
    """One summarize for both frameworks (classification_common.py). Logits 0 but ln 9 at one class of ten give
    that class probability 9/18 and every other 1/18: two examples right (loss ln 2), two wrong (loss ln 18)."""
    logits = np.zeros((4, 10), np.float32)
    logits[np.arange(4), [3, 1, 4, 1]] = math.log(9)
    targets = np.array([3, 1, 5, 9])
    as_array = torch.from_numpy if framework == "pytorch" else jnp.asarray
    summary = get_workload("mnist", framework).summarize([({"targets": as_array(targets)}, as_array(logits))], 4)
    assert summary["accuracy"] == 0.5
    assert summary["loss"] == pytest.approx((2 * math.log(2) + 2 * math.log(18)) / 4, rel=1e-6)


@pytest.mark.integration
def test_same_batches_from_both_input_queues(pair):
    name, tw, jw, _, _, tbatches, jbatches = pair
    for tb, jb in zip(tbatches, jbatches, strict=True):
        t, j = as_numpy(tb), as_numpy(jb)
        assert jax.tree.structure(t) == jax.tree.structure(j)
        for a, b in zip(jax.tree.leaves(t), jax.tree.leaves(j), strict=True):
            assert a.shape == b.shape and np.array_equal(a, b.astype(a.dtype))
    batch_sharding = jax_sharding_utils.get_batch_dim_sharding()
    assert all(x.sharding == batch_sharding for x in jax.tree.leaves(jbatches[0]))
    assert not np.array_equal(as_numpy(tbatches[0])["targets"], as_numpy(tbatches[1])["targets"])
    # Evaluation splits come in order, the same in both.
    tv = next(tw._build_input_queue(None, "validation", "", 5))
    jv = next(jw._build_input_queue(None, "validation", "", 5))
    assert np.array_equal(as_numpy(tv)["targets"], np.asarray(jv["targets"]).astype(as_numpy(tv)["targets"].dtype))


@pytest.mark.integration
def test_same_loss_at_init_in_train_and_eval_mode(pair):
    name, tw, jw, model, params, tbatches, jbatches = pair
    tb, jb = tbatches[0], jbatches[0]
    forward = jax.jit(
        lambda p, b: tuple(jw.model_fn(p, b, None, m, jax.random.PRNGKey(0), False, 0.0)[0] for m in (TRAIN, EVAL))
    )
    for mode, jlogits in zip((TRAIN, EVAL), forward(params, jb), strict=True):
        tlogits, _ = tw.model_fn(model, tb, None, mode, prng.PRNGKey(0), False, 0.0)
        tlogits = tlogits.detach()
        scale = float(tlogits.abs().max())
        np.testing.assert_allclose(np.asarray(jlogits), tlogits.numpy(), rtol=0, atol=1e-5 * max(scale, 1.0))
        for smoothing in (0.0, 0.1):
            t = tw.loss_fn(tb["targets"], tlogits, label_smoothing=smoothing)
            j = jw.loss_fn(jb["targets"], jlogits, label_smoothing=smoothing)
            t_mean, j_mean = float(t["summed"] / t["n_valid_examples"]), float(j["summed"] / j["n_valid_examples"])
            assert j_mean == pytest.approx(t_mean, rel=1e-5), (name, mode, smoothing)
            assert float(j["n_valid_examples"]) == float(t["n_valid_examples"])
            assert tuple(j["per_example"].shape) == tuple(t["per_example"].shape)


@pytest.mark.integration
def test_same_eval_metrics_for_the_same_weights(pair):
    name, tw, jw, model, params, _, _ = pair
    t = tw._eval_model_on_split("validation", EVAL_EXAMPLES, BATCH, model, None, prng.PRNGKey(0), "")
    j = jw._eval_model_on_split("validation", EVAL_EXAMPLES, BATCH, params, None, jax.random.PRNGKey(0), "")
    assert set(j) == set(t)
    for metric in t:
        assert j[metric] == pytest.approx(t[metric], rel=1e-5, abs=1.5 / EVAL_EXAMPLES * (metric == "accuracy")), (
            name,
            metric,
        )


@pytest.mark.integration
def test_init_matches_the_torch_distributions_and_types_cover_every_leaf(pair):
    """Same tree and shapes as the converted PyTorch model; each leaf drawn as PyTorch draws it: Linear layers
    U(+-1/sqrt(fan_in)), LayerNorm ones and zeros, embeddings N(0, std) with PyTorch's std."""
    name, tw, jw, model, _, _, _ = pair
    jparams, state = jw.init_model_fn(jax.random.PRNGKey(0))
    assert state is None
    ours, theirs = leaves_by_path(jparams), leaves_by_path(flax_params(model))
    assert {p: v.shape for p, v in ours.items()} == {p: v.shape for p, v in theirs.items()}
    assert {p: s.shape_tuple for p, s in leaves_by_path(jw.param_shapes).items()} == {
        p: v.shape for p, v in ours.items()
    }
    kernels = {p[:-1]: v.shape[0] for p, v in theirs.items() if p[-1] == "kernel"}
    for path, value in ours.items():
        value, reference = np.asarray(value), theirs[path]
        if path[:-1] in kernels:  # a Linear layer
            bound = 1 / math.sqrt(kernels[path[:-1]])
            assert np.abs(value).max() <= bound, path
            if value.size >= 1000:
                assert np.std(value) == pytest.approx(bound / math.sqrt(3), rel=0.1), path
        elif reference.std() == 0:
            assert np.array_equal(value, reference), path
        else:
            assert np.std(value) == pytest.approx(np.std(reference), rel=0.1), path
            assert abs(np.mean(value)) < 0.1 * np.std(reference), path
    # Parameter types: one per leaf, the PyTorch twin's type for the same parameter.
    types = leaves_by_path(jw.model_params_types)
    assert set(types) == set(ours) and all(isinstance(t, spec.ParameterType) for t in types.values())
    torch_types = torch_param_types(model)
    assert {path: torch_types[n] for n, path in torch_leaf_paths(model).items()} == types
    assert leaves_by_path(jax_param_types(flax_params(model))) == types
    # Output parameters: exactly the PyTorch twin's.
    outputs = {path for n, path in torch_leaf_paths(model).items() if tw.is_output_params(n)}
    assert outputs and {p for p in ours if jw.is_output_params("/".join(p))} == outputs
    assert all(jw.is_output_params(p) for p in outputs)


@pytest.mark.integration
def test_same_gradients_for_the_same_weights_and_batch():
    """What an optimizer sees: d(mean loss)/d(params) of the MLP agree leaf by leaf (mnist: compiled in ~1 s)."""
    tw, jw = get_workload("mnist"), get_workload("mnist", "jax")
    model, _ = tw.init_model_fn(prng.PRNGKey(0))
    tb = next(tw._build_input_queue(prng.PRNGKey(1), "train", "", BATCH))
    jb = next(jw._build_input_queue(prng.PRNGKey(1), "train", "", BATCH))
    loss = tw.loss_fn(tb["targets"], tw.model_fn(model, tb, None, TRAIN, None, False)[0], label_smoothing=0.1)
    (loss["summed"] / loss["n_valid_examples"]).backward()

    def jax_loss(params):
        out = jw.loss_fn(jb["targets"], jw.model_fn(params, jb, None, TRAIN, None, False)[0], label_smoothing=0.1)
        return out["summed"] / out["n_valid_examples"]

    grads = leaves_by_path(jax.jit(jax.grad(jax_loss))(flax_params(model)))
    for name, path in torch_leaf_paths(model).items():
        expected = model.get_parameter(name).grad.numpy()
        expected = expected.T if path[-1] == "kernel" else expected
        np.testing.assert_allclose(grads[path], expected, rtol=1e-4, atol=1e-7 * np.abs(expected).max())


def test_converter_takes_a_state_dict_and_refuses_layers_without_a_port():
    tw = get_workload("mnist")
    model, _ = tw.init_model_fn(prng.PRNGKey(0))
    other, _ = tw.init_model_fn(prng.PRNGKey(1))
    converted = state_dict_to_flax(other, model.state_dict())
    kernel = model.state_dict()["net.layer1.weight"].numpy()
    assert np.array_equal(converted["net"]["layer1"]["kernel"], kernel.T)
    with pytest.raises(ValueError, match="no flax counterpart for the parameter 'weight' of Conv2d"):
        flax_params(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)))


@pytest.mark.integration
def test_dropout_applies_in_train_mode_only_and_follows_the_rng():
    jw = get_workload("mnist", "jax")
    params = flax_params(get_workload("mnist").init_model_fn(prng.PRNGKey(0))[0])
    batch = {"inputs": jnp.ones((4, 1, 28, 28))}
    run = jax.jit(lambda mode, rng, rate: jw.model_fn(params, batch, None, mode, rng, False, rate)[0], static_argnums=0)
    k1, k2 = jax.random.PRNGKey(1), jax.random.PRNGKey(2)
    plain = run(EVAL, k1, 0.5)
    np.testing.assert_allclose(run(TRAIN, k1, 0.0), plain, rtol=1e-6, atol=1e-6)  # another program: rounding
    dropped = run(TRAIN, k1, 0.5)
    assert not np.allclose(dropped, plain) and np.array_equal(dropped, run(TRAIN, k1, 0.5))
    assert not np.array_equal(dropped, run(TRAIN, k2, 0.5))


def test_model_fn_takes_algoperf_batch_norm_keyword_and_ignores_it():
    """AlgoPerf's JAX batch-norm workloads take ``use_running_average_bn``, and published submissions pass it to
    every workload: the same logits with it as without (no model here has batch norm)."""
    jw = get_workload("mnist", "jax")
    params = flax_params(get_workload("mnist").init_model_fn(prng.PRNGKey(0))[0])
    batch = {"inputs": jnp.ones((4, 1, 28, 28))}
    plain = jw.model_fn(params, batch, None, TRAIN, jax.random.PRNGKey(1), True)[0]
    for flag in (True, False):
        kw = jw.model_fn(params, batch, None, TRAIN, jax.random.PRNGKey(1), True, use_running_average_bn=flag)[0]
        assert np.array_equal(kw, plain)


LOGITS = np.random.default_rng(0).normal(size=(6, 5)).astype(np.float32)
LABELS = np.array([0, 4, 2, 2, 1, 3])
MASK = np.array([1.0, 1.0, 0.0, 1.0, 0.0, 1.0], np.float32)


@pytest.mark.integration
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("masked", [False, True])
def test_losses_match_the_torch_ones(smoothing, masked):
    cases = [  # torch loss, jax loss, labels, logits, mask (per example; broadcast over the sigmoid's tasks)
        (losses.softmax_cross_entropy, losses_jax.softmax_cross_entropy, LABELS, LOGITS, MASK),
        (losses.sigmoid_cross_entropy, losses_jax.sigmoid_cross_entropy, LOGITS > 0.3, 3 * LOGITS, MASK[:, None]),
    ]
    for torch_loss, jax_loss, labels, logits, mask in cases:
        t_mask, j_mask = (torch.as_tensor(mask), jnp.asarray(mask)) if masked else (None, None)
        t = torch_loss(torch.as_tensor(labels), torch.as_tensor(logits), t_mask, smoothing)
        j = jax_loss(jnp.asarray(labels), jnp.asarray(logits), j_mask, smoothing)
        np.testing.assert_allclose(np.asarray(j["per_example"]), t["per_example"].numpy(), rtol=1e-6, atol=1e-6)
        assert float(j["summed"]) == pytest.approx(float(t["summed"]), rel=1e-6)
        assert float(j["n_valid_examples"]) == float(t["n_valid_examples"])
        traced = jax.jit(jax_loss)(jnp.asarray(labels), jnp.asarray(logits), j_mask, smoothing)  # a jitted argument
        assert float(traced["summed"]) == pytest.approx(float(t["summed"]), rel=1e-6)
