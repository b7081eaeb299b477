"""``stdlib_lm`` in PyTorch (constants and data: ``workloads.stdlib_lm.common``)."""

import torch

from workloads.base import InMemoryWorkload
from workloads.losses import softmax_cross_entropy
from workloads.stdlib_lm.common import SEQ_LEN, StdlibLMCommon
from workloads.stdlib_lm.model import CausalLM


class StdlibLMWorkload(StdlibLMCommon, InMemoryWorkload):
    def make_batch(self, split: dict, index: torch.Tensor) -> dict:
        return {k: v.index_select(0, index).long() for k, v in split.items()}

    def build_model(self):
        return CausalLM(seq_len=SEQ_LEN)

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing: float = 0.0) -> dict:
        """Per-token cross-entropy: 'per_example' is (batch, seq_len), 'n_valid_examples' counts tokens."""
        return softmax_cross_entropy(label_batch, logits_batch.transpose(1, 2), mask_batch, label_smoothing)

    def summarize(self, outputs, num_examples: int) -> dict[str, float]:
        loss, tokens = 0.0, 0
        for batch, logits in outputs:
            loss += self.loss_fn(batch["targets"], logits)["summed"].item()
            tokens += batch["targets"].numel()
        return self.token_metrics(loss, tokens)
