"""flax building blocks of the JAX workloads, initialised as their PyTorch twins are (``torch.nn`` defaults),
and the parameter types of their trees.

Layers are named as the PyTorch models name theirs (``workloads.param_names``), so ``workloads.convert`` maps
one model's weights onto the other's and the types below agree with ``workloads.nn.param_types``.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from algoperf import spec
from workloads.losses_jax import is_zero

LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's (flax's default is 1e-6)


def uniform(bound: float):
    """U(-bound, bound), the distribution of ``torch.nn.Linear``'s weight and bias for bound 1/sqrt(fan_in)."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def normal(std: float):
    def init(key, shape, dtype=jnp.float32):
        return std * jax.random.normal(key, shape, dtype)

    return init


class Linear(nn.Module):
    """``torch.nn.Linear``: kernel (in, out) (the transpose of torch's weight), bias, both U(+-1/sqrt(in))."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        bound = 1.0 / math.sqrt(x.shape[-1])
        kernel = self.param("kernel", uniform(bound), (x.shape[-1], self.features))
        bias = self.param("bias", uniform(bound), (self.features,))
        return x @ kernel + bias


def layer_norm(name: str) -> nn.LayerNorm:
    """``torch.nn.LayerNorm``: scale 1, bias 0, eps 1e-5, the two-pass variance."""
    return nn.LayerNorm(epsilon=LAYER_NORM_EPS, use_fast_variance=False, name=name)


def mlp(x: jax.Array, widths: tuple[int, ...], last_activation: bool, name: str) -> jax.Array:
    """``workloads.nn.mlp`` inside a compact method: Linear layers ``<name>_0``, ``<name>_2``, ... (the indices of
    the Sequential) to ``widths[1:]``, ReLU between them (and after the last if ``last_activation``)."""
    for i, width in enumerate(widths[1:]):
        x = Linear(width, name=f"{name}_{2 * i}")(x)
        if last_activation or i < len(widths) - 2:
            x = nn.relu(x)
    return x


def dropout(module: nn.Module, x: jax.Array, rate, train: bool) -> jax.Array:
    """Inverted dropout with the module's 'dropout' rng; ``rate`` may be traced (a jitted hyperparameter)."""
    if not train or is_zero(rate):
        return x
    keep = jax.random.bernoulli(module.make_rng("dropout"), 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


_ATTENTION = {"qkv": "ATTENTION_QKV", "query": "ATTENTION_Q", "kv": "ATTENTION_KV", "out": "ATTENTION_OUT"}


def param_types(params) -> dict:
    """AlgoPerf parameter types of a parameter tree of the models built here, as a tree of the same keys."""
    return _types(params, ())


def _types(tree, path: tuple[str, ...]):
    if hasattr(tree, "items"):
        return {k: _types(v, (*path, k)) for k, v in tree.items()}
    pt = spec.ParameterType
    leaf, module = path[-1], path[-2] if len(path) > 1 else ""
    is_bias = leaf == "bias"
    if leaf in ("embedding", "pos_embedding", "cls_token"):
        return pt.EMBEDDING
    if "norm" in module:
        return pt.LAYER_NORM_BIAS if is_bias else pt.LAYER_NORM_SCALE
    if len(path) > 2 and path[-3].endswith("attention") and module in _ATTENTION:
        return pt.ATTENTION_BIAS if is_bias else pt[_ATTENTION[module]]
    if is_bias:
        return pt.BIAS
    return pt.CONV_WEIGHT if tree.ndim > 2 else pt.WEIGHT
