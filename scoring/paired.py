"""Paired statistics over studies: study k of every submission starts from the same seed
(``common.seeds.study_seed``), hence the same initial weights and batches, so a submission is compared with the
baseline study by study.

- **Per-study ratios** d_k = log(x_sub,k / x_base,k) for time, steps and cost per step (d_time = d_steps + d_cost).
- **Paired bootstrap**: resample the study indices with replacement, the *same* indices for both submissions, and
  take the ratio of the resampled medians (AlgoPerf's per-workload statistic); the interval is the 2.5 and 97.5
  percentiles (inverted CDF: an attained value). With n studies there are only n^n equally likely resamples, so up
  to ``EXACT_LIMIT`` of them are enumerated (an exact, seed-free interval); beyond, a seeded Monte Carlo.
- **Paired test**: a two-sided one-sample t-test on the d_k of the studies both reached (H0: mean log ratio 0).
  Chosen over the exact sign-flip (permutation) test, which is reported beside it, because the sign-flip test's
  smallest attainable two-sided p is 2 / 2^n: 0.25 with 3 studies, 0.0625 with 5, so it can never resolve
  anything at 95% below 6 studies; the t-test's price is assuming the log ratios roughly normal.
- **Studies a difference needs**: the smallest n >= 2 with n >= ((t_{0.975, n-1} + t_{0.80, n-1}) s / delta)^2,
  s the sample SD of the d_k, delta = log(1.1): a paired t-test at 5% (two-sided) with 80% power for a 10%
  difference (the normal-approximation formula n = ((1.96 + 0.84) s / delta)^2 with t quantiles for small n).
"""

import itertools
import math
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05
POWER = 0.80
EFFECT = math.log(1.1)  # a 10% difference
EXACT_LIMIT = 50_000  # resamples enumerated exactly (n^n <= this: n <= 6 studies)
MONTE_CARLO = 20_000  # resamples otherwise


def t_within(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer ``df`` >= 1: the closed finite series (Abramowitz & Stegun
    26.7.3-4) in theta = atan(t / sqrt(df))."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    t = abs(t)
    if math.isinf(t):
        return 1.0
    theta = math.atan(t / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 0:  # sin(theta) (1 + 1/2 c^2 + (1*3)/(2*4) c^4 + ... up to c^(df-2))
        term, total = 1.0, 1.0
        for k in range(1, df // 2):
            term *= c2 * (2 * k - 1) / (2 * k)
            total += term
        return s * total
    if df == 1:
        return 2 * theta / math.pi
    # odd df > 1: (2/pi) (theta + sin(theta) cos(theta) (1 + 2/3 c^2 + (2*4)/(3*5) c^4 + ... up to c^(df-3)))
    term, total = 1.0, 1.0
    for k in range(1, (df - 1) // 2):
        term *= c2 * (2 * k) / (2 * k + 1)
        total += term
    return 2 / math.pi * (theta + s * math.sqrt(c2) * total)


def t_two_sided_p(t: float, df: int) -> float:
    return max(0.0, 1.0 - t_within(t, df))


def t_quantile(q: float, df: int) -> float:
    """The q-quantile (q in [0.5, 1)) of Student's t with integer ``df``, by bisection on ``t_within``."""
    target = 2 * q - 1  # P(|T| <= t) for the upper q-quantile
    lo, hi = 0.0, 1.0
    while t_within(hi, df) < target:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_within(mid, df) < target else (lo, mid)
    return (lo + hi) / 2


def sign_flip_p(d: list[float]) -> float:
    """Exact two-sided sign-flip test: the fraction of the 2^n sign patterns whose |sum| is at least the
    observed |sum| of ``d`` (under H0 each paired difference is as likely negated)."""
    observed = abs(sum(d)) - 1e-12 * (1 + sum(abs(x) for x in d))
    hits = sum(abs(sum(s * x for s, x in zip(signs, d, strict=True))) >= observed
               for signs in itertools.product((1, -1), repeat=len(d)))  # fmt: skip
    return hits / 2 ** len(d)


def studies_needed(sd: float, effect: float = EFFECT, alpha: float = ALPHA, power: float = POWER) -> int:
    """The smallest n >= 2 with n >= ((t_{1-alpha/2, n-1} + t_{power, n-1}) sd / effect)^2 (module docstring)."""
    if not math.isfinite(sd):
        raise ValueError(f"sd must be finite, got {sd}")
    n = 2
    while n < ((t_quantile(1 - alpha / 2, n - 1) + t_quantile(power, n - 1)) * sd / effect) ** 2:
        n += 1
    return n


@dataclass(frozen=True)
class PairedTest:
    n: int  # studies both reached
    mean: float  # mean log ratio (exp: the geometric-mean ratio)
    sd: float  # sample SD of the log ratios (NaN below 2 studies)
    t: float
    p: float  # the t-test's two-sided p (NaN below 2 studies)
    p_sign: float  # the exact sign-flip test's (NaN with no study)
    studies_for_10pct: int | None  # None below 2 studies

    @property
    def resolved(self) -> bool:
        return self.p < ALPHA  # False for NaN

    @property
    def sign_floor(self) -> float:
        """The smallest p the sign-flip test can give with these studies."""
        return 2.0 / 2**self.n if self.n else math.nan


def paired_test(log_ratios: list[float]) -> PairedTest:
    """The paired test on the finite per-study log ratios (studies either side did not reach are left out)."""
    d = [x for x in log_ratios if math.isfinite(x)]
    n = len(d)
    if n == 0:
        return PairedTest(0, math.nan, math.nan, math.nan, math.nan, math.nan, None)
    mean = sum(d) / n
    if n == 1:
        return PairedTest(1, mean, math.nan, math.nan, math.nan, sign_flip_p(d), None)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    if sd == 0:
        t, p = (0.0, 1.0) if mean == 0 else (math.copysign(math.inf, mean), 0.0)
    else:
        t = mean / (sd / math.sqrt(n))
        p = t_two_sided_p(t, n - 1)
    return PairedTest(n, mean, sd, t, p, sign_flip_p(d), studies_needed(sd))


def resample_indices(nb: int, ns: int, rng: np.random.Generator | None = None, paired: bool = True) -> tuple:
    """Index arrays (resamples x nb, resamples x ns) into the baseline's and the submission's studies. Paired
    (nb == ns): one array for both sides. All resamples (n^n paired, nb^nb x ns^ns unpaired, equally likely) when
    at most ``EXACT_LIMIT``, else ``MONTE_CARLO`` drawn from ``rng``."""
    if paired and nb != ns:
        raise ValueError(f"paired studies must align: {nb} and {ns} studies")
    width = nb if paired else nb + ns
    if (nb**nb if paired else nb**nb * ns**ns) <= EXACT_LIMIT:
        ranges = [range(nb)] * nb + ([] if paired else [range(ns)] * ns)
        both = np.array(list(itertools.product(*ranges)), dtype=np.int64).reshape(-1, width)
    elif rng is None:
        raise ValueError(f"{nb} and {ns} studies need a Monte Carlo bootstrap: pass a random generator")
    else:
        both = np.concatenate([rng.integers(0, nb, size=(MONTE_CARLO, nb))]
                              + ([] if paired else [rng.integers(0, ns, size=(MONTE_CARLO, ns))]), axis=1)  # fmt: skip
    return (both, both) if paired else (both[:, :nb], both[:, nb:])


def percentile_interval(values: np.ndarray) -> tuple[float, float]:
    """The (2.5, 97.5) percentiles by the inverted CDF (attained values); NaN values are left out."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(values, [2.5, 97.5], method="inverted_cdf")
    return float(lo), float(hi)


def median_ratios(base: list[float], sub: list[float], idx: tuple) -> np.ndarray:
    """Per resample, median(sub[resampled]) / median(base[resampled]); NaN where either median is inf (the
    median study did not reach), so those resamples leave the interval (as they leave the point estimate)."""
    b = np.median(np.asarray(base, dtype=np.float64)[idx[0]], axis=1)
    s = np.median(np.asarray(sub, dtype=np.float64)[idx[1]], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isfinite(b) & np.isfinite(s), s / b, np.nan)


@dataclass(frozen=True)
class Interval:
    point: float  # ratio of the medians
    lo: float
    hi: float


def ratio_intervals(
    base: tuple[list[float], list[float]], sub: tuple[list[float], list[float]], rng=None, paired: bool = True
) -> dict[str, Interval]:
    """Time, steps and cost-per-step ratios (sub / base) with bootstrap intervals, from per-study (times, steps)
    of each side, aligned by study when ``paired``; the cost ratio of a resample is its time ratio over its step
    ratio."""
    (bt, bn), (st, sn) = base, sub
    if not bt or not st:
        nothing = Interval(math.nan, math.nan, math.nan)
        return {"time": nothing, "steps": nothing, "cost": nothing}
    idx = resample_indices(len(bt), len(st), rng, paired)
    t, k = median_ratios(bt, st, idx), median_ratios(bn, sn, idx)
    with np.errstate(invalid="ignore", divide="ignore"):
        cost = t / k
    point_t = _ratio_of_medians(bt, st)
    point_n = _ratio_of_medians(bn, sn)
    return {
        "time": _interval(point_t, t),
        "steps": _interval(point_n, k),
        "cost": _interval(point_t / point_n if point_n > 0 else math.nan, cost),
    }


def _interval(point: float, resampled: np.ndarray) -> Interval:
    """No interval where the point is undefined (a median study did not reach): resamples that happen to reach
    would describe another sample."""
    return (
        Interval(point, *percentile_interval(resampled))
        if math.isfinite(point)
        else Interval(point, math.nan, math.nan)
    )


def _ratio_of_medians(base: list[float], sub: list[float]) -> float:
    b, s = float(np.median(base)), float(np.median(sub))
    return s / b if math.isfinite(b) and math.isfinite(s) and b > 0 else math.nan


def log_ratios(base: list[float], sub: list[float]) -> list[float]:
    """Per study, log(sub / base); NaN where either did not reach."""
    return [math.log(s / b) if math.isfinite(b) and math.isfinite(s) and b > 0 and s > 0 else math.nan
            for b, s in zip(base, sub, strict=True)]  # fmt: skip


def bootstrap_speedup(
    baseline: dict[str, list[float]], submission: dict[str, list[float]], rng: np.random.Generator, n: int
) -> tuple[float, float]:
    """The (2.5, 97.5) percentiles of kronbench's speedup (geometric mean over the workloads both reached of
    t_base / t_sub, each workload's times the medians of a resample) over ``n`` resamples that draw each workload's
    study indices once for both submissions (aligned lists, study k at position k); workloads independently.
    NaN when no resample has a workload both reached."""
    workloads = [w for w in baseline if w in submission]
    logs = np.zeros(n)
    shared = np.zeros(n, dtype=np.int64)
    for w in workloads:
        b, s = np.asarray(baseline[w], dtype=np.float64), np.asarray(submission[w], dtype=np.float64)
        if len(b) != len(s):
            raise ValueError(f"{w}: paired studies must align ({len(b)} and {len(s)})")
        idx = rng.integers(0, len(b), size=(n, len(b)))
        mb, ms = np.median(b[idx], axis=1), np.median(s[idx], axis=1)
        both = np.isfinite(mb) & np.isfinite(ms)
        with np.errstate(invalid="ignore", divide="ignore"):
            logs += np.where(both, np.log(mb / ms), 0.0)
        shared += both
    return percentile_interval(np.exp(logs[shared > 0] / shared[shared > 0]))
