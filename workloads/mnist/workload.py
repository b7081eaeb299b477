"""``mnist`` in PyTorch (constants and data: ``workloads.mnist.common``)."""

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from workloads.classification import ClassificationWorkload
from workloads.mnist.common import NUM_CLASSES, NUM_HIDDEN, MnistCommon


class MLP(nn.Module):
    def __init__(self, num_hidden: int = NUM_HIDDEN, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.net = nn.Sequential(
            OrderedDict(
                [
                    ("layer1", nn.Linear(28 * 28, num_hidden)),
                    ("layer1_sig", nn.Sigmoid()),
                    ("layer2", nn.Linear(num_hidden, num_classes)),
                ]
            )
        )

    def forward(self, x: torch.Tensor, dropout_rate: float = 0.0) -> torch.Tensor:
        h = self.net.layer1_sig(self.net.layer1(x.reshape(len(x), -1)))
        h = F.dropout(h, p=dropout_rate, training=self.training) if dropout_rate else h
        return self.net.layer2(h)


class MnistWorkload(MnistCommon, ClassificationWorkload):
    def build_model(self) -> torch.nn.Module:
        return MLP()
