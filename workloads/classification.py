"""Softmax classification workloads (PyTorch): loss and accuracy evaluation."""

from workloads.base import InMemoryWorkload
from workloads.classification_common import ClassificationCommon
from workloads.losses import softmax_cross_entropy


class ClassificationWorkload(ClassificationCommon, InMemoryWorkload):
    """Accuracy-targeted classification; subclasses provide data, model and constants."""

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing: float = 0.0) -> dict:
        return softmax_cross_entropy(label_batch, logits_batch, mask_batch, label_smoothing)

    def summarize(self, outputs, num_examples: int) -> dict[str, float]:
        correct, loss = 0.0, 0.0
        for batch, logits in outputs:
            correct += (logits.argmax(dim=-1) == batch["targets"]).sum().item()
            loss += self.loss_fn(batch["targets"], logits)["summed"].item()
        return {"accuracy": correct / num_examples, "loss": loss / num_examples}
