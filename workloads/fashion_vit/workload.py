"""``fashion_vit``: the imagenet_vit family on this CPU, a ViT (patch 4, width 64, depth 4) on Fashion-MNIST.

Calibration (README "Workload calibration"): see the constants below and ``python -m benchmarks.calibrate``.
"""

from workloads.fashion_resnet.workload import FashionMnistWorkload
from workloads.fashion_vit.model import ViT


class FashionViTWorkload(FashionMnistWorkload):
    validation_target_value = 0.86
    test_target_value = 0.85
    max_allowed_runtime_sec = 120
    eval_period_time_sec = 6
    step_hint = 2000
    output_param_prefixes = ("head.",)

    def build_model(self):
        return ViT()
