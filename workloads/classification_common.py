"""What softmax classification workloads share across frameworks: the target and images as numpy arrays."""

import numpy as np

from algoperf import spec


class ClassificationCommon:
    """Accuracy-targeted softmax classification (the framework bases add loss, model and evaluation)."""

    target_metric_name = "accuracy"
    loss_type = spec.LossType.SOFTMAX_CROSS_ENTROPY


def normalized_images(pixels, labels, mean: float, std: float, side: int, scale: float) -> dict[str, np.ndarray]:
    """uint8 pixels (N, side*side) divided by ``scale``, standardized, as float32 (N, 1, side, side); int64
    labels. Float32 throughout, so both frameworks see the same bits."""
    x = pixels.astype(np.float32) / np.float32(scale)
    x = (x - np.float32(mean)) / np.float32(std)
    return {"inputs": x.reshape(-1, 1, side, side), "targets": labels.astype(np.int64)}
