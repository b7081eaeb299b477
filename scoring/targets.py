"""Each workload's validation target: metric, value and direction, without loading any data.

kronbench's suite states them as class constants. Official names come from an installed ``algoperf`` package, else
from the v0.6 values in docs/algoperf_contract.md section 3. Direction follows the official scorer: a target is
reached when the metric is ``<=`` it for losses and error rates and ``>=`` it for accuracies, SSIM, BLEU and mAP.
"""

import importlib
from dataclasses import dataclass

from workloads.registry import WORKLOADS, WorkloadError, get_workload, official_workloads

LOWER_IS_BETTER = {"loss", "error_rate", "wer", "l1_loss", "ce_loss", "ctc_loss"}
HIGHER_IS_BETTER = {"accuracy", "ssim", "bleu", "mean_average_precision"}

# AlgoPerf v0.6 validation targets (metric, value), used when the algoperf package is not installed.
OFFICIAL = {
    "criteo1tb": ("loss", 0.123735),
    "fastmri": ("ssim", 0.723653),
    "imagenet_resnet": ("accuracy", 0.77431),
    "imagenet_vit": ("accuracy", 0.77309),
    "librispeech_conformer": ("wer", 0.085884),
    "librispeech_deepspeech": ("wer", 0.119936),
    "ogbg": ("mean_average_precision", 0.28098),
    "wmt": ("bleu", 30.8491),
}


@dataclass(frozen=True)
class Target:
    metric: str
    value: float
    lower_is_better: bool

    @property
    def column(self) -> str:
        return f"validation/{self.metric}"

    def reached(self, value: float) -> bool:
        """The official scorer's comparison; NaN never reaches."""
        return value <= self.value if self.lower_is_better else value >= self.value


def target_of(workload: str, framework: str = "pytorch") -> Target:
    if workload in WORKLOADS:
        module_name, class_name = WORKLOADS[workload].split(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        return Target(cls.target_metric_name, float(cls.validation_target_value), bool(cls.lower_is_better))
    if workload in official_workloads():
        w = get_workload(workload, framework)
        return Target(w.target_metric_name, float(w.validation_target_value), _lower(w.target_metric_name))
    if workload in OFFICIAL:
        metric, value = OFFICIAL[workload]
        return Target(metric, value, _lower(metric))
    raise WorkloadError(
        f"no target known for workload {workload!r}; score only kronbench's or AlgoPerf's workloads "
        f"({', '.join(sorted(set(WORKLOADS) | set(OFFICIAL)))})"
    )


def _lower(metric: str) -> bool:
    if metric in LOWER_IS_BETTER:
        return True
    if metric in HIGHER_IS_BETTER:
        return False
    raise WorkloadError(f"metric {metric!r} has no known direction; add it to scoring.targets")
