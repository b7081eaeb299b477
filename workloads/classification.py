"""Softmax classification workloads: loss, accuracy evaluation and the accuracy target."""

import torch

from algoperf import spec
from workloads.base import InMemoryWorkload
from workloads.losses import softmax_cross_entropy


class ClassificationWorkload(InMemoryWorkload):
    """Accuracy-targeted classification; subclasses provide data, model and constants."""

    target_metric_name = "accuracy"
    loss_type = spec.LossType.SOFTMAX_CROSS_ENTROPY

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing: float = 0.0) -> dict:
        return softmax_cross_entropy(label_batch, logits_batch, mask_batch, label_smoothing)

    def summarize(self, outputs, num_examples: int) -> dict[str, float]:
        correct, loss = 0.0, 0.0
        for batch, logits in outputs:
            correct += (logits.argmax(dim=-1) == batch["targets"]).sum().item()
            loss += self.loss_fn(batch["targets"], logits)["summed"].item()
        return {"accuracy": correct / num_examples, "loss": loss / num_examples}


def normalized_images(pixels, labels, mean: float, std: float, side: int, scale: float) -> dict[str, torch.Tensor]:
    """uint8 pixels (N, side*side) divided by ``scale``, standardized, as (N, 1, side, side); int64 labels."""
    x = torch.from_numpy(pixels).to(torch.float32).div_(scale).sub_(mean).div_(std)
    return {"inputs": x.reshape(-1, 1, side, side), "targets": torch.from_numpy(labels).long()}
