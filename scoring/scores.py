"""AlgoPerf's scoring arithmetic (docs/algoperf_contract.md section 6), as pure functions on arrays and dicts.

Trial -> time to target; study -> its best trial; workload -> median over studies; then, across submissions,
the 4x rule, performance profiles, the benchmark score and speedups over a baseline. ``inf`` means "never reached".
"""

import math
from dataclasses import dataclass

import numpy as np

from common import targets

MAX_TAU = 4.0
TAUS = np.linspace(1.0, MAX_TAU, 100)

# How a study's best trial is chosen. "eval_index" (the default, the official scorer's rule): the trial whose first
# hit comes at the earliest eval index; the official code breaks ties by directory listing order, and the published
# v0.6 scores are the ones obtained when ties go to the earlier submission time, then the lower trial number.
# "time": the earliest submission time to target (kronbench's earlier default); the two differ when trials evaluate
# at different rates, where the official rule can pick a trial that needed more time.
TRIAL_RULES = ("time", "eval_index")


@dataclass(frozen=True)
class Hit:
    """Where a trial first reached its target; ``index`` is None (and time inf) when it never did."""

    time: float = math.inf
    step: int | None = None
    index: int | None = None

    @property
    def reached(self) -> bool:
        return self.index is not None


def first_hit(times: np.ndarray, steps: np.ndarray, values: np.ndarray, target: float, lower_is_better: bool) -> Hit:
    """The first eval whose validation metric reaches ``target`` (``<=`` or ``>=``); a non-finite value (NaN, or
    the inf of a diverged loss) never does."""
    hits = np.flatnonzero(targets.reached(values, target, lower_is_better, inclusive=True))
    if hits.size == 0:
        return Hit()
    i = int(hits[0])
    return Hit(float(times[i]), int(steps[i]), i)


def best_trial(hits: dict[int, Hit], rule: str = "time") -> int | None:
    """The chosen trial number of a study (None if no trial reached the target). Ties under "eval_index" go to
    the earlier time, then to the lower number; under "time" to the lower number."""
    if rule not in TRIAL_RULES:
        raise ValueError(f"unknown trial rule {rule!r}; use one of {TRIAL_RULES}")
    reached = {n: h for n, h in hits.items() if h.reached}
    if not reached:
        return None
    key = (lambda n: (reached[n].time, n)) if rule == "time" else (lambda n: (reached[n].index, reached[n].time, n))
    return min(reached, key=key)


def median_time(study_times: list[float]) -> float:
    """Median over studies; inf counts as slower than everything, so most studies must reach for a finite median."""
    return float(np.median(np.asarray(study_times, dtype=np.float64))) if study_times else math.inf


def performance_ratios(times: dict[str, dict[str, float]], workloads: list[str]) -> dict[str, np.ndarray]:
    """r[s][w] = t[s][w] / min_s t[s][w]; beyond MAX_TAU (the 4x rule) or never reached -> inf. A workload missing
    for a submission counts as never reached."""
    t = np.array([[times[s].get(w, math.inf) for w in workloads] for s in times], dtype=np.float64)
    best = t.min(axis=0) if len(times) else np.array([])
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(np.isfinite(best), t / best, math.inf)
    r[~(r <= MAX_TAU)] = math.inf
    return dict(zip(times, r, strict=True))


def performance_profile(ratios: np.ndarray, taus: np.ndarray = TAUS) -> np.ndarray:
    """rho(tau): the fraction of workloads whose ratio is <= tau."""
    if ratios.size == 0:
        return np.zeros_like(taus)
    return (ratios[None, :] <= taus[:, None]).mean(axis=1)


def benchmark_score(rho: np.ndarray, taus: np.ndarray = TAUS) -> float:
    """Area under the profile over [1, MAX_TAU], normalised to [0, 1] (trapezoidal rule, as AlgoPerf)."""
    return float(np.trapezoid(rho, taus) / (taus[-1] - taus[0]))


def held_out_rule(times: dict[str, dict[str, float]], base_of: dict[str, str]) -> dict[str, dict[str, float]]:
    """AlgoPerf v0.5's held-out rule on per-submission median times, keyed by workload (bases and the variants in
    ``base_of``, variant -> base): a variant counts as not reached where its base is not; the 4x rule then applies
    to bases and variants alike; a base counts as not reached where its variant is. Returns the bases only. Without
    variants this is the 4x rule alone."""
    columns = sorted({w for t in times.values() for w in t})
    t = {s: {w: ts.get(w, math.inf) for w in columns} for s, ts in times.items()}
    for v, b in base_of.items():
        for ts in t.values():
            if not math.isfinite(ts[b]):
                ts[v] = math.inf
    for w in columns:
        best = min(ts[w] for ts in t.values())
        for ts in t.values():
            if ts[w] > MAX_TAU * best:
                ts[w] = math.inf
    for v, b in base_of.items():
        for ts in t.values():
            if not math.isfinite(ts[v]):
                ts[b] = math.inf
    return {s: {w: x for w, x in ts.items() if w not in base_of} for s, ts in t.items()}


def speedup(baseline: dict[str, float], submission: dict[str, float]) -> tuple[float, int]:
    """kronbench's figure: geometric mean of t_baseline / t_submission over the workloads both reached, and how
    many those are (> 1: the submission is faster)."""
    shared = [w for w in baseline if w in submission and math.isfinite(baseline[w]) and math.isfinite(submission[w])]
    if not shared:
        return math.nan, 0
    logs = [math.log(baseline[w] / submission[w]) for w in shared]
    return math.exp(sum(logs) / len(logs)), len(shared)


def official_speedup(baseline: dict[str, float], submission: dict[str, float], budgets: dict[str, float]) -> float:
    """The official ``compute_speedups`` figure: geometric mean over the workloads of ``budgets`` of
    t_submission / t_baseline (< 1: the submission is faster), a time not reached (or missing) counting as its
    budget + 1 s (the caller passes the budget x3 under self-tuning, as the official script)."""
    if not budgets:
        return math.nan

    def t(times: dict[str, float], w: str) -> float:
        x = times.get(w, math.inf)
        return x if math.isfinite(x) else budgets[w] + 1.0

    logs = [math.log(t(submission, w) / t(baseline, w)) for w in budgets]
    return math.exp(sum(logs) / len(logs))
