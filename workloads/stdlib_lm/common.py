"""``stdlib_lm``, framework-free: the LM family on this CPU, a byte-level causal Transformer (width 128, depth 2,
64-byte context) on the Python standard library's source; the target is validation cross-entropy in nats per
byte.

Calibration (README "Workload calibration", ``python -m benchmarks.calibrate``):
NAdamW's first search-space point reaches 2.2 nats/byte in a median of 588 steps / 35.3 s of submission time
over seeds 0-2 (60 ms/step at batch 32); budget 3x that (105 s), step_hint the baseline's steps within it.
"""

import math

from algoperf import spec
from workloads.inmemory import SPLITS
from workloads.stdlib_lm import data

SEQ_LEN = 64
VOCAB = 256  # bytes


class StdlibLMCommon:
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

    def numpy_splits(self, data_dir: str) -> dict[str, dict]:
        """uint8 bytes in memory (each framework widens a batch's): a window's first 64 predict its last 64."""
        raw = data.load(SEQ_LEN, data_dir)
        return {name: {"inputs": raw[name][:, :-1], "targets": raw[name][:, 1:]} for name in SPLITS}

    @staticmethod
    def token_metrics(summed_loss: float, tokens: int) -> dict[str, float]:
        return {"loss": summed_loss / tokens, "bits_per_byte": summed_loss / tokens / math.log(2.0)}
