"""Time to target split into its two factors: steps to target (the algorithm: machine-independent) and seconds per
step (the implementation on this hardware), each as a ratio to the baseline.

Per (submission, workload), over the studies: the median time to target T and the median steps to target N, as
AlgoPerf's scoring takes them (each study's chosen trial; a study that never reached counts as infinitely slow).
Seconds per step is C = T / N, so against the baseline b the time ratio factors exactly:

    T_s / T_b = (N_s / N_b) x (C_s / C_b)     time ratio = step ratio x cost ratio

(the ratios of the medians; the cost ratio is the time ratio divided by the step ratio).
"""

import math
from collections import defaultdict
from dataclasses import dataclass

from scoring import scores
from scoring.compare import Comparison, TrialRow


@dataclass(frozen=True)
class StudyHit:
    """One study of one (submission, workload): its chosen trial's time and steps to target (inf when no trial
    reached), and the refined time (runner/refine.py) where the trial recorded one for that eval, else the time."""

    study: int
    time: float
    step: float
    refined: float


@dataclass(frozen=True)
class Decomposition:
    submission: str
    workload: str
    time: float  # median over studies (s); inf when the median study did not reach
    steps: float  # median over studies of steps to target
    steps_lo: float  # the fewest steps of a study
    steps_hi: float  # the most; inf when a study never reached
    refined_time: float  # median refined time; equal to time where nothing was refined
    refined_studies: int  # studies whose time is refined
    reached: int
    studies: int

    @property
    def seconds_per_step(self) -> float:
        return self.time / self.steps if math.isfinite(self.time) and self.steps > 0 else math.nan


def per_study(c: Comparison) -> dict[tuple[str, str], list[StudyHit]]:
    """(submission, workload) -> each study's hit, in study order (studies with no reached trial included)."""
    studies: dict[tuple[str, str], dict[int, StudyHit]] = defaultdict(dict)
    for row in c.trials:
        key, k = (row.log.submission, row.log.workload), row.log.study
        if row.chosen and row.hit.reached:
            refined = row.log.refined[0] if refines(row) else row.hit.time
            studies[key][k] = StudyHit(k, row.hit.time, float(row.hit.step), refined)
        else:
            studies[key].setdefault(k, StudyHit(k, math.inf, math.inf, math.inf))
    return {key: [hits[k] for k in sorted(hits)] for key, hits in studies.items()}


def refines(row: TrialRow) -> bool:
    """Whether the trial's refined record refines the eval at which the scorer found the target first."""
    return row.log.refined is not None and math.isclose(row.log.refined[1], row.hit.time, rel_tol=1e-9)


def decompose(c: Comparison) -> list[Decomposition]:
    """One row per (submission, workload) with logs, in the Comparison's order."""
    hits = per_study(c)
    out = []
    for r in c.rows:
        studies = hits.get((r.submission, r.workload), [])
        steps = [h.step for h in studies]
        out.append(
            Decomposition(
                submission=r.submission,
                workload=r.workload,
                time=scores.median_time([h.time for h in studies]),
                steps=scores.median_time(steps),
                steps_lo=min(steps, default=math.inf),
                steps_hi=max(steps, default=math.inf),
                refined_time=scores.median_time([h.refined for h in studies]),
                refined_studies=sum(h.refined != h.time for h in studies),
                reached=sum(math.isfinite(h.time) for h in studies),
                studies=len(studies),
            )
        )
    return out


@dataclass(frozen=True)
class Ratios:
    """A submission's row over the baseline's, on one workload: NaN where either median study did not reach."""

    submission: str
    workload: str
    time: float
    steps: float
    cost: float  # = time / steps
    refined_time: float


def ratio(sub: float, base: float) -> float:
    return sub / base if math.isfinite(sub) and math.isfinite(base) and base > 0 else math.nan


def ratios(rows: list[Decomposition], baseline: str) -> list[Ratios]:
    """Every non-baseline row's ratios to the baseline's row on the same workload."""
    base = {r.workload: r for r in rows if r.submission == baseline}
    out = []
    for r in rows:
        b = base.get(r.workload)
        if r.submission == baseline or b is None:
            continue
        t, n = ratio(r.time, b.time), ratio(r.steps, b.steps)
        out.append(Ratios(r.submission, r.workload, t, n, t / n if n > 0 else math.nan,
                          ratio(r.refined_time, b.refined_time)))  # fmt: skip
    return out
