"""The small Vision Transformer of ``workloads.fashion_vit.model`` in flax (same names and initialisation)."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from workloads.nn_jax import Linear, layer_norm, normal
from workloads.transformer_jax import Block


def patches(x: jax.Array, p: int) -> jax.Array:
    """(B, C, H, W) to (B, H*W/p^2, C*p*p), row-major over patches, each flattened (channel, row, column)."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // p, p, w // p, p).transpose(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // p) * (w // p), c * p * p)


class ViT(nn.Module):
    image_size: int = 28
    patch: int = 4
    width: int = 64
    depth: int = 4
    num_heads: int = 4
    mlp_ratio: int = 4
    num_classes: int = 10

    @nn.compact
    def __call__(self, x, dropout_rate=0.0, train: bool = False):
        if self.image_size % self.patch:
            raise ValueError(f"patch size {self.patch} does not divide image size {self.image_size}")
        positions = (self.image_size // self.patch) ** 2
        pos_embedding = self.param("pos_embedding", normal(0.02), (1, positions, self.width))
        h = Linear(self.width, name="embed")(patches(x, self.patch)) + pos_embedding
        for i in range(self.depth):
            h = Block(self.width, self.num_heads, self.mlp_ratio, name=f"blocks_{i}")(h, dropout_rate, train)
        return Linear(self.num_classes, name="head")(layer_norm("norm")(jnp.mean(h, axis=1)))
