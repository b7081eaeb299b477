"""``flights_dlrm``, framework-free: the criteo1tb family on this CPU, a DLRM predicting at departure whether a
New York flight of 2013 arrives more than 15 minutes late; the target is validation log-loss.

Calibration (docs/measurements.md, "Is the target a lottery?", ``python -m benchmarks.calibrate``):
the validation log-loss falls steeply to ~0.28 by step ~90, then hovers +-0.005 around 0.27. At step_hint 1200
it was still hovering at the end of the decay (0.271), so the first eval below 0.27 was a draw (NAdamW's steps
to target: CV 30% over 5 seeds). At step_hint 600 the decay settles it at ~0.2675, below the target, which
bounds the draw: NAdamW reaches 0.27 in a median of 343 steps, CV 15% over seeds 0-4. Budget 75 s.
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
    step_hint = 600  # the decay must end below the target (docstring)
    output_param_prefixes = ("top.8.",)

    target_metric_name = "loss"
    loss_type = spec.LossType.SIGMOID_CROSS_ENTROPY
    lower_is_better = True

    def numpy_splits(self, data_dir: str) -> dict[str, dict]:
        raw = data.load(data_dir)
        keys = {"categorical": "categorical", "dense": "dense", "targets": "label"}
        return {name: {k: raw[f"{name}_{v}"] for k, v in keys.items()} for name in SPLITS}
