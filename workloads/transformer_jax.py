"""Pre-LayerNorm Transformer blocks in flax, the twins of ``workloads.transformer.Block`` (self-attention only:
fashion_vit's bidirectional and stdlib_lm's causal)."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from workloads.nn_jax import Linear, dropout, layer_norm


def attend(q, k, v, num_heads: int, causal: bool, drop) -> jax.Array:
    """Multi-head scaled dot-product attention of (b, t, d) queries, keys and values; (b, t, d) out. ``drop``
    applies attention dropout to the weights (as ``scaled_dot_product_attention``'s ``dropout_p``)."""
    b, t, d = q.shape
    split = lambda x: x.reshape(b, x.shape[1], num_heads, d // num_heads)  # noqa: E731
    scores = jnp.einsum("bqhd,bkhd->bhqk", split(q), split(k)) / math.sqrt(d // num_heads)
    if causal:
        scores = jnp.where(jnp.tril(jnp.ones((t, k.shape[1]), bool)), scores, -jnp.inf)
    weights = drop(jax.nn.softmax(scores, axis=-1))
    return jnp.einsum("bhqk,bkhd->bqhd", weights, split(v)).reshape(b, t, d)


class SelfAttention(nn.Module):
    width: int
    num_heads: int
    causal: bool

    @nn.compact
    def __call__(self, x, dropout_rate, train: bool) -> jax.Array:
        if self.width % self.num_heads:
            raise ValueError(f"width {self.width} is not divisible by {self.num_heads} heads")
        q, k, v = jnp.split(Linear(3 * self.width, name="qkv")(x), 3, axis=-1)
        h = attend(q, k, v, self.num_heads, self.causal, lambda w: dropout(self, w, dropout_rate, train))
        return Linear(self.width, name="out")(h)


class Block(nn.Module):
    """x + attention(LN(x)), then x + MLP(LN(x)) with a GELU (exact, as torch's) MLP of ``mlp_ratio`` times the
    width."""

    width: int
    num_heads: int
    mlp_ratio: int = 4
    causal: bool = False

    @nn.compact
    def __call__(self, x, dropout_rate=0.0, train: bool = False) -> jax.Array:
        drop = lambda h: dropout(self, h, dropout_rate, train)  # noqa: E731
        attention = SelfAttention(self.width, self.num_heads, self.causal, name="attention")
        x = x + drop(attention(layer_norm("norm1")(x), dropout_rate, train))
        h = Linear(self.mlp_ratio * self.width, name="mlp_in")(layer_norm("norm2")(x))
        return x + drop(Linear(self.width, name="mlp_out")(nn.gelu(h, approximate=False)))
