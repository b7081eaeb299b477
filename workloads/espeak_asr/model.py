"""A small Conformer-like acoustic model (the LibriSpeech family scaled to this CPU): a convolutional front end
that halves the frame rate (to 25 per second, 40 ms), learned positions, blocks of pre-LN self-attention + MLP
(workloads/transformer.py) each followed by Conformer's convolution module (pointwise + GLU, depthwise, batch
norm, SiLU, pointwise), a final LayerNorm and per-frame symbol logits.

Padded frames are zeroed before every convolution and attended to by no frame; their logits are set so that
they emit the CTC blank with probability 1, which makes CTC over the padded length equal CTC over the real one.
"""

import torch
import torch.nn.functional as F
from torch import nn

from workloads.transformer import Block

PADDED_LOGIT = -1e4
STRIDE = 2


def output_frames(frames):
    """Output frames of the front end (kernel 5, padding 2, stride STRIDE) for ``frames`` input frames."""
    return (frames - 1) // STRIDE + 1


class ConvModule(nn.Module):
    def __init__(self, width: int, kernel: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.pointwise_in = nn.Conv1d(width, 2 * width, 1)
        self.depthwise = nn.Conv1d(width, width, kernel, padding=kernel // 2, groups=width)
        self.batch_norm = nn.BatchNorm1d(width)
        self.pointwise_out = nn.Conv1d(width, width, 1)

    def forward(self, x: torch.Tensor, real: torch.Tensor, dropout_rate: float) -> torch.Tensor:
        """x + the module's output; ``real`` is (batch, frames, 1), 1.0 at real frames."""
        h = (self.norm(x) * real).transpose(1, 2)
        h = F.glu(self.pointwise_in(h), dim=1) * real.transpose(1, 2)
        h = self.pointwise_out(F.silu(self.batch_norm(self.depthwise(h)))).transpose(1, 2)
        return x + (F.dropout(h, dropout_rate, self.training) if dropout_rate else h)


class AcousticModel(nn.Module):
    def __init__(
        self, n_mels: int, symbols: int, max_frames: int, width: int = 96, depth: int = 2, num_heads: int = 4,
        kernel: int = 15,
    ):  # fmt: skip
        super().__init__()
        self.frontend = nn.Conv1d(n_mels, width, 5, stride=STRIDE, padding=2)
        self.pos_embedding = nn.Parameter(torch.randn(1, output_frames(max_frames), width) * 0.02)
        self.blocks = nn.ModuleList(Block(width, num_heads) for _ in range(depth))
        self.conv_modules = nn.ModuleList(ConvModule(width, kernel) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, symbols)

    def forward(self, inputs: dict, dropout_rate: float = 0.0) -> torch.Tensor:
        """(batch, output_frames(frames), symbols) logits for ``inputs`` {'features': (batch, frames, n_mels),
        'frames': (batch,)}."""
        features, frames = inputs["features"], inputs["frames"]
        mask = torch.arange(features.shape[1], device=features.device)[None, :] < frames[:, None]
        h = self.frontend((features * mask[..., None]).transpose(1, 2))
        mask = torch.arange(h.shape[2], device=h.device)[None, :] < output_frames(frames)[:, None]
        real = mask[..., None].to(features.dtype)
        h = F.gelu(h).transpose(1, 2) * real + self.pos_embedding[:, : h.shape[2]]
        for block, conv in zip(self.blocks, self.conv_modules, strict=True):
            h = conv(block(h, dropout_rate, mask), real, dropout_rate)
        logits = self.head(self.norm(h))
        blank_only = torch.full_like(logits[:1, :1], PADDED_LOGIT)
        blank_only[..., 0] = 0.0
        return torch.where(mask[..., None], logits, blank_only)
