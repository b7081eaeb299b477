"""``flights_dlrm``, framework-free: the criteo1tb family on this CPU, a DLRM predicting at departure whether a
New York flight of 2013 arrives more than 15 minutes late; the target is validation log-loss.

Calibration (README "Workload calibration", ``python -m benchmarks.calibrate``):
NAdamW's first search-space point reaches 0.27 in a median of 352 steps / 20.2 s of submission time over
seeds 0-2 (62 ms/step at batch 512); the loss plateaus near 0.267, so times vary (15-45 s); budget 75 s.
"""

from algoperf import spec
from workloads.flights_dlrm import data
from workloads.inmemory import SPLITS

EMBED_DIM = 128
BOTTOM = (512, 256)
TOP = (1024, 1024, 512, 256)


class FlightsDLRMCommon:
    validation_target_value = 0.27
    test_target_value = 0.27
    num_train_examples = 277_578
    num_eval_train_examples = 20_000
    num_validation_examples = 20_538
    num_test_examples = 29_230
    eval_batch_size = 8_192
    train_mean = 0.0  # dense features are standardized in data.py
    train_stddev = 1.0
    max_allowed_runtime_sec = 75
    eval_period_time_sec = 5
    step_hint = 1200
    output_param_prefixes = ("top.8.",)

    target_metric_name = "loss"
    loss_type = spec.LossType.SIGMOID_CROSS_ENTROPY
    lower_is_better = True

    def numpy_splits(self, data_dir: str) -> dict[str, dict]:
        raw = data.load(data_dir)
        keys = {"categorical": "categorical", "dense": "dense", "targets": "label"}
        return {name: {k: raw[f"{name}_{v}"] for k, v in keys.items()} for name in SPLITS}
