"""``fashion_vit``: the imagenet_vit family on this CPU, a ViT (patch 4, width 64, depth 4) on Fashion-MNIST.

Calibration (README "Workload calibration"): see the constants below and ``python -m benchmarks.calibrate``.
"""

from workloads.fashion_resnet.workload import FashionMnistWorkload
from workloads.fashion_vit.model import ViT


class FashionViTWorkload(FashionMnistWorkload):
    validation_target_value = 0.80
    test_target_value = 0.79
    max_allowed_runtime_sec = 130
    eval_period_time_sec = 5
    step_hint = 1120
    output_param_prefixes = ("head.",)

    def build_model(self):
        return ViT()
