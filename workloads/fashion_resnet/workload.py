"""``fashion_resnet``: the imagenet_resnet family on this CPU, a ResNet-8 with batch norm on Fashion-MNIST.

Calibration (README "Workload calibration", ``python -m benchmarks.calibrate``):
NAdamW's first search-space point reaches 0.85 in a median of 446 steps / 40.5 s of submission time over
seeds 0-2 (89 ms/step at batch 128); budget 3x that (125 s), step_hint the baseline's steps within it.
"""

from workloads.base import SPLITS
from workloads.classification import ClassificationWorkload, normalized_images
from workloads.fashion_mnist import data
from workloads.fashion_resnet.model import ResNet


class FashionMnistWorkload(ClassificationWorkload):
    """Fashion-MNIST data and constants; subclasses choose the model, target and budget."""

    num_train_examples = data.NUM_TRAIN
    num_eval_train_examples = 2_000  # evaluation costs wall time, not budget: fixed subsets keep it short
    num_validation_examples = 5_000
    num_test_examples = 5_000
    eval_batch_size = 2_000
    train_mean = data.MEAN
    train_stddev = data.STD

    def load_splits(self, data_dir: str) -> dict[str, dict]:
        raw = data.load(data_dir)
        return {
            name: normalized_images(raw[f"{name}_x"], raw[f"{name}_y"], self.train_mean, self.train_stddev, 28, 255.0)
            for name in SPLITS
        }


class FashionResNetWorkload(FashionMnistWorkload):
    validation_target_value = 0.85
    test_target_value = 0.84
    max_allowed_runtime_sec = 125
    eval_period_time_sec = 5
    step_hint = 1300
    output_param_prefixes = ("classifier.",)

    def build_model(self):
        return ResNet(width=16)
