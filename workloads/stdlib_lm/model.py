"""A byte-level causal Transformer language model (the LM family scaled to this CPU)."""

import torch
from torch import nn

from workloads.stdlib_lm.common import VOCAB
from workloads.transformer import Block


class CausalLM(nn.Module):
    """Byte embeddings plus learned positions, pre-LN causal blocks, final LayerNorm, untied output layer."""

    def __init__(self, seq_len: int = 128, width: int = 128, depth: int = 2, num_heads: int = 4):
        super().__init__()
        self.token_embedding = nn.Embedding(VOCAB, width)
        self.pos_embedding = nn.Parameter(torch.randn(1, seq_len, width) * 0.02)
        self.blocks = nn.ModuleList(Block(width, num_heads, causal=True) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, VOCAB)

    def forward(self, tokens: torch.Tensor, dropout_rate: float = 0.0) -> torch.Tensor:
        h = self.token_embedding(tokens) + self.pos_embedding[:, : tokens.shape[1]]
        for block in self.blocks:
            h = block(h, dropout_rate)
        return self.head(self.norm(h))
