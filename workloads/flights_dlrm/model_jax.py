"""The DLRM of ``workloads.flights_dlrm.model`` in flax (same names and initialisation)."""

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from workloads.nn_jax import mlp, normal


class DLRM(nn.Module):
    vocab_size: int
    num_categorical: int
    num_dense: int
    embed_dim: int = 128
    bottom: tuple[int, ...] = (512, 256)
    top: tuple[int, ...] = (1024, 1024, 512, 256)

    @nn.compact
    def __call__(self, inputs: dict, dropout_rate=0.0, train: bool = False):
        """``inputs``: 'categorical' (B, F) table indices and 'dense' (B, D); returns (B,) logits."""
        del dropout_rate, train  # as the PyTorch model: AlgoPerf's small DLRM has no dropout by default
        table = nn.Embed(self.vocab_size, self.embed_dim, embedding_init=normal(self.embed_dim**-0.5), name="embedding")
        dense = mlp(inputs["dense"], (self.num_dense, *self.bottom, self.embed_dim), True, "bottom")
        features = jnp.concatenate([dense[:, None], table(inputs["categorical"])], axis=1)
        n = self.num_categorical + 1
        rows, cols = np.triu_indices(n, k=1)
        dots = jnp.einsum("bik,bjk->bij", features, features)[:, rows, cols]
        top_in = dense.shape[1] + n * (n - 1) // 2
        logits = mlp(jnp.concatenate([dense, dots], axis=1), (top_in, *self.top, 1), False, "top")
        return logits[:, 0]
