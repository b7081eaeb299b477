"""``stdlib_lm`` in JAX (constants and data: ``workloads.stdlib_lm.common``)."""

import numpy as np

from workloads.base_jax import InMemoryJaxWorkload
from workloads.losses_jax import softmax_cross_entropy
from workloads.stdlib_lm.common import SEQ_LEN, StdlibLMCommon
from workloads.stdlib_lm.model_jax import CausalLM


class StdlibLMJaxWorkload(StdlibLMCommon, InMemoryJaxWorkload):
    def make_batch(self, split: dict, index) -> dict:
        return {k: v[index].astype(np.int32) for k, v in split.items()}

    def build_model(self):
        return CausalLM(seq_len=SEQ_LEN)

    def init_inputs(self):
        return np.zeros((1, SEQ_LEN), np.int32)

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing: float = 0.0) -> dict:
        """Per-token cross-entropy: 'per_example' is (batch, seq_len), 'n_valid_examples' counts tokens."""
        return softmax_cross_entropy(label_batch, logits_batch, mask_batch, label_smoothing)

    def summarize(self, outputs, num_examples: int) -> dict[str, float]:
        loss, tokens = 0.0, 0
        for batch, logits in outputs:
            loss += float(self.loss_fn(batch["targets"], logits)["summed"])
            tokens += batch["targets"].size
        return self.token_metrics(loss, tokens)
