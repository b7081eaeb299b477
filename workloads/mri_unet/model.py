"""A U-Net (the fastmri family): conv blocks of two 3x3 convolutions with instance norm and leaky ReLU,
max-pool down, transposed-conv up with skip connections, and a 1x1 output convolution."""

import torch
import torch.nn.functional as F
from torch import nn


class ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor, dropout_rate: float) -> torch.Tensor:
        for conv in (self.conv1, self.conv2):
            x = F.leaky_relu(F.instance_norm(conv(x)), 0.2)
            x = F.dropout2d(x, dropout_rate, self.training) if dropout_rate else x
        return x


class UNet(nn.Module):
    def __init__(self, channels: int = 16, depth: int = 3):
        super().__init__()
        widths = [channels * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList(ConvBlock(a, b) for a, b in zip([1] + widths[:-2], widths[:-1], strict=True))
        self.bottom = ConvBlock(widths[-2], widths[-1])
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.up_blocks = nn.ModuleList(ConvBlock(2 * a, a) for a in widths[:-1])
        self.out = nn.Conv2d(channels, 1, 1)

    def forward(self, images: torch.Tensor, dropout_rate: float = 0.0) -> torch.Tensor:
        """(B, H, W) zero-filled magnitudes to (B, H, W) reconstructions; H and W divisible by 2**depth."""
        x, skips = images[:, None], []
        for block in self.down:
            x = block(x, dropout_rate)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x, dropout_rate)
        for up, block, skip in zip(reversed(self.up), reversed(self.up_blocks), reversed(skips), strict=True):
            x = block(torch.cat([skip, up(x)], dim=1), dropout_rate)
        return self.out(x)[:, 0]
