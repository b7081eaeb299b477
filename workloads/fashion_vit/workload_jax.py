"""``fashion_vit`` in JAX (constants and data: ``workloads.fashion_vit.common``)."""

import numpy as np

from workloads.classification_jax import ClassificationJaxWorkload
from workloads.fashion_vit.common import FashionViTCommon
from workloads.fashion_vit.model_jax import ViT


class FashionViTJaxWorkload(FashionViTCommon, ClassificationJaxWorkload):
    def build_model(self):
        return ViT()

    def init_inputs(self):
        return np.zeros((1, 1, 28, 28), np.float32)
