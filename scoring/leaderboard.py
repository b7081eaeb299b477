"""``python -m scoring.leaderboard``: docs/leaderboard.md from a scored campaign (``make leaderboard``).

The report holds AlgoPerf's score table, each workload's median time to target with the spread over studies
(min-max), each submission's speedup over the baseline with a seeded percentile-bootstrap interval, time to target
split into steps and cost per step with paired intervals and tests (scoring.verdict), the transfer table to
AlgoPerf's published results when their logs are given (scoring.transfer), the contention measurement the worker
count was chosen by (``benchmarks.contention --output``), the machine and the date. The speedup's bootstrap is
paired (scoring.paired): study k of every submission shares its seed, so each resample draws a workload's study
indices once for the submission and the baseline, takes the medians, and recomputes the speedup (geometric mean of
t_baseline / t_submission over the workloads both reached); the interval is the 2.5 and 97.5 percentiles.

    python -m scoring.leaderboard --submission_directory=experiments/leaderboard --output=docs/leaderboard.md \
        [--contention=experiments/leaderboard_contention.json] [--baseline=nadamw] [--bootstrap=2000] [--seed=0] \
        [--algoperf_logs=../shared/data/algoperf/algoperf_v06_external_tuning.tar.xz]
"""

import argparse
import json
import math
import os
import platform
import time
from dataclasses import dataclass

import numpy as np

from common.atomic import atomic_open
from common.errors import UsageError, fail
from scoring import paired, scores, transfer
from scoring.compare import Comparison, compare
from scoring.decompose import per_study, refines
from scoring.experiments import read_experiments
from scoring.report import ranked
from scoring.targets import target_of
from scoring.verdict import (
    IMPLEMENTATIONS_NOTE,
    PAIRED_NOTE,
    STEPS_NOTE,
    SUMMARY_NOTE,
    decomposition_table,
    implementations_table,
    paired_rows,
    paired_table,
    summary,
)


@dataclass(frozen=True)
class Spread:
    median: float
    lo: float  # the fastest study
    hi: float  # the slowest; inf when a study never reached
    reached: int
    studies: int


def study_times(c: Comparison, refined: bool = False) -> dict[tuple[str, str], list[float]]:
    """(submission, workload) -> each study's time to target (its chosen trial's; inf when none reached). With
    ``refined``, a trial's refined time (runner/refine.py) where it refines the eval the scorer found first."""
    return {key: [h.refined if refined else h.time for h in hits] for key, hits in per_study(c).items()}


def spread(times: list[float]) -> Spread:
    return Spread(scores.median_time(times), min(times), max(times), sum(math.isfinite(t) for t in times), len(times))


def speedup_intervals(c: Comparison, n: int, seed: int) -> dict[str, tuple[float, float, float, int]]:
    """Each non-baseline submission's speedup and paired bootstrap interval over the base workloads, both on the
    studies it and the baseline ran (one generator, in name order): (point, low, high, workloads both reached).
    The point equals ``c.speedups`` when every study ran on both sides; when not (a campaign cut short, a lost
    study), the all-study figure could lie outside an interval drawn from fewer studies."""
    hits = per_study(c)
    rng = np.random.default_rng(seed)
    out = {}
    for s in sorted(c.speedups):
        base, sub = {}, {}
        for w in c.base_workloads:
            b = {h.study: h.time for h in hits.get((c.baseline, w), [])}
            u = {h.study: h.time for h in hits.get((s, w), [])}
            common = sorted(set(b) & set(u))
            if common:
                base[w], sub[w] = [b[k] for k in common], [u[k] for k in common]
        point, k = scores.speedup(
            {w: scores.median_time(t) for w, t in base.items()}, {w: scores.median_time(t) for w, t in sub.items()}
        )
        out[s] = (point, *paired.bootstrap_speedup(base, sub, rng, n), k)
    return out


def machine() -> str:
    """The CPU model and core count (Linux's /proc/cpuinfo where there is one), the OS and Python."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    return f"{model}, {os.cpu_count()} logical cores, {system}"


def markdown(
    c: Comparison, intervals: dict, contention: dict | None, n: int, seed: int, when: str, host: str, transfer=()
) -> str:
    per_study = study_times(c)
    order = ranked(c)
    lines = [
        "# Leaderboard: the CPU suite under the self-tuning ruleset",
        "",
        f"Built {when} on {host} by `make leaderboard` (`python -m scoring.leaderboard`). Times are submission "
        f"seconds to the validation target; a study that never reached counts as infinitely slow.",
        "",
        "## Scores",
        "",
        "AlgoPerf's benchmark score (the performance profile's area, 1 = fastest everywhere); speedup over "
        f"`{c.baseline}` = geometric mean of t_{c.baseline} / t_submission over the workloads both reached (> 1: "
        f"faster), with a 95% percentile-bootstrap interval ({n} paired resamples of the studies, seed {seed}: the "
        "same study indices for the submission and the baseline); both on the studies the submission and the "
        "baseline ran.",
        "",
        "| rank | submission | score | speedup | 95% interval | workloads |",
        "|---|---|---|---|---|---|",
    ]
    for i, s in enumerate(order, 1):
        if s == c.baseline:
            lines.append(f"| {i} | {s} | {c.scores[s]:.4f} | (baseline) | | |")
            continue
        v, lo, hi, k = intervals.get(s, (math.nan, math.nan, math.nan, 0))
        lines.append(f"| {i} | {s} | {c.scores[s]:.4f} | {_x(v)} | {_x(lo)} to {_x(hi)} | {k} |")
    if c.baseline in c.submissions:
        lines += ["", "## Verdict", "", SUMMARY_NOTE, "", *summary(paired_rows(c, seed), c.baseline, order)]
    lines += ["", "## Time to target per workload", "",
              "Median over studies [fastest study, slowest study] (studies reached / studies); - = not reached (for "
              "the median: by the median study).", ""]  # fmt: skip
    lines += _table(
        [["workload", "target", *order]]
        + [
            [w, f"{c.targets[w].metric} {'<=' if c.targets[w].lower_is_better else '>='} {c.targets[w].value:g}"]
            + [_cell(per_study.get((s, w))) for s in order]
            for w in c.workloads
        ]
    )
    lines += _refined_section(c, order)
    lines += _verdict_sections(c, seed)
    lines += list(transfer)
    lines += ["", "## Contention", ""] + _contention(contention)
    if c.warnings:
        lines += ["", "## Warnings", "", *[f"- {w}" for w in c.warnings]]
    return "\n".join(lines) + "\n"


def _refined_section(c: Comparison, order: list[str]) -> list[str]:
    """The same table from the refined times, when the campaign ran with --refine_time_to_target_sec."""
    chosen = [row for row in c.trials if row.chosen and row.hit.reached]
    refined = sum(refines(row) for row in chosen)
    if not refined:
        return []
    per_study = study_times(c, refined=True)
    lines = ["", "## Refined time to target", "",
             f"As above, from the copies of the model the runner evaluated between the last two evals "
             f"(`--refine_time_to_target_sec`, runner/refine.py): {refined} of the {len(chosen)} reached trials "
             "carry a refined time; the others count with their eval's. The score and speedups above use "
             "AlgoPerf's eval times.", ""]  # fmt: skip
    return lines + _table(
        [["workload", *order]] + [[w] + [_cell(per_study.get((s, w))) for s in order] for w in c.workloads]
    )


def _verdict_sections(c: Comparison, seed: int) -> list[str]:
    """Steps and cost per step beside the times, then the paired analysis of each submission against the baseline."""
    return (
        ["", "## Steps and cost per step", "", STEPS_NOTE, ""]
        + _table(decomposition_table(c))
        + ["", f"## Paired analysis against {c.baseline}", "", PAIRED_NOTE, ""]
        + _table(paired_table(paired_rows(c, seed)))
        + _implementations(c, seed)
    )


def _implementations(c: Comparison, seed: int) -> list[str]:
    rows = implementations_table(c, seed)
    return ["", "## Implementations", "", IMPLEMENTATIONS_NOTE, "", *_table(rows)] if rows else []


def _contention(record: dict | None) -> list[str]:
    if not record:
        return ["Not measured (no `--contention` file): the worker count was not checked against contention."]
    out = [
        f"Step time of `{record['submission']}` ({record['steps']} steps) alone and with k workers at once, each "
        f"set up as the campaign's local workers (cores / k threads, pinned), measured {record['date']}, load "
        f"average then {', '.join(f'{x:.1f}' for x in record.get('load_average') or [])}. The campaign ran "
        f"{record['chosen_workers']} worker(s): the most whose factor stays below {record['limit']} everywhere.",
        "",
    ]
    rows = [["workload", "k", "threads", "alone (ms/step)", "in parallel (ms/step)", "factor"]]
    for r in record["rows"]:
        rows.append([r["workload"], str(r["workers"]), str(r["threads"]), f"{r['alone_ms']:.1f}",
                     f"{r['parallel_ms']:.1f}", f"{r['factor']:.2f}"])  # fmt: skip
    return out + _table(rows)


def _cell(times: list[float] | None) -> str:
    if not times:
        return "(no trials)"
    s = spread(times)
    return f"{_s(s.median)} [{_s(s.lo)}, {_s(s.hi)}] ({s.reached}/{s.studies})"


def _s(t: float) -> str:
    return f"{t:.1f}" if math.isfinite(t) else "-"


def _x(v: float) -> str:
    return f"{v:.2f}x" if math.isfinite(v) else "n/a"


def _table(rows: list[list[str]]) -> list[str]:
    head, *body = ["| " + " | ".join(r) + " |" for r in rows]
    return [head, "|" + "---|" * len(rows[0]), *body]


def build(
    source: str, baseline: str, n: int, seed: int, contention_path: str | None, algoperf_logs: str | None = None
) -> str:
    """The report's markdown for the campaign under ``source`` (scored under the self-tuning ruleset)."""
    logs, warnings, skipped = read_experiments(source, lambda w, f: target_of(w, f).column)
    c = compare(logs, self_tuning=True, baseline=baseline, warnings=warnings, skipped=skipped)
    contention = None
    if contention_path:
        try:
            with open(contention_path, encoding="utf-8") as f:
                contention = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            why = f"--contention={contention_path} cannot be read ({e})"
            raise UsageError(f"{why}; rerun benchmarks.contention or drop the flag") from None
    lines = transfer.section(transfer.read_published(algoperf_logs, seed), c, seed=seed) if algoperf_logs else []
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return markdown(c, speedup_intervals(c, n, seed), contention, n, seed, when, machine(), lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submission_directory", required=True, help="the campaign folder (one per submission)")
    parser.add_argument("--output", default="docs/leaderboard.md")
    parser.add_argument("--contention", default=None, help="benchmarks.contention's --output JSON")
    parser.add_argument("--baseline", default="nadamw")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="the bootstrap's seed")
    parser.add_argument("--algoperf_logs", default=None, help="AlgoPerf's v0.6 external-tuning logs (tarball or "
                        "folder): adds the transfer table (scoring.transfer)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        if args.bootstrap < 1:
            raise UsageError(f"--bootstrap={args.bootstrap} must be at least 1")
        text = build(args.submission_directory, args.baseline, args.bootstrap, args.seed, args.contention,
                     args.algoperf_logs)  # fmt: skip
    except UsageError as e:
        fail(str(e))
    with atomic_open(args.output) as f:
        f.write(text)
    print(f"Leaderboard: {args.output}")


if __name__ == "__main__":
    main()
