"""A small ResNet with batch norm (the imagenet_resnet family scaled to 28x28 grey images)."""

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out))


class BasicBlock(nn.Module):
    """relu(x' + bn(conv(relu(bn(conv(x)))))) where x' is x, or a strided 1x1 projection when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.branch1 = conv_bn(c_in, c_out, 3, stride)
        self.branch2 = conv_bn(c_out, c_out, 3, 1)
        self.shortcut = conv_bn(c_in, c_out, 1, stride) if stride != 1 or c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.shortcut(x) + self.branch2(F.relu(self.branch1(x))))


class ResNet(nn.Module):
    """Stem conv, one BasicBlock per stage with widths (w, 2w, 4w) and strides (1, 2, 2), global average pool,
    linear classifier: 8 weight layers."""

    def __init__(self, width: int = 16, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.stem = conv_bn(in_channels, width, 3, 1)
        widths = (width, 2 * width, 4 * width)
        self.stages = nn.Sequential(
            *(
                BasicBlock(c_in, c_out, 1 if i == 0 else 2)
                for i, (c_in, c_out) in enumerate(zip((width,) + widths[:-1], widths, strict=True))
            )
        )
        self.classifier = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor, dropout_rate: float = 0.0) -> torch.Tensor:
        h = self.stages(F.relu(self.stem(x))).mean(dim=(2, 3))
        return self.classifier(F.dropout(h, dropout_rate, self.training) if dropout_rate else h)
