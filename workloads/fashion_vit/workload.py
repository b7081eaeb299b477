"""``fashion_vit`` in PyTorch (constants and data: ``workloads.fashion_vit.common``)."""

from workloads.fashion_mnist.workload import FashionMnistWorkload
from workloads.fashion_vit.common import FashionViTCommon
from workloads.fashion_vit.model import ViT


class FashionViTWorkload(FashionViTCommon, FashionMnistWorkload):
    def build_model(self):
        return ViT()
