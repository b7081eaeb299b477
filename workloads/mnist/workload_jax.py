"""``mnist`` in JAX (constants and data: ``workloads.mnist.common``)."""

import flax.linen as nn
import numpy as np

from workloads.classification_jax import ClassificationJaxWorkload
from workloads.mnist.common import NUM_CLASSES, NUM_HIDDEN, MnistCommon
from workloads.nn_jax import Linear, dropout


class _Net(nn.Module):
    """The torch model's ``net`` Sequential: layer1, sigmoid, (dropout,) layer2."""

    @nn.compact
    def __call__(self, x, dropout_rate, train: bool):
        h = nn.sigmoid(Linear(NUM_HIDDEN, name="layer1")(x))
        return Linear(NUM_CLASSES, name="layer2")(dropout(self, h, dropout_rate, train))


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x, dropout_rate=0.0, train: bool = False):
        return _Net(name="net")(x.reshape(x.shape[0], -1), dropout_rate, train)


class MnistJaxWorkload(MnistCommon, ClassificationJaxWorkload):
    def build_model(self):
        return MLP()

    def init_inputs(self):
        return np.zeros((1, 1, 28, 28), np.float32)
