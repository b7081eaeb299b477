"""``fashion_vit``, framework-free: the imagenet_vit family on this CPU, a ViT (patch 4, width 64, depth 4) on
Fashion-MNIST.

Calibration (README "Workload calibration", ``python -m benchmarks.calibrate``):
NAdamW's first search-space point reaches 0.80 in a median of 374 steps / 46.1 s of submission time over
seeds 0-2 (123 ms/step at batch 128); budget ~3x that (130 s), step_hint the baseline's steps within it.
"""

from workloads.fashion_mnist.common import FashionMnistCommon


class FashionViTCommon(FashionMnistCommon):
    validation_target_value = 0.80
    test_target_value = 0.79
    max_allowed_runtime_sec = 130
    eval_period_time_sec = 5
    step_hint = 1120
    output_param_prefixes = ("head.",)
