"""``python -m scoring.transfer``: does the CPU suite's verdict transfer to AlgoPerf? Each suite workload beside its
AlgoPerf family, Shampoo over the baseline on both sides, split into steps and cost per step (scoring.decompose).

- **Published**: AlgoPerf v0.6's external-tuning logs (``shampoo`` over ``baseline``), read from the tarball or
  folder given (never typed in): ratios of the medians over studies, with percentile-bootstrap intervals drawing
  each submission's studies independently (AlgoPerf's studies are not known to share seeds across submissions).
- **Suite**: a kronbench campaign's ``--submission`` over ``--baseline`` (shampoo over nadamw), with the paired
  intervals of scoring.paired (study k of both shares its seed).
- **Agreement**: whether the two step ratios' intervals overlap, and whether they fall on the same side of 1.
- **Projection**: the suite's step ratio times AlgoPerf's published cost ratio, the time ratio the suite's
  algorithm would show at AlgoPerf's cost per step. It is a projection, not a measurement.

    python -m scoring.transfer --submission_directory=experiments/leaderboard [--self_tuning_ruleset] \\
        [--algoperf_logs=../shared/data/algoperf/algoperf_v06_external_tuning.tar.xz] [--output=transfer.md]
"""

import argparse
import contextlib
import math
import os
import tarfile
import tempfile
from dataclasses import dataclass

import numpy as np

from common.atomic import atomic_open
from common.errors import UsageError, fail
from scoring import paired
from scoring.compare import Comparison, compare
from scoring.decompose import per_study
from scoring.experiments import read_experiments
from scoring.targets import target_of
from scoring.verdict import paired_rows

# Each suite workload's AlgoPerf family (the workloads' docstrings); stdlib_lm's, finewebedu_lm, has no logs in
# the v0.5 and v0.6 leaderboards.
FAMILIES = {
    "fashion_resnet": "imagenet_resnet",
    "fashion_vit": "imagenet_vit",
    "flights_dlrm": "criteo1tb",
    "qm9_gnn": "ogbg",
    "mri_unet": "fastmri",
    "bible_mt": "wmt",
    "espeak_asr": "librispeech_conformer",
    "stdlib_lm": None,
}
PUBLISHED_VERSION = "0.6"
PUBLISHED = ("shampoo", "baseline")  # submission, baseline in the v0.6 external-tuning logs
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_LOGS = os.path.join(os.path.dirname(ROOT), "shared", "data", "algoperf", "algoperf_v06_external_tuning.tar.xz")
NOTHING = paired.Interval(math.nan, math.nan, math.nan)


@dataclass(frozen=True)
class TransferRow:
    workload: str  # the suite's
    family: str | None  # AlgoPerf's
    published: dict[str, paired.Interval]  # "time", "steps", "cost": Shampoo over the baseline in AlgoPerf
    suite: dict[str, paired.Interval]  # the suite's submission over its baseline
    suite_studies: int

    @property
    def overlap(self) -> bool | None:
        """Whether the two step-ratio intervals overlap; None when either is missing."""
        a, b = self.published["steps"], self.suite["steps"]
        if not all(math.isfinite(x) for x in (a.lo, a.hi, b.lo, b.hi)):
            return None
        return a.lo <= b.hi and b.lo <= a.hi

    @property
    def same_side(self) -> bool | None:
        """Whether both step ratios fall on the same side of 1 (both fewer steps, or both more)."""
        a, b = self.published["steps"].point, self.suite["steps"].point
        if not (math.isfinite(a) and math.isfinite(b)):
            return None
        return (a < 1) == (b < 1) if a != 1 and b != 1 else a == b

    @property
    def projection(self) -> paired.Interval:
        """The suite's step ratio (and its interval) times AlgoPerf's published cost ratio."""
        cost, s = self.published["cost"].point, self.suite["steps"]
        return paired.Interval(s.point * cost, s.lo * cost, s.hi * cost) if math.isfinite(cost) else NOTHING


def published_ratios(c: Comparison, seed: int = 0) -> dict[str, dict[str, paired.Interval]]:
    """AlgoPerf workload -> Shampoo's time, steps and cost ratios over the baseline, unpaired intervals."""
    hits = per_study(c)
    sub, base = PUBLISHED
    rng = np.random.default_rng(seed)
    out = {}
    for w in c.workloads:
        b, s = hits.get((base, w), []), hits.get((sub, w), [])
        sides = [([h.time for h in x], [h.step for h in x]) for x in (b, s)]
        out[w] = paired.ratio_intervals(sides[0], sides[1], rng, paired=False)
    return out


def transfer_rows(published: dict, suite: Comparison, submission: str, seed: int = 0) -> list[TransferRow]:
    """One row per suite workload with logs: its family's published ratios beside the suite's paired ratios of
    ``submission`` over the Comparison's baseline."""
    mine = {r.workload: r for r in paired_rows(suite, seed) if r.submission == submission}
    out = []
    for w in suite.workloads:
        family = FAMILIES.get(w)
        pub = published.get(family, {}) if family else {}
        row = mine.get(w)
        nothing = {"time": NOTHING, "steps": NOTHING, "cost": NOTHING}
        out.append(TransferRow(w, family, pub or nothing, row.intervals if row else nothing,
                               len(row.studies) if row else 0))  # fmt: skip
    return out


def _iv(i: paired.Interval) -> str:
    if not math.isfinite(i.point):
        return "n/a"
    return f"{i.point:.3f} [{i.lo:.3f}, {i.hi:.3f}]" if math.isfinite(i.lo) else f"{i.point:.3f}"


def _yes(v: bool | None) -> str:
    return "n/a" if v is None else ("yes" if v else "no")


def table(rows: list[TransferRow], submission: str, baseline: str) -> list[list[str]]:
    """The transfer table, header first."""
    out = [["suite workload", "AlgoPerf family", "AlgoPerf step ratio [95%]", "AlgoPerf cost ratio [95%]",
            f"suite step ratio [95%] ({submission} / {baseline})", "suite cost ratio [95%]", "suite time ratio [95%]",
            "step intervals overlap", "same side of 1",
            "projected time ratio at AlgoPerf's cost (projection)"]]  # fmt: skip
    for r in rows:
        if r.family is None:
            family = "none in v0.5/v0.6" if r.workload in FAMILIES else "not a suite workload"
            out.append([r.workload, family, "", "", _iv(r.suite["steps"]), _iv(r.suite["cost"]),
                        _iv(r.suite["time"]), "n/a", "n/a", "n/a"])  # fmt: skip
            continue
        out.append([
            r.workload, r.family, _iv(r.published["steps"]), _iv(r.published["cost"]),
            _iv(r.suite["steps"]), _iv(r.suite["cost"]), _iv(r.suite["time"]), _yes(r.overlap), _yes(r.same_side),
            _iv(r.projection),
        ])  # fmt: skip
    return out


NOTE = (
    "AlgoPerf's side: Shampoo over the baseline in the v0.6 external-tuning logs, ratios of the medians over its 3 "
    "studies, intervals from percentile-bootstrap resamples drawing each submission's studies independently; "
    "n/a where either's median study did not reach the target. The suite's side: paired intervals (scoring.paired). "
    "Steps are the comparable part (machine-independent); cost per step is the hardware's. The last column is a "
    "projection, not a measurement: the suite's step ratio times AlgoPerf's cost ratio."
)


@contextlib.contextmanager
def published_logs(path: str):
    """The folder holding one folder per submission: ``path`` itself, or a tarball's ``external_tuning`` folder
    extracted (data only) into a temporary folder removed afterwards."""
    if os.path.isdir(path):
        yield path
        return
    if not os.path.isfile(path):
        raise UsageError(f"--algoperf_logs={path} does not exist; pass AlgoPerf's v0.6 external-tuning logs "
                         "(algoperf_v06_external_tuning.tar.xz or its extracted folder)")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="kronbench_algoperf_") as tmp:
        try:
            with tarfile.open(path) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError) as e:
            why = f"--algoperf_logs={path} is not a readable tarball ({e})"
            raise UsageError(f"{why}; pass the published logs") from None
        inner = [os.path.join(tmp, d) for d in os.listdir(tmp) if os.path.isdir(os.path.join(tmp, d))]
        yield inner[0] if len(inner) == 1 else tmp


def read_published(path: str, seed: int = 0) -> dict:
    with published_logs(path) as folder:
        logs, warnings, skipped = read_experiments(folder, lambda w, f: target_of(w, f).column)
        c = compare(logs, baseline=PUBLISHED[1], warnings=warnings, skipped=skipped, version=PUBLISHED_VERSION)
    if PUBLISHED[0] not in c.submissions:
        raise UsageError(f"--algoperf_logs={path} holds no {PUBLISHED[0]} logs; pass the v0.6 external-tuning logs")
    return published_ratios(c, seed)


def section(published: dict, suite: Comparison, submission: str = "shampoo", seed: int = 0) -> list[str]:
    """The transfer section (markdown lines) for ``submission`` over the suite's baseline."""
    if submission not in suite.submissions:
        return ["", "## Transfer to AlgoPerf", "", f"No {submission} logs in this campaign."]
    t = table(transfer_rows(published, suite, submission, seed), submission, suite.baseline)
    return ["", "## Transfer to AlgoPerf", "", NOTE, "", *_md(t)]


def _md(rows: list[list[str]]) -> list[str]:
    head, *body = ["| " + " | ".join(r) + " |" for r in rows]
    return [head, "|" + "---|" * len(rows[0]), *body]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submission_directory", required=True, help="the suite campaign (one folder per submission)")
    parser.add_argument("--algoperf_logs", default=DEFAULT_LOGS, help="AlgoPerf's v0.6 external-tuning logs")
    parser.add_argument("--submission", default="shampoo")
    parser.add_argument("--baseline", default="nadamw")
    parser.add_argument("--self_tuning_ruleset", action="store_true", help="score the campaign under self-tuning")
    parser.add_argument("--seed", type=int, default=0, help="the bootstrap's seed (beyond 6 studies)")
    parser.add_argument("--output", default=None, help="also write the table here (markdown)")
    args = parser.parse_args(argv)
    try:
        published = read_published(args.algoperf_logs, args.seed)
        logs, warnings, skipped = read_experiments(args.submission_directory, lambda w, f: target_of(w, f).column)
        logs = [t for t in logs if t.submission in (args.submission, args.baseline)]
        if not any(t.submission == args.submission for t in logs):
            raise UsageError(f"--submission={args.submission} has no logs under {args.submission_directory}")
        suite = compare(logs, self_tuning=args.self_tuning_ruleset, baseline=args.baseline, warnings=warnings,
                        skipped=skipped)  # fmt: skip
        lines = section(published, suite, args.submission, args.seed)
    except UsageError as e:
        fail(str(e))
    text = "\n".join(lines[2:]) + "\n"
    if args.output:
        with atomic_open(args.output) as f:
            f.write(text)
    print(text, end="")


if __name__ == "__main__":
    main()
