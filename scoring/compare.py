"""From trial logs to AlgoPerf's numbers: per-trial hits, best trial per study, median per workload, profiles,
scores and speedups, with the checks ``--strict`` turns from warnings into errors."""

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from common import layout
from common.errors import UsageError
from scoring import scores
from scoring.experiments import TrialLog
from scoring.frameworks import Entries, split_entries
from scoring.plan import ALGOPERF_TRIALS, CampaignPlan
from scoring.targets import DEFAULT_VERSION, Benchmark, Target, benchmark, own_budget, target_of

EXTERNAL_TRIALS = ALGOPERF_TRIALS["external"]  # trials per study under external tuning


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
    workloads: list[str]  # every workload with logs
    targets: dict[str, Target]
    trials: list[TrialRow]
    rows: list[WorkloadRow]
    ratios: dict[str, np.ndarray]  # over base_workloads, after the 4x and held-out rules
    profiles: dict[str, np.ndarray]
    scores: dict[str, float]
    base_workloads: list[str] = field(default_factory=list)  # the profile's workloads
    variants: dict[str, str] = field(default_factory=dict)  # held-out variant -> its base workload
    speedups: dict[str, tuple[float, int]] = field(default_factory=dict)  # kronbench's, vs the baseline
    official_speedups: dict[str, float] = field(default_factory=dict)  # compute_speedups', vs the baseline
    baseline: str | None = None
    version: str = DEFAULT_VERSION
    warnings: list[str] = field(default_factory=list)
    design: str | None = None  # a campaign smaller than AlgoPerf's by design (scoring.plan), stated once
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (trial path, why it was not scored)
    entries: Entries = field(default_factory=Entries)  # workload entries split per framework (scoring.frameworks)

    def time(self, submission: str, workload: str) -> float:
        for r in self.rows:
            if r.submission == submission and r.workload == workload:
                return r.time
        return math.inf


def compare(
    logs: list[TrialLog],
    rule: str = "eval_index",
    self_tuning: bool = False,
    strict: bool = False,
    baseline: str | None = None,
    warnings: list[str] | None = None,
    skipped: list[tuple[str, str]] | None = None,
    version: str = DEFAULT_VERSION,
    plan: CampaignPlan | None = None,
) -> Comparison:
    """Score trial logs as AlgoPerf does: each trial's first hit of its workload's target, the best trial per study
    (``rule``: how ``scores.best_trial`` picks it; under ``self_tuning`` a study's first trial only), the median
    over studies per workload, then performance ratios, profiles and benchmark scores per submission (held-out
    variants by AlgoPerf's held-out rule), and speedups against ``baseline``. Coverage problems (missing studies or
    trials) are ``warnings``, or a UsageError under ``strict``; ``skipped`` lists logs not scored, and why.

    ``plan`` (what the campaign asked for, from its manifest) replaces AlgoPerf's trial count per study in the
    coverage checks, unless ``strict`` (AlgoPerf's rules) or it was planned under the other ruleset."""
    warnings, skipped = list(warnings or []), list(skipped or [])
    if strict or (plan is not None and plan.tuning_ruleset != ("self" if self_tuning else "external")):
        plan = None
    bench = benchmark(version)
    logs, entries = split_entries(logs)  # from here on a log's workload is its entry (mnist_jax, or mnist)
    submissions = sorted({t.submission for t in logs})
    workloads = sorted(entries.sources)
    if baseline is not None and baseline not in submissions:
        raise UsageError(f"--baseline={baseline} is not among the submissions ({', '.join(submissions)})")
    targets = {w: target_of(*entries.sources[w]) for w in workloads}

    by_study = _by_study(logs)
    warnings += _checked_coverage(by_study, submissions, workloads, self_tuning, plan, strict)

    trial_rows, rows = _choose(by_study, targets, rule, self_tuning, skipped)
    times = {s: {r.workload: r.time for r in rows if r.submission == s} for s in submissions}
    base, variants = _profile_workloads(bench, entries, workloads, warnings)
    ratios, profiles = _profiles(times, base, variants)
    result = Comparison(
        submissions=submissions,
        workloads=workloads,
        targets=targets,
        trials=trial_rows,
        rows=rows,
        ratios=ratios,
        profiles=profiles,
        scores={s: scores.benchmark_score(profiles[s]) for s in submissions},
        base_workloads=base,
        variants=variants,
        baseline=baseline,
        version=version,
        warnings=warnings,
        design=plan.note() if plan is not None and plan.smaller_than_algoperf() else None,
        skipped=skipped,
        entries=entries,
    )
    if baseline is not None:
        budgets = _speedup_budgets(bench, entries, base, self_tuning, warnings)
        result.speedups, result.official_speedups = _speedups(times, base, baseline, budgets)
    return result


def _by_study(logs: list[TrialLog]) -> dict[tuple[str, str, int], list[TrialLog]]:
    """The trials of each (submission, workload, study)."""
    by_study: dict[tuple[str, str, int], list[TrialLog]] = defaultdict(list)
    for t in logs:
        by_study[(t.submission, t.workload, t.study)].append(t)
    return by_study


def _profiles(times: dict, base: list[str], variants: dict) -> tuple[dict, dict]:
    """Performance ratios over the base workloads (held-out variants by AlgoPerf's rule) and each submission's
    profile."""
    profile_times = scores.held_out_rule({s: {w: ts.get(w, math.inf) for w in base + list(variants)}
                                          for s, ts in times.items()}, variants)  # fmt: skip
    ratios = scores.performance_ratios(profile_times, base)
    return ratios, {s: scores.performance_profile(ratios[s]) for s in times}


def _checked_coverage(by_study, submissions, workloads, self_tuning, plan, strict) -> list[str]:
    """The coverage problems, as warnings; under ``strict`` the first one is a UsageError."""
    problems = _coverage_problems(by_study, submissions, workloads, self_tuning, plan)
    if strict and problems:
        raise UsageError(f"--strict: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    return problems


def _speedups(times: dict, base: list[str], baseline: str, budgets) -> tuple[dict, dict]:
    """kronbench's and the official speedup of every other submission over ``baseline``, on the base workloads
    (not reached: infinite time)."""
    base_times = {s: {w: ts.get(w, math.inf) for w in base} for s, ts in times.items()}
    others = [s for s in times if s != baseline]
    kron = {s: scores.speedup(base_times[baseline], base_times[s]) for s in others}
    official = {s: scores.official_speedup(base_times[baseline], base_times[s], budgets) for s in others}
    return kron, official


def _choose(by_study, targets, rule, self_tuning, skipped) -> tuple[list[TrialRow], list[WorkloadRow]]:
    """Each study's best trial, then each workload's median over studies."""
    trial_rows, study_results = [], defaultdict(list)
    for (submission, workload, _), trials in sorted(by_study.items()):
        if self_tuning:  # one trial per study; extra ones were warned about
            trials = sorted(trials, key=lambda t: t.trial)
            skipped += [(t.path, "an extra trial of a self-tuning study") for t in trials[1:]]
            trials = trials[:1]
        hits = {t.trial: _hit(t, targets[workload]) for t in trials}
        chosen = scores.best_trial(hits, rule)
        trial_rows += [TrialRow(t, hits[t.trial], t.trial == chosen) for t in trials]
        study_results[(submission, workload)].append(hits[chosen] if chosen is not None else scores.Hit())
    rows = [
        WorkloadRow(
            submission,
            workload,
            scores.median_time([h.time for h in hits]),
            scores.median_time([h.step if h.reached else math.inf for h in hits]),
            len(hits),
            sum(h.reached for h in hits),
        )
        for (submission, workload), hits in sorted(study_results.items())
    ]
    return trial_rows, rows


def _hit(t: TrialLog, target: Target) -> scores.Hit:
    """Where a trial first reached its target; a diverged trial never did."""
    if t.diverged:
        return scores.Hit()
    values = t.metrics.get(target.column, np.full(len(t.times), np.nan))
    return scores.first_hit(t.times, t.steps, values, target.value, target.lower_is_better)


def _profile_workloads(
    bench: Benchmark, entries: Entries, workloads: list[str], warnings: list[str]
) -> tuple[list[str], dict]:
    """The base workload entries the profile is over and the held-out variants (variant -> base) that gate them."""
    variants = {}
    for w in workloads:
        b = entries.base(w, bench.base_of)
        if b == w:
            continue
        if bench.held_out_workloads and entries.workload(w) not in bench.held_out_workloads:
            warnings.append(f"{w} is not a held-out workload of v{bench.version}; left out of the profile")
        elif b not in workloads:
            warnings.append(f"{w} is a variant of {b}, which has no logs; left out of the profile")
        else:
            variants[w] = b
    base = [w for w in workloads if entries.base(w, bench.base_of) == w]
    if any(bench.is_official(entries.workload(w)) for w in base):
        logged = {entries.workload(w) for w in workloads}
        absent = [w for w in bench.base_workloads if w not in logged]
        if absent:
            warnings.append(
                f"base workload(s) of v{bench.version} without logs from any submission, left out of the profile: "
                + ", ".join(absent)
            )
    return base, variants


def _speedup_budgets(bench: Benchmark, entries: Entries, base: list[str], self_tuning: bool, warnings: list[str]):
    """What the official speedup charges for "not reached": the first competition's budget (x3 under self-tuning,
    as compute_speedups) for official workloads, the workload's own budget (x1.5 under self-tuning, the runner's
    rule) for kronbench's: {workload: seconds}."""
    budgets = {}
    for w in base:
        name = entries.workload(w)
        if bench.is_official(name):
            b, factor = bench.speedup_budgets.get(name), (3.0 if self_tuning else 1.0)
        else:
            b, factor = own_budget(name), (1.5 if self_tuning else 1.0)
        if b is None:
            warnings.append(f"no runtime budget known for {w}; left out of the official speedup")
        else:
            budgets[w] = factor * b
    return budgets


def _coverage_problems(by_study, submissions, workloads, self_tuning, plan: CampaignPlan | None) -> list[str]:
    """What AlgoPerf's rulesets ask for and these logs lack: every workload for every submission and the same
    studies for each; per study, 5 trials under external tuning (or as many as ``plan`` asked for), 1 under
    self-tuning."""
    problems = []
    studies = defaultdict(set)
    for submission, workload, study in by_study:
        studies[(submission, workload)].add(study)
    for s in submissions:
        missing = [w for w in workloads if (s, w) not in studies]
        if missing:
            problems.append(f"submission {s} has no trials on {', '.join(missing)} (scored as never reaching)")
    for w in workloads:
        ran = {s: studies[(s, w)] for s in submissions if (s, w) in studies}
        if len({frozenset(k) for k in ran.values()}) > 1:
            listed = "; ".join(f"{s}: {', '.join(map(str, sorted(k)))}" for s, k in ran.items())
            problems.append(f"workload {w}: submissions ran different studies ({listed})")
    for (s, w, k), trials in sorted(by_study.items()):
        where = f"{s}/{layout.study_name(k)}/{w}"
        if self_tuning and len(trials) > 1:
            first = min(t.trial for t in trials)
            problems.append(f"{where}: {len(trials)} trials under self-tuning; only trial {first} is scored")
        elif not self_tuning and len(trials) != (EXTERNAL_TRIALS if plan is None else plan.num_tuning_trials):
            problems.append(f"{where}: {len(trials)} trial(s) where {_expected(plan)}")
    return problems


def _expected(plan: CampaignPlan | None) -> str:
    expects = f"external tuning expects {EXTERNAL_TRIALS}"
    if plan is None or plan.num_tuning_trials == EXTERNAL_TRIALS:
        return expects
    return f"the campaign planned {plan.num_tuning_trials} and {expects}"
