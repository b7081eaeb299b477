"""The byte-level causal LM of ``workloads.stdlib_lm.model`` in flax (same names and initialisation)."""

import flax.linen as nn

from workloads.nn_jax import Linear, layer_norm, normal
from workloads.stdlib_lm.common import VOCAB
from workloads.transformer_jax import Block


class CausalLM(nn.Module):
    seq_len: int = 128
    width: int = 128
    depth: int = 2
    num_heads: int = 4

    @nn.compact
    def __call__(self, tokens, dropout_rate=0.0, train: bool = False):
        embed = nn.Embed(VOCAB, self.width, embedding_init=normal(1.0), name="token_embedding")
        pos_embedding = self.param("pos_embedding", normal(0.02), (1, self.seq_len, self.width))
        h = embed(tokens) + pos_embedding[:, : tokens.shape[1]]
        for i in range(self.depth):
            h = Block(self.width, self.num_heads, causal=True, name=f"blocks_{i}")(h, dropout_rate, train)
        return Linear(VOCAB, name="head")(layer_norm("norm")(h))
