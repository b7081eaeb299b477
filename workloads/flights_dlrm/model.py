"""DLRM (the criteo1tb family): one embedding table for all categorical features, a bottom MLP on the dense
features, pairwise dot-product interactions, and a top MLP to one logit. The widths are AlgoPerf's DLRM-small
(embeddings 128, bottom 512-256, top 1024-1024-512-256); only the table is smaller. Narrower models reached
their best validation loss within 6 s here and then overfit, too fast to time."""

import torch
from torch import nn

from workloads.nn import mlp


class DLRM(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        num_categorical: int,
        num_dense: int,
        embed_dim: int = 128,
        bottom: tuple[int, ...] = (512, 256),
        top: tuple[int, ...] = (1024, 1024, 512, 256),
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        nn.init.normal_(self.embedding.weight, std=embed_dim**-0.5)
        self.bottom = mlp((num_dense, *bottom, embed_dim), last_activation=True)
        n = num_categorical + 1
        self.register_buffer("pairs", torch.triu_indices(n, n, offset=1), persistent=False)
        self.top = mlp((embed_dim + n * (n - 1) // 2, *top, 1), last_activation=False)

    def forward(self, inputs: dict, dropout_rate: float = 0.0) -> torch.Tensor:
        """``inputs``: 'categorical' (B, F) table indices and 'dense' (B, D); returns (B,) logits."""
        del dropout_rate  # AlgoPerf's small DLRM has none in its default configuration either
        dense = self.bottom(inputs["dense"])
        features = torch.cat([dense[:, None], self.embedding(inputs["categorical"])], dim=1)
        dots = torch.bmm(features, features.transpose(1, 2))[:, self.pairs[0], self.pairs[1]]
        return self.top(torch.cat([dense, dots], dim=1)).squeeze(-1)
