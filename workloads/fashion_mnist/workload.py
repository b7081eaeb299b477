"""Fashion-MNIST in PyTorch, shared by fashion_resnet and fashion_vit (not a registered workload)."""

from workloads.classification import ClassificationWorkload
from workloads.fashion_mnist.common import FashionMnistCommon


class FashionMnistWorkload(FashionMnistCommon, ClassificationWorkload):
    """Fashion-MNIST data and constants; subclasses choose the model, target and budget."""
