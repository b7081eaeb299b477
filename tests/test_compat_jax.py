"""The stand-in's JAX pieces (``jax_sharding_utils``, ``param_utils.jax_param_*``, ``random_utils`` on real
keys), and the framework boundary: the PyTorch paths import no jax, the JAX workloads no torch."""

import subprocess
import sys

import jax
import numpy as np
import pytest

from algoperf import jax_sharding_utils, param_utils, random_utils, spec
from compat import prng
from tests.cli_helpers import ROOT

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

BOUNDARY_PROBE = (
    """
import sys, compat
import algoperf.spec, algoperf.random_utils, algoperf.param_utils, algoperf.pytorch_utils, workloads.registry
import workloads.base, workloads.mnist.workload, workloads.stdlib_lm.workload, workloads.flights_dlrm.workload
import workloads.fashion_vit.workload
print('jax' in sys.modules)
""",
    """
import sys, compat
from workloads.registry import JAX_WORKLOADS, get_workload
for name in JAX_WORKLOADS:
    get_workload(name, 'jax')
import algoperf.jax_sharding_utils, algoperf.param_utils, algoperf.random_utils
print('torch' in sys.modules)
""",
)


@pytest.mark.parametrize("probe", BOUNDARY_PROBE, ids=["torch_paths_without_jax", "jax_paths_without_torch"])
def test_framework_boundary(probe):
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]


def test_sharding_is_a_batch_mesh_over_the_local_devices():
    mesh = jax_sharding_utils.get_mesh()
    assert mesh.axis_names == ("batch",) and list(mesh.devices.flat) == jax.devices()
    tree = {"a": np.arange(8.0).reshape(4, 2), "b": [np.ones(4)]}
    sharded, replicated = jax_sharding_utils.shard_along_batch_dim(tree), jax_sharding_utils.replicate(tree)
    for leaf in jax.tree.leaves(sharded):
        assert leaf.sharding == jax_sharding_utils.get_batch_dim_sharding()
        assert leaf.sharding.spec == jax.sharding.PartitionSpec("batch")
    for leaf in jax.tree.leaves(replicated):
        assert leaf.sharding == jax_sharding_utils.get_replicate_sharding() and leaf.sharding.is_fully_replicated
    np.testing.assert_array_equal(sharded["a"], tree["a"])


def test_random_utils_give_jax_keys_under_jax_and_the_numpy_emulation_otherwise(monkeypatch):
    assert np.array_equal(random_utils.PRNGKey(3), prng.PRNGKey(3))
    assert np.array_equal(random_utils.split(prng.PRNGKey(3), 4), prng.split(prng.PRNGKey(3), 4))
    monkeypatch.setattr(random_utils, "FRAMEWORK", "jax")
    key = random_utils.PRNGKey(3)
    assert isinstance(key, jax.Array) and np.array_equal(key, jax.random.PRNGKey(3))
    assert np.array_equal(random_utils.split(key, 4), jax.random.split(jax.random.PRNGKey(3), 4))
    assert np.array_equal(random_utils.fold_in(key, 7), jax.random.fold_in(jax.random.PRNGKey(3), 7))


def test_jax_param_types_follow_flax_and_algoperf_names():
    pt = spec.ParameterType
    params = {
        "Dense_0": {"kernel": np.zeros((3, 4)), "bias": np.zeros(4)},
        "Conv_0": {"kernel": np.zeros((3, 3, 1, 8)), "bias": np.zeros(8)},
        "Embed_0": {"embedding": np.zeros((10, 4))},
        "LayerNorm_0": {"scale": np.ones(4), "bias": np.zeros(4)},
        "BatchNorm_0": {"scale": np.ones(4), "bias": np.zeros(4)},
        "Encoder": {
            "pos_embedding": np.zeros((1, 5, 4)),
            "MultiHeadDotProductAttention_0": {
                name: {"kernel": np.zeros((4, 4)), "bias": np.zeros(4)} for name in ("query", "key", "value", "out")
            },
        },
    }
    shapes = param_utils.jax_param_shapes(params)
    assert shapes["Conv_0"]["kernel"] == spec.ShapeTuple((3, 3, 1, 8))
    types = param_utils.jax_param_types(shapes)
    attention = {"query": pt.ATTENTION_Q, "key": pt.ATTENTION_K, "value": pt.ATTENTION_V, "out": pt.ATTENTION_OUT}
    assert types == {
        "Dense_0": {"kernel": pt.WEIGHT, "bias": pt.BIAS},
        "Conv_0": {"kernel": pt.CONV_WEIGHT, "bias": pt.BIAS},
        "Embed_0": {"embedding": pt.EMBEDDING},
        "LayerNorm_0": {"scale": pt.LAYER_NORM_SCALE, "bias": pt.LAYER_NORM_BIAS},
        "BatchNorm_0": {"scale": pt.BATCH_NORM_SCALE, "bias": pt.BATCH_NORM_BIAS},
        "Encoder": {
            "pos_embedding": pt.EMBEDDING,
            "MultiHeadDotProductAttention_0": {
                k: {"kernel": v, "bias": pt.ATTENTION_BIAS} for k, v in attention.items()
            },
        },
    }
