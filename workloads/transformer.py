"""Pre-LayerNorm Transformer blocks shared by fashion_vit (bidirectional) and stdlib_lm (causal)."""

import torch
import torch.nn.functional as F
from torch import nn


class QKVProjection(nn.Linear):
    """The fused query/key/value projection (AlgoPerf parameter type ATTENTION_QKV)."""


class AttentionOut(nn.Linear):
    """The attention output projection (AlgoPerf parameter type ATTENTION_OUT)."""


class SelfAttention(nn.Module):
    def __init__(self, width: int, num_heads: int, causal: bool):
        super().__init__()
        if width % num_heads:
            raise ValueError(f"width {width} is not divisible by {num_heads} heads")
        self.num_heads, self.causal = num_heads, causal
        self.qkv = QKVProjection(width, 3 * width)
        self.out = AttentionOut(width, width)

    def forward(self, x: torch.Tensor, dropout_rate: float) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        h = F.scaled_dot_product_attention(
            q, k, v, is_causal=self.causal, dropout_p=dropout_rate if self.training else 0.0
        )
        return self.out(h.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """x + attention(LN(x)), then x + MLP(LN(x)) with a GELU MLP of ``mlp_ratio`` times the width."""

    def __init__(self, width: int, num_heads: int, mlp_ratio: int = 4, causal: bool = False):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attention = SelfAttention(width, num_heads, causal)
        self.norm2 = nn.LayerNorm(width)
        self.mlp_in = nn.Linear(width, mlp_ratio * width)
        self.mlp_out = nn.Linear(mlp_ratio * width, width)

    def forward(self, x: torch.Tensor, dropout_rate: float = 0.0) -> torch.Tensor:
        drop = lambda h: F.dropout(h, dropout_rate, self.training) if dropout_rate else h  # noqa: E731
        x = x + drop(self.attention(self.norm1(x), dropout_rate))
        return x + drop(self.mlp_out(F.gelu(self.mlp_in(self.norm2(x)))))
