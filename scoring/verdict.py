"""The verdict tables: time to target split into steps and cost per step (scoring.decompose), and the paired
analysis of each submission against the baseline (scoring.paired), as rows of strings for the terminal, report.md
and the leaderboard."""

import math
from dataclasses import dataclass

import numpy as np

from scoring import paired
from scoring.compare import Comparison
from scoring.decompose import Decomposition, StudyHit, decompose, per_study, ratios

STEPS_NOTE = (
    "Steps to target are the machine-independent part (the algorithm, given the data order); seconds per step "
    "(median time / median steps) are the implementation on this hardware. Ratios are over the baseline's medians: "
    "time ratio = step ratio x cost ratio (< 1 = fewer steps, cheaper steps, less time)."
)


def _ratio(x: float) -> str:
    return f"{x:.3f}" if math.isfinite(x) else "n/a"


def _steps(d: Decomposition) -> str:
    if not math.isfinite(d.steps):
        return "-"
    hi = f"{d.steps_hi:.0f}" if math.isfinite(d.steps_hi) else "-"
    return f"{d.steps:.0f} [{d.steps_lo:.0f}, {hi}]"


def _per_step(d: Decomposition) -> str:
    s = d.seconds_per_step
    return f"{s * 1000:.1f} ms" if math.isfinite(s) and s < 1 else (f"{s:.2f} s" if math.isfinite(s) else "-")


def decomposition_table(c: Comparison) -> list[list[str]]:
    """Per workload and submission: steps to target (median [fewest, most] over studies), seconds per step, and
    the step, cost and time ratios to the baseline (a refined time ratio where any study recorded one); header
    first. Without a baseline, the ratio columns are left out."""
    rows = decompose(c)
    by = {(r.submission, r.workload): r for r in rows}
    rat = {(r.submission, r.workload): r for r in ratios(rows, c.baseline)} if c.baseline else {}
    refined = any(r.refined_studies for r in rows)
    header = ["workload", "submission", "steps to target [min, max]", "time per step"]
    if c.baseline:
        header += ["step ratio", "cost ratio", "time ratio"] + (["refined time ratio"] if refined else [])
    out = [header]
    for w in c.workloads:
        for s in c.submissions:
            d = by.get((s, w))
            if d is None:
                continue
            cells = [w, s, _steps(d), _per_step(d)]
            if c.baseline:
                r = rat.get((s, w))
                if s == c.baseline:
                    cells += ["(baseline)", "", ""] + ([""] if refined else [])
                else:
                    cells += [_ratio(r.steps), _ratio(r.cost), _ratio(r.time)] + ([_ratio(r.refined_time)] if refined
                                                                                   else [])  # fmt: skip
            out.append(cells)
    return out


@dataclass(frozen=True)
class PairedRow:
    submission: str
    workload: str
    studies: list[int]  # the studies both sides ran, in order
    study_ratios: list[float]  # per study, t_sub / t_base (NaN where either did not reach)
    intervals: dict[str, paired.Interval]  # "time", "steps", "cost"
    tests: dict[str, paired.PairedTest]  # "time", "steps"
    reference: str  # what the submission is compared with: the baseline, or a pair's reference


def paired_rows(c: Comparison, seed: int = 0, pairs: list[tuple[str, str]] | None = None) -> list[PairedRow]:
    """Each non-baseline submission against the baseline on every workload both ran, over their common studies;
    or, with ``pairs``, each (submission, reference) pair's submission against its reference."""
    hits = per_study(c)
    rng = np.random.default_rng(seed)
    pairs = pairs if pairs is not None else [(s, c.baseline) for s in c.submissions if s != c.baseline]
    out = []
    for w in c.workloads:
        for s, reference in pairs:
            base = {h.study: h for h in hits.get((reference, w), [])}
            if (s, w) not in hits:
                continue
            sub = {h.study: h for h in hits[(s, w)]}
            common = sorted(set(base) & set(sub))
            b, u = [base[k] for k in common], [sub[k] for k in common]
            out.append(_paired_row(s, w, common, b, u, rng, reference))
    return out


def _paired_row(
    s: str, w: str, common: list[int], b: list[StudyHit], u: list[StudyHit], rng, reference: str
) -> PairedRow:
    times = ([h.time for h in b], [h.time for h in u])
    steps = ([h.step for h in b], [h.step for h in u])
    intervals = paired.ratio_intervals((times[0], steps[0]), (times[1], steps[1]), rng, paired=True)
    tests = {
        "time": paired.paired_test(paired.log_ratios(*times)),
        "steps": paired.paired_test(paired.log_ratios(*steps)),
    }
    study_ratios = [math.exp(x) if math.isfinite(x) else math.nan for x in paired.log_ratios(*times)]
    return PairedRow(s, w, common, study_ratios, intervals, tests, reference)


def _interval(i: paired.Interval) -> str:
    if not math.isfinite(i.point):
        return "n/a"
    return f"{i.point:.2f} [{i.lo:.2f}, {i.hi:.2f}]" if math.isfinite(i.lo) else f"{i.point:.2f}"


def _direction(r: PairedRow, kind: str) -> int:
    """-1 or 1 where the paired test resolves ``kind`` and the ratio of medians points the same way, else 0: the
    test sees only the studies both reached, so a submission that missed its median study (no ratio) is never
    called faster on the few it reached."""
    point, test = r.intervals[kind].point, r.tests[kind]
    if not (test.resolved and math.isfinite(point) and point > 0 and (point < 1) == (test.mean < 0)):
        return 0
    return -1 if point < 1 else 1


def _verdict(r: PairedRow, kind: str, less: str = "faster", more: str = "slower") -> str:
    t = r.tests[kind]
    if t.n < 2:
        return f"untested ({t.n} paired)"
    word = {-1: less, 1: more, 0: "no"}[_direction(r, kind)]
    if word == "no" and t.resolved:  # the test alone would call it: say why not
        point = r.intervals[kind].point
        why = "the medians disagree" if math.isfinite(point) and point > 0 else "a median study did not reach"
        return f"no (p={t.p:.3f}, but {why})"
    return f"{word} (p={t.p:.3f})"


def _needed(t: paired.PairedTest) -> str:
    return str(t.studies_for_10pct) if t.studies_for_10pct is not None else "n/a"


def paired_table(rows: list[PairedRow]) -> list[list[str]]:
    """The leaderboard's paired table; header first."""
    out = [["workload", "submission", "per-study time ratios", "step ratio [95%]", "cost ratio [95%]",
            "time ratio [95%]", "time resolved", "steps resolved", "studies for 10% (time, steps)"]]  # fmt: skip
    for r in rows:
        out.append([
            r.workload, r.submission, ", ".join(_ratio(x) for x in r.study_ratios),
            _interval(r.intervals["steps"]), _interval(r.intervals["cost"]), _interval(r.intervals["time"]),
            _verdict(r, "time"), _verdict(r, "steps", "fewer", "more"),
            f"{_needed(r.tests['time'])}, {_needed(r.tests['steps'])}",
        ])  # fmt: skip
    return out


# kronbench's submission of the algorithm each third-party submission implements (submissions/thirdparty/)
SAME_ALGORITHM = {"heavyball_soap": "soap", "meta_shampoo": "shampoo"}


def implementations_table(c: Comparison, seed: int = 0) -> list[list[str]]:
    """Where a campaign ran two implementations of one algorithm (``SAME_ALGORITHM``): per workload, each side's
    steps to target and seconds per step, and kronbench's over the other's, paired study by study; header first,
    nothing when no pair ran."""
    pairs = [(ours, theirs) for theirs, ours in SAME_ALGORITHM.items() if {ours, theirs} <= set(c.submissions)]
    if not pairs:
        return []
    by = {(d.submission, d.workload): d for d in decompose(c)}
    out = [["workload", "kronbench's", "theirs", "kronbench's steps to target", "their steps to target",
            "kronbench's time per step", "their time per step", "step ratio [95%]", "cost ratio [95%]",
            "time ratio [95%]", "time resolved", "steps resolved"]]  # fmt: skip
    for r in paired_rows(c, seed, pairs):
        theirs = r.reference
        a, b = by.get((r.submission, r.workload)), by.get((theirs, r.workload))
        if a is None or b is None:
            continue
        out.append([
            r.workload, r.submission, theirs, _steps(a), _steps(b), _per_step(a), _per_step(b),
            _interval(r.intervals["steps"]), _interval(r.intervals["cost"]), _interval(r.intervals["time"]),
            _verdict(r, "time"), _verdict(r, "steps", "fewer", "more"),
        ])  # fmt: skip
    return out


IMPLEMENTATIONS_NOTE = (
    "Two implementations of one algorithm under the same recipe, search space and study seeds: kronbench's over the "
    "other's (< 1: kronbench's needs fewer steps, cheaper steps, less time), paired study by study as above. Steps "
    "are the algorithm as each implements it; cost per step is the implementation on this machine."
)


def summary(rows: list[PairedRow], baseline: str, order: list[str]) -> list[str]:
    """The paired table in words, one bullet per submission (in ``order``): where its time to target is resolved
    faster or slower than the baseline's, how many workloads stay unresolved or untested, where its steps are
    resolved fewer or more, and the range of its cost per step."""
    by_sub: dict[str, list[PairedRow]] = {}
    for r in rows:
        by_sub.setdefault(r.submission, []).append(r)
    return [_summary_line(s, baseline, by_sub[s]) for s in order if s in by_sub]


def _summary_line(s: str, baseline: str, rows: list[PairedRow]) -> str:
    def resolved(kind: str, sign: int) -> list[str]:
        return [f"{r.workload} {r.intervals[kind].point:.2f}" for r in rows if _direction(r, kind) == sign]

    tested = [r for r in rows if r.tests["time"].n >= 2]
    untested = [r.workload for r in rows if r.tests["time"].n < 2]
    parts = []
    if tested:
        open_ = sum(not _direction(r, "time") for r in tested)
        parts += [
            f"faster on {_listed(resolved('time', -1))}",
            f"slower on {_listed(resolved('time', 1))}",
            f"unresolved on {open_} of {len(tested)} tested",
        ]
    if untested:
        parts.append(f"untested (under 2 studies both reached) on {', '.join(untested)}")
    steps = f"fewer steps on {_listed(resolved('steps', -1))}, more on {_listed(resolved('steps', 1))}"
    costs = [r.intervals["cost"].point for r in rows if math.isfinite(r.intervals["cost"].point)]
    span = dict.fromkeys(f"{c:.2f}" for c in (min(costs), max(costs))) if costs else {}
    cost = f"cost per step {'-'.join(span)}x" if span else "cost per step unknown"
    return f"- **{s}** against {baseline}, time to target: {'; '.join(parts)}. Resolved {steps}; {cost}."


def _listed(items: list[str]) -> str:
    return f"{len(items)} ({', '.join(items)})" if items else "none"


SUMMARY_NOTE = (
    "Each submission's paired analysis (below) in words: a workload counts as faster or slower only where the "
    "paired test resolves it (p < 0.05) and the ratio of medians (< 1: less time, fewer steps) is finite and points "
    "the same way; the cost per step is this machine's."
)


PAIRED_NOTE = (
    "Study k of every submission starts from the same seed (same initial weights and batches), so each submission "
    "is compared with the baseline study by study. Intervals: the 2.5 and 97.5 percentiles of the ratio of "
    "medians over bootstrap resamples that draw the *same* study indices for both (all n^n resamples enumerated "
    "up to 6 studies). Resolved: a two-sided paired t-test on the per-study log ratios of the studies both reached, "
    "p < 0.05 (the exact sign-flip test cannot go below p = 2/2^n: 0.25 with 3 studies, 0.0625 with 5). Studies "
    "for 10%: the smallest n with n >= ((t_{0.975,n-1} + t_{0.80,n-1}) s / ln 1.1)^2, s the SD of the per-study "
    "log ratios: what a paired t-test at 5% with 80% power needs to resolve a 10% difference at this spread."
)
