"""Each workload's validation target (metric, value, direction) and, per AlgoPerf benchmark version, which
workloads are base workloads, which are held-out variants of which base, and the runtime budgets.

Official names come from ``algoperf_workloads.json`` (the published target tables, provenance inside), kronbench's
suite from its workload classes. Direction follows the official scorer: a target is reached when the metric is
``<=`` it for losses, error rates and perplexity and ``>=`` it for accuracies, SSIM, BLEU and mAP.
"""

import functools
import importlib
import json
import os
from dataclasses import dataclass

from common import targets
from workloads.registry import WORKLOADS, WorkloadError, get_workload, official_workloads

LOWER_IS_BETTER = {"loss", "error_rate", "wer", "l1_loss", "ce_loss", "ctc_loss", "ppl"}
HIGHER_IS_BETTER = {"accuracy", "ssim", "bleu", "mean_average_precision"}
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "algoperf_workloads.json")
VERSIONS = ("0.5", "0.6")
DEFAULT_VERSION = VERSIONS[-1]


@dataclass(frozen=True)
class Target:
    metric: str
    value: float
    lower_is_better: bool

    @property
    def column(self) -> str:
        return f"validation/{self.metric}"

    def reached(self, value: float) -> bool:
        """The official scorer's comparison (common/targets.py); a non-finite value never reaches."""
        return bool(targets.reached(value, self.value, self.lower_is_better, inclusive=True))


@dataclass(frozen=True)
class Benchmark:
    """One AlgoPerf benchmark version as the scorer needs it."""

    version: str
    base_workloads: tuple[str, ...]  # what the profile is over (those with logs)
    held_out_workloads: tuple[str, ...]  # the variants drawn for this version (empty: any variant in the logs)
    max_runtime_sec: dict  # base workload -> this version's budget
    speedup_budgets: dict  # base workload -> the budget the official speedup table charges for "not reached"

    def base_of(self, workload: str) -> str:
        """The base workload of an official variant; any other workload is its own base."""
        entry = _table()["workloads"].get(workload)
        return entry["base"] if entry and workload not in WORKLOADS else workload

    def is_official(self, workload: str) -> bool:
        return workload in _table()["workloads"] and workload not in WORKLOADS


@functools.cache
def _table() -> dict:
    with open(DATA) as f:
        return json.load(f)


@functools.cache
def benchmark(version: str = DEFAULT_VERSION) -> Benchmark:
    versions = _table()["versions"]
    if version not in versions:
        raise WorkloadError(f"unknown --benchmark_version={version}; use one of {', '.join(sorted(versions))}")
    v = versions[version]
    return Benchmark(
        version=version,
        base_workloads=tuple(v["base_workloads"]),
        held_out_workloads=tuple(v["held_out_workloads"]),
        max_runtime_sec=dict(v["max_runtime_sec"]),
        speedup_budgets=dict(versions[_table()["speedup_budgets_version"]]["max_runtime_sec"]),
    )


def target_of(workload: str, framework: str = "pytorch") -> Target:
    """kronbench's own workloads first, then the published tables (same in every version), then an installed
    algoperf's registry."""
    if workload in WORKLOADS:
        module_name, class_name = WORKLOADS[workload].split(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        return Target(cls.target_metric_name, float(cls.validation_target_value), bool(cls.lower_is_better))
    entry = _table()["workloads"].get(workload)
    if entry is not None:
        return Target(entry["metric"], float(entry["target"]), entry["direction"] == "min")
    if workload in official_workloads():
        w = get_workload(workload, framework)
        return Target(w.target_metric_name, float(w.validation_target_value), _lower(w.target_metric_name))
    raise WorkloadError(
        f"no target known for workload {workload!r}; score only kronbench's or AlgoPerf's workloads "
        f"({', '.join(sorted(set(WORKLOADS) | set(_table()['workloads'])))})"
    )


def is_own(workload: str) -> bool:
    """Whether ``workload`` is one of kronbench's own (its target is kronbench's, not AlgoPerf's)."""
    return workload in WORKLOADS


def own_budget(workload: str) -> float | None:
    """The runtime budget of one of kronbench's workloads (None for other names)."""
    if workload not in WORKLOADS:
        return None
    module_name, class_name = WORKLOADS[workload].split(":")
    return float(getattr(importlib.import_module(module_name), class_name).max_allowed_runtime_sec)


def _lower(metric: str) -> bool:
    if metric in LOWER_IS_BETTER:
        return True
    if metric in HIGHER_IS_BETTER:
        return False
    raise WorkloadError(f"metric {metric!r} has no known direction; add it to scoring.targets")
