"""Softmax classification workloads (JAX): the loss (evaluation: classification_common.py)."""

from workloads.base_jax import InMemoryJaxWorkload
from workloads.classification_common import ClassificationCommon
from workloads.losses_jax import softmax_cross_entropy


class ClassificationJaxWorkload(ClassificationCommon, InMemoryJaxWorkload):
    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing: float = 0.0) -> dict:
        return softmax_cross_entropy(label_batch, logits_batch, mask_batch, label_smoothing)
