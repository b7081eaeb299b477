"""``flights_dlrm`` in JAX (constants and data: ``workloads.flights_dlrm.common``)."""

import numpy as np

from workloads.base_jax import InMemoryJaxWorkload
from workloads.flights_dlrm import data
from workloads.flights_dlrm.common import BOTTOM, EMBED_DIM, TOP, FlightsDLRMCommon
from workloads.flights_dlrm.model_jax import DLRM
from workloads.losses_jax import sigmoid_cross_entropy


class FlightsDLRMJaxWorkload(FlightsDLRMCommon, InMemoryJaxWorkload):
    def make_batch(self, split: dict, index) -> dict:
        inputs = {"categorical": split["categorical"][index].astype(np.int32), "dense": split["dense"][index]}
        return {"inputs": inputs, "targets": split["targets"][index]}

    def build_model(self):
        return DLRM(data.TABLE_ROWS, len(data.CATEGORICAL), len(data.DENSE), EMBED_DIM, BOTTOM, TOP)

    def init_inputs(self):
        return {
            "categorical": np.zeros((1, len(data.CATEGORICAL)), np.int32),
            "dense": np.zeros((1, len(data.DENSE)), np.float32),
        }

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing: float = 0.0) -> dict:
        return sigmoid_cross_entropy(label_batch, logits_batch, mask_batch, label_smoothing)

    def summarize(self, outputs, num_examples: int) -> dict[str, float]:
        loss, correct = 0.0, 0.0
        for batch, logits in outputs:
            loss += float(self.loss_fn(batch["targets"], logits)["summed"])
            correct += float(((logits > 0) == (batch["targets"] > 0.5)).sum())
        return {"loss": loss / num_examples, "accuracy": correct / num_examples}
