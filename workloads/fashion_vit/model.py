"""A small Vision Transformer (the imagenet_vit family scaled to 28x28 grey images)."""

import torch
from torch import nn

from workloads.transformer import Block


class ViT(nn.Module):
    """Non-overlapping patches embedded linearly, learned position embeddings, pre-LN blocks, global average
    pooling, LayerNorm and a linear head (no class token, as in AlgoPerf's ViT with its 'gap' head)."""

    def __init__(
        self, image_size=28, patch=4, width=64, depth=4, num_heads=4, mlp_ratio=4, num_classes=10, in_channels=1
    ):
        super().__init__()
        if image_size % patch:
            raise ValueError(f"patch size {patch} does not divide image size {image_size}")
        self.patch = patch
        self.embed = nn.Linear(in_channels * patch * patch, width)
        self.pos_embedding = nn.Parameter(torch.randn(1, (image_size // patch) ** 2, width) * 0.02)
        self.blocks = nn.ModuleList(Block(width, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) to (B, H*W/p^2, C*p*p), row-major over patches."""
        b, c, _, _ = x.shape
        p = self.patch
        x = x.unfold(2, p, p).unfold(3, p, p)  # B, C, H/p, W/p, p, p
        return x.permute(0, 2, 3, 1, 4, 5).reshape(b, -1, c * p * p)

    def forward(self, x: torch.Tensor, dropout_rate: float = 0.0) -> torch.Tensor:
        h = self.embed(self.patches(x)) + self.pos_embedding
        for block in self.blocks:
            h = block(h, dropout_rate)
        return self.head(self.norm(h.mean(dim=1)))
