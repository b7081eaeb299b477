"""Softmax classification workloads (PyTorch): the loss (evaluation: classification_common.py)."""

from workloads.base import InMemoryWorkload
from workloads.classification_common import ClassificationCommon
from workloads.losses import softmax_cross_entropy


class ClassificationWorkload(ClassificationCommon, InMemoryWorkload):
    """Accuracy-targeted classification; subclasses provide data, model and constants."""

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing: float = 0.0) -> dict:
        return softmax_cross_entropy(label_batch, logits_batch, mask_batch, label_smoothing)
