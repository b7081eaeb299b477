"""What softmax classification workloads share across frameworks: the target and images as numpy arrays."""

import numpy as np

from algoperf import spec


class ClassificationCommon:
    """Accuracy-targeted softmax classification (the framework bases add the loss and model)."""

    target_metric_name = "accuracy"
    loss_type = spec.LossType.SOFTMAX_CROSS_ENTROPY

    def summarize(self, outputs, num_examples: int) -> dict[str, float]:
        """Accuracy and mean loss over the eval batches' (batch, logits); written once for torch tensors and JAX
        arrays alike (``argmax``, ``==``, ``sum`` and ``float`` spell the same in both)."""
        correct, loss = 0.0, 0.0
        for batch, logits in outputs:
            correct += float((logits.argmax(-1) == batch["targets"]).sum())
            loss += float(self.loss_fn(batch["targets"], logits)["summed"])
        return {"accuracy": correct / num_examples, "loss": loss / num_examples}


def normalized_images(pixels, labels, mean: float, std: float, side: int, scale: float) -> dict[str, np.ndarray]:
    """uint8 pixels (N, side*side) divided by ``scale``, standardized, as float32 (N, 1, side, side); int64
    labels. Float32 throughout, so both frameworks see the same bits."""
    x = pixels.astype(np.float32) / np.float32(scale)
    x = (x - np.float32(mean)) / np.float32(std)
    return {"inputs": x.reshape(-1, 1, side, side), "targets": labels.astype(np.int64)}
