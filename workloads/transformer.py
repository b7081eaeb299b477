"""Pre-LayerNorm Transformer blocks shared by fashion_vit (bidirectional), stdlib_lm (causal), espeak_asr
(bidirectional over padded frames) and bible_mt (an encoder over padded sources, a decoder with cross-attention).

A ``key_mask`` is (batch, keys) bool, True where a key is real: padded keys are never attended to. A ``cache``
(a dict the caller keeps per layer) makes decoding incremental: each call then passes only the newest position,
self-attention appends its keys and values to those cached, and cross-attention projects the memory once.
"""

import torch
import torch.nn.functional as F
from torch import nn


class QKVProjection(nn.Linear):
    """The fused query/key/value projection (AlgoPerf parameter type ATTENTION_QKV)."""


class QueryProjection(nn.Linear):
    """Cross-attention's query projection (AlgoPerf parameter type ATTENTION_Q)."""


class KVProjection(nn.Linear):
    """Cross-attention's fused key/value projection of the encoder output (AlgoPerf parameter type ATTENTION_KV)."""


class AttentionOut(nn.Linear):
    """The attention output projection (AlgoPerf parameter type ATTENTION_OUT)."""


def _attend(q, k, v, num_heads, key_mask, causal, dropout_p) -> torch.Tensor:
    """Multi-head attention of (b, tq, d) queries over (b, tk, d) keys/values; (b, tq, d) out."""
    b, tq, d = q.shape
    split = lambda x: x.view(b, x.shape[1], num_heads, d // num_heads).transpose(1, 2)  # noqa: E731
    mask = None if key_mask is None else key_mask[:, None, None, :]
    h = F.scaled_dot_product_attention(
        split(q), split(k), split(v), attn_mask=mask, is_causal=causal, dropout_p=dropout_p
    )
    return h.transpose(1, 2).reshape(b, tq, d)


class SelfAttention(nn.Module):
    def __init__(self, width: int, num_heads: int, causal: bool):
        super().__init__()
        if width % num_heads:
            raise ValueError(f"width {width} is not divisible by {num_heads} heads")
        self.num_heads, self.causal = num_heads, causal
        self.qkv = QKVProjection(width, 3 * width)
        self.out = AttentionOut(width, width)

    def forward(self, x: torch.Tensor, dropout_rate: float, key_mask=None, cache: dict | None = None) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        causal = self.causal
        if cache is not None:  # x is the newest position only: it may attend to every cached one
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], dim=1), torch.cat([cache["v"], v], dim=1)
            cache["k"], cache["v"] = k, v
            causal = False
        p = dropout_rate if self.training else 0.0
        return self.out(_attend(q, k, v, self.num_heads, key_mask, causal, p))


class CrossAttention(nn.Module):
    """Queries from the decoder, keys and values from the encoder's output ``memory``."""

    def __init__(self, width: int, num_heads: int):
        super().__init__()
        if width % num_heads:
            raise ValueError(f"width {width} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.query = QueryProjection(width, width)
        self.kv = KVProjection(width, 2 * width)
        self.out = AttentionOut(width, width)

    def forward(self, x, memory, dropout_rate: float, key_mask=None, cache: dict | None = None) -> torch.Tensor:
        if cache is not None and "kv" in cache:
            k, v = cache["kv"]
        else:
            k, v = self.kv(memory).chunk(2, dim=-1)
            if cache is not None:
                cache["kv"] = (k, v)
        p = dropout_rate if self.training else 0.0
        return self.out(_attend(self.query(x), k, v, self.num_heads, key_mask, False, p))


class Block(nn.Module):
    """x + attention(LN(x)), then x + MLP(LN(x)) with a GELU MLP of ``mlp_ratio`` times the width."""

    def __init__(self, width: int, num_heads: int, mlp_ratio: int = 4, causal: bool = False):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attention = SelfAttention(width, num_heads, causal)
        self.norm2 = nn.LayerNorm(width)
        self.mlp_in = nn.Linear(width, mlp_ratio * width)
        self.mlp_out = nn.Linear(mlp_ratio * width, width)

    @staticmethod
    def _drop(h: torch.Tensor, dropout_rate: float, training: bool) -> torch.Tensor:
        return F.dropout(h, dropout_rate, training) if dropout_rate else h

    def _mlp(self, x: torch.Tensor, dropout_rate: float) -> torch.Tensor:
        return x + self._drop(self.mlp_out(F.gelu(self.mlp_in(self.norm2(x)))), dropout_rate, self.training)

    def forward(self, x: torch.Tensor, dropout_rate: float = 0.0, key_mask=None) -> torch.Tensor:
        x = x + self._drop(self.attention(self.norm1(x), dropout_rate, key_mask), dropout_rate, self.training)
        return self._mlp(x, dropout_rate)


class DecoderBlock(Block):
    """A causal Block with cross-attention to the encoder's output between self-attention and the MLP."""

    def __init__(self, width: int, num_heads: int, mlp_ratio: int = 4):
        super().__init__(width, num_heads, mlp_ratio, causal=True)
        self.norm_cross = nn.LayerNorm(width)
        self.cross_attention = CrossAttention(width, num_heads)

    def forward(self, x, memory, memory_mask, dropout_rate: float = 0.0, cache: dict | None = None) -> torch.Tensor:
        """With ``cache`` (an empty dict before the first position), ``x`` is only the newest position."""
        self_cache, cross_cache = (
            (None, None) if cache is None else (cache.setdefault("self", {}), cache.setdefault("cross", {}))
        )
        x = x + self._drop(self.attention(self.norm1(x), dropout_rate, None, self_cache), dropout_rate, self.training)
        cross = self.cross_attention(self.norm_cross(x), memory, dropout_rate, memory_mask, cross_cache)
        x = x + self._drop(cross, dropout_rate, self.training)
        return self._mlp(x, dropout_rate)
