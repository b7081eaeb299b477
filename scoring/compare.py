"""From trial logs to AlgoPerf's numbers: per-trial hits, best trial per study, median per workload, profiles,
scores and speedups, with the checks ``--strict`` turns from warnings into errors."""

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from runner.errors import UsageError
from scoring import scores
from scoring.experiments import TrialLog
from scoring.targets import Target, target_of


@dataclass(frozen=True)
class TrialRow:
    log: TrialLog
    hit: scores.Hit
    chosen: bool  # the best trial of its study


@dataclass(frozen=True)
class WorkloadRow:
    submission: str
    workload: str
    time: float  # median over studies of each study's best time; inf if not reached
    step: float  # median over studies of the chosen trials' steps to target; inf if not reached
    num_studies: int
    studies_reached: int


@dataclass
class Comparison:
    submissions: list[str]
    workloads: list[str]
    targets: dict[str, Target]
    trials: list[TrialRow]
    rows: list[WorkloadRow]
    ratios: dict[str, np.ndarray]
    profiles: dict[str, np.ndarray]
    scores: dict[str, float]
    speedups: dict[str, tuple[float, int]] = field(default_factory=dict)  # vs the baseline
    baseline: str | None = None
    warnings: list[str] = field(default_factory=list)

    def time(self, submission: str, workload: str) -> float:
        for r in self.rows:
            if r.submission == submission and r.workload == workload:
                return r.time
        return math.inf


def compare(
    logs: list[TrialLog],
    rule: str = "time",
    self_tuning: bool = False,
    strict: bool = False,
    baseline: str | None = None,
    warnings: list[str] | None = None,
) -> Comparison:
    warnings = list(warnings or [])
    submissions = sorted({t.submission for t in logs})
    workloads = sorted({t.workload for t in logs})
    if baseline is not None and baseline not in submissions:
        raise UsageError(f"--baseline={baseline} is not among the submissions ({', '.join(submissions)})")
    targets = {w: target_of(w, next(t.framework for t in logs if t.workload == w)) for w in workloads}

    by_study: dict[tuple[str, str, int], list[TrialLog]] = defaultdict(list)
    for t in logs:
        by_study[(t.submission, t.workload, t.study)].append(t)
    problems = _coverage_problems(by_study, submissions, workloads, self_tuning)
    if strict and problems:
        raise UsageError(f"--strict: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    warnings += problems

    trial_rows, study_results = [], defaultdict(list)
    for (submission, workload, _), trials in sorted(by_study.items()):
        target = targets[workload]
        if self_tuning:
            trials = sorted(trials, key=lambda t: t.trial)[:1]  # one trial per study; extra ones were warned about
        hits = {
            t.trial: scores.first_hit(t.times, t.steps, t.metrics.get(target.column, _nans(t)), target.value,
                                      target.lower_is_better)
            for t in trials
        }  # fmt: skip
        chosen = scores.best_trial(hits, rule)
        trial_rows += [TrialRow(t, hits[t.trial], t.trial == chosen) for t in trials]
        best = hits[chosen] if chosen is not None else scores.Hit()
        study_results[(submission, workload)].append(best)

    rows = []
    for (submission, workload), hits in sorted(study_results.items()):
        rows.append(
            WorkloadRow(
                submission,
                workload,
                scores.median_time([h.time for h in hits]),
                scores.median_time([h.step if h.reached else math.inf for h in hits]),
                len(hits),
                sum(h.reached for h in hits),
            )
        )
    times = {s: {r.workload: r.time for r in rows if r.submission == s} for s in submissions}
    ratios = scores.performance_ratios(times, workloads)
    profiles = {s: scores.performance_profile(ratios[s]) for s in submissions}
    result = Comparison(
        submissions=submissions,
        workloads=workloads,
        targets=targets,
        trials=trial_rows,
        rows=rows,
        ratios=ratios,
        profiles=profiles,
        scores={s: scores.benchmark_score(profiles[s]) for s in submissions},
        baseline=baseline,
        warnings=warnings,
    )
    if baseline is not None:
        result.speedups = {s: scores.speedup(times[baseline], times[s]) for s in submissions if s != baseline}
    return result


def _coverage_problems(by_study, submissions, workloads, self_tuning) -> list[str]:
    """What AlgoPerf's rules ask for and these logs lack: every workload for every submission, the same number of
    studies per workload across submissions, one trial per study under self-tuning, equal trial counts otherwise."""
    problems = []
    studies = defaultdict(set)
    for submission, workload, study in by_study:
        studies[(submission, workload)].add(study)
    for s in submissions:
        missing = [w for w in workloads if (s, w) not in studies]
        if missing:
            problems.append(f"submission {s} has no trials on {', '.join(missing)} (scored as never reaching)")
    for w in workloads:
        counts = {s: len(studies[(s, w)]) for s in submissions if (s, w) in studies}
        if len(set(counts.values())) > 1:
            listed = ", ".join(f"{s} {n}" for s, n in counts.items())
            problems.append(f"workload {w} has different numbers of studies per submission ({listed})")
    for (s, w, k), trials in sorted(by_study.items()):
        if self_tuning and len(trials) > 1:
            first = min(t.trial for t in trials)
            problems.append(f"{s}/study_{k}/{w}: {len(trials)} trials under self-tuning; only trial {first} is scored")
    if not self_tuning:
        sizes = defaultdict(set)
        for (s, w, _), trials in by_study.items():
            sizes[(s, w)].add(len(trials))
        for (s, w), n in sorted(sizes.items()):
            if len(n) > 1:
                problems.append(f"{s}/{w}: studies have different numbers of trials ({', '.join(map(str, sorted(n)))})")
    return problems


def _nans(t: TrialLog) -> np.ndarray:
    return np.full(len(t.times), np.nan)
