"""Softmax classification workloads (JAX): loss and accuracy evaluation."""

import jax.numpy as jnp

from workloads.base_jax import InMemoryJaxWorkload
from workloads.classification_common import ClassificationCommon
from workloads.losses_jax import softmax_cross_entropy


class ClassificationJaxWorkload(ClassificationCommon, InMemoryJaxWorkload):
    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing: float = 0.0) -> dict:
        return softmax_cross_entropy(label_batch, logits_batch, mask_batch, label_smoothing)

    def summarize(self, outputs, num_examples: int) -> dict[str, float]:
        correct, loss = 0.0, 0.0
        for batch, logits in outputs:
            correct += float((jnp.argmax(logits, axis=-1) == batch["targets"]).sum())
            loss += float(self.loss_fn(batch["targets"], logits)["summed"])
        return {"accuracy": correct / num_examples, "loss": loss / num_examples}
