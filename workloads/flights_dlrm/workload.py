"""``flights_dlrm`` in PyTorch (constants and data: ``workloads.flights_dlrm.common``)."""

import torch

from workloads.base import InMemoryWorkload
from workloads.flights_dlrm import data
from workloads.flights_dlrm.common import BOTTOM, EMBED_DIM, TOP, FlightsDLRMCommon
from workloads.flights_dlrm.model import DLRM
from workloads.losses import sigmoid_cross_entropy


class FlightsDLRMWorkload(FlightsDLRMCommon, InMemoryWorkload):
    def make_batch(self, split: dict, index: torch.Tensor) -> dict:
        inputs = {k: split[k].index_select(0, index) for k in ("categorical", "dense")}
        return {"inputs": inputs, "targets": split["targets"].index_select(0, index)}

    def build_model(self):
        return DLRM(data.TABLE_ROWS, len(data.CATEGORICAL), len(data.DENSE), EMBED_DIM, BOTTOM, TOP)

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing: float = 0.0) -> dict:
        return sigmoid_cross_entropy(label_batch, logits_batch, mask_batch, label_smoothing)

    def summarize(self, outputs, num_examples: int) -> dict[str, float]:
        loss, correct = 0.0, 0.0
        for batch, logits in outputs:
            loss += self.loss_fn(batch["targets"], logits)["summed"].item()
            correct += ((logits > 0).float() == batch["targets"]).sum().item()
        return {"loss": loss / num_examples, "accuracy": correct / num_examples}
