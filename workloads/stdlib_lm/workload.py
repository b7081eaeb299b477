"""``stdlib_lm``: the LM family on this CPU, a byte-level causal Transformer (width 128, depth 2, 64-byte
context) on the Python standard library's source; the target is validation cross-entropy in nats per byte.

Calibration (README "Workload calibration", ``python -m benchmarks.calibrate``):
NAdamW's first search-space point reaches 2.2 nats/byte in a median of 588 steps / 35.3 s of submission time
over seeds 0-2 (60 ms/step at batch 32); budget 3x that (105 s), step_hint the baseline's steps within it.
"""

import torch

from algoperf import spec
from workloads.base import SPLITS, InMemoryWorkload
from workloads.losses import softmax_cross_entropy
from workloads.stdlib_lm import data
from workloads.stdlib_lm.model import CausalLM

SEQ_LEN = 64


class StdlibLMWorkload(InMemoryWorkload):
    validation_target_value = 2.2
    test_target_value = 2.25
    num_eval_train_examples = 1_000
    num_validation_examples = 1_000
    num_test_examples = 1_000
    eval_batch_size = 250
    train_mean = 0.0
    train_stddev = 1.0
    max_allowed_runtime_sec = 105
    eval_period_time_sec = 5
    step_hint = 1750
    output_param_prefixes = ("head.",)

    target_metric_name = "loss"
    loss_type = spec.LossType.SOFTMAX_CROSS_ENTROPY
    lower_is_better = True

    @property
    def num_train_examples(self) -> int:
        return self.num_examples_in(self.split_arrays("train", ""))

    def load_splits(self, data_dir: str) -> dict[str, dict]:
        raw = data.load(SEQ_LEN, data_dir)
        out = {}
        for name in SPLITS:
            w = torch.from_numpy(raw[name])  # uint8 in memory, int64 per batch
            out[name] = {"inputs": w[:, :-1], "targets": w[:, 1:]}
        return out

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
        return {"loss": loss / tokens, "bits_per_byte": loss / tokens / torch.log(torch.tensor(2.0)).item()}
