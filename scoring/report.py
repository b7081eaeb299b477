"""Write a Comparison: CSV tables, plots and ``report.md`` tying them together."""

import csv
import math
import os

from common.atomic import atomic_open
from scoring import plots, scores
from scoring.compare import Comparison
from scoring.frameworks import REFERENCE, framework_rows
from scoring.targets import is_own
from scoring.verdict import STEPS_NOTE, decomposition_table

RULE_TEXT = {
    "eval_index": "the trial whose first hit comes at the earliest eval index, ties to the earlier submission time "
    "(the official scorer's rule)",
    "time": "the trial with the earliest submission time to target (`--trial_selection=time`)",
}
KRON_SPEEDUP = (
    "t_baseline / t_submission per base workload, geometric mean over the base workloads both reached; > 1 = "
    "faster (1.25x: the submission needed 1/1.25 = 80% of the baseline's time)"
)
OFFICIAL_SPEEDUP = (
    "t_submission / t_baseline, geometric mean over all base workloads, a workload not reached counting as its "
    "budget + 1 s (AlgoPerf's workloads: the first competition's, x3 under self-tuning; kronbench's: its own, x1.5 "
    "under self-tuning), as AlgoPerf's `compute_speedups`; the other direction, < 1 = faster (0.80: the submission "
    "needed 80% of the baseline's time). Where every workload was reached by both, it is the reciprocal of "
    "kronbench's"
)


def write_all(c: Comparison, output_dir: str, rule: str, self_tuning: bool, source: str) -> dict[str, str]:
    """Every output file; returns name -> path."""
    os.makedirs(output_dir, exist_ok=True)
    out = {name: os.path.join(output_dir, name) for name in ("time_to_targets.csv", "trials.csv", "scores.csv")}
    _write_csv(
        out["time_to_targets.csv"],
        ["submission", "workload", "metric", "target", "time_to_target", "step_to_target", "num_studies",
         "studies_reached"],
        [[r.submission, r.workload, c.targets[r.workload].metric, c.targets[r.workload].value, r.time, r.step,
          r.num_studies, r.studies_reached] for r in c.rows],
    )  # fmt: skip
    _write_csv(
        out["trials.csv"],
        ["submission", "workload", "study", "trial", "reached", "time_to_target", "step_to_target", "chosen", "path"],
        [[t.log.submission, t.log.workload, t.log.study, t.log.trial, t.hit.reached, t.hit.time, t.hit.step,
          t.chosen, t.log.path] for t in c.trials],
    )  # fmt: skip
    _write_csv(out["scores.csv"], ["submission", "score"], [[s, c.scores[s]] for s in c.submissions])
    if c.entries.split:
        out["framework_comparison.csv"] = os.path.join(output_dir, "framework_comparison.csv")
        _write_csv(
            out["framework_comparison.csv"],
            ["submission", "workload", "framework", "time_to_target", "step_to_target", "studies_reached",
             f"time_ratio_to_{REFERENCE}"],
            [[r.submission, r.workload, f, r.times[f], r.steps[f], r.reached[f], r.ratio(f)]
             for r in framework_rows(c.rows, c.entries) for f in r.times],
        )  # fmt: skip
    if c.baseline is not None:
        out["speedups.csv"] = os.path.join(output_dir, "speedups.csv")
        _write_csv(
            out["speedups.csv"],
            ["submission", "baseline", "speedup", "workloads", "official_speedup"],
            [[s, c.baseline, v, n, c.official_speedups[s]] for s, (v, n) in c.speedups.items()],
        )
    out["performance_profiles.png"] = os.path.join(output_dir, "performance_profiles.png")
    plots.save(plots.performance_profiles(c), out["performance_profiles.png"])
    for w in c.workloads:
        out[f"curves_{w}.png"] = os.path.join(output_dir, f"curves_{w}.png")
        plots.save(plots.training_curves(c, w), out[f"curves_{w}.png"])
    out["report.md"] = os.path.join(output_dir, "report.md")
    with atomic_open(out["report.md"]) as f:
        f.write(markdown(c, rule, self_tuning, source))
    return out


def time_table(c: Comparison) -> list[list[str]]:
    """Workloads x submissions, median time and steps to target ("-" when not reached), header first."""
    header = ["workload", "target", *c.submissions]
    rows = [header]
    steps = {(r.submission, r.workload): r.step for r in c.rows}
    for w in c.workloads:
        t = c.targets[w]
        cells = [_time_and_steps(c.time(s, w), steps.get((s, w), math.inf)) for s in c.submissions]
        rows.append([w, f"{t.metric} {'<=' if t.lower_is_better else '>='} {t.value:g}", *cells])
    return rows


def ranked(c: Comparison) -> list[str]:
    """Submissions in the published leaderboards' order: best score first, ties by name."""
    return sorted(c.submissions, key=lambda s: (-c.scores[s], s))


def speedup_lines(c: Comparison) -> list[str]:
    """The terminal's headline, one line per submission in words: kronbench's speedup (report.md explains it and
    sets the official figure, which points the other way, beside it)."""
    lines = []
    for s, (v, n) in c.speedups.items():
        if n == 0:
            lines.append(
                f"{s} against {c.baseline}: no speedup, no workload was reached by both (report.md has the official "
                "figure, which counts a miss as the budget)"
            )
            continue
        over = f"{n} workload{'s' if n > 1 else ''}"
        if n < len(c.base_workloads):
            over = f"the {over} both reached, of {len(c.base_workloads)}"
        if round(v, 2) == 1.0:
            how = f"as fast as {c.baseline} ({v:.3f}x, "
        elif v > 1:
            how = f"{v:.2f}x faster than {c.baseline} ("
        else:
            how = f"{1 / v:.2f}x slower than {c.baseline} ("
        lines.append(f"{s} reached the targets {how}geometric mean over {over})")
    return lines


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(c: Comparison, rule: str, self_tuning: bool, source: str) -> str:
    ruleset = "self-tuning" if self_tuning else "external tuning"
    lines = [
        "# kronbench comparison",
        "",
        f"Scored `{source}` under AlgoPerf v{c.version}'s {ruleset} ruleset{_design(c)}. {_whose_targets(c)} "
        f"Per trial, the submission time of the first eval whose validation metric reaches the workload's target; "
        f"per study, {RULE_TEXT[rule]}; per workload, the median over studies. Times beyond {scores.MAX_TAU:g}x the "
        f"best submission's count as not reached.",
        "",
        "## Benchmark score",
        "",
        f"Area under each performance profile over tau in [1, 4], divided by 3, over {len(c.base_workloads)} base "
        f"workload(s) ({', '.join(c.base_workloads)}): 1 means fastest on every workload. Scores are relative to "
        "the submissions scored together.",
        "",
        *_md_table([["submission", "score"], *[[s, f"{c.scores[s]:.4f}"] for s in ranked(c)]]),
        "",
    ]
    if c.variants:
        held_out = ", ".join(f"{v} ({b})" for v, b in sorted(c.variants.items()))
        lines += [
            f"Held-out rule (v0.5) over {held_out}: a variant counts as not reached where its base is not, the 4x "
            "rule applies to both, and a base counts as not reached where its variant is.",
            "",
        ]
    lines += [
        "![performance profiles](performance_profiles.png)",
        "",
        "## Time to target (median over studies: submission seconds on this machine, and steps)",
        "",
        *_md_table(time_table(c)),
        "",
        "## Steps and cost per step (median over studies)",
        "",
        STEPS_NOTE,
        "",
        *_md_table(decomposition_table(c)),
        "",
    ]
    if c.entries.split:
        lines += _framework_section(c)
    lines += _speedup_section(c)
    lines += _curves_and_studies(c)
    lines += ["Per-trial detail: `trials.csv`; per workload: `time_to_targets.csv`; scores: `scores.csv`.", ""]
    return "\n".join(lines)


def _speedup_section(c: Comparison) -> list[str]:
    """Both speedups over the baseline, kronbench's and the official one."""
    if c.baseline is None:
        return []
    return [
        f"## Speedup over {c.baseline}",
        "",
        f"- kronbench's (the terminal's headline, in words): {KRON_SPEEDUP}.",
        f"- official: {OFFICIAL_SPEEDUP}.",
        "",
        *_md_table(
            [["submission", "kronbench (> 1 = faster)", "workloads both reached", "official (< 1 = faster)"]]
            + [
                [s, "n/a" if n == 0 else f"{v:.3f}x", str(n), f"{c.official_speedups[s]:.4f}"]
                for s, (v, n) in c.speedups.items()
            ]
        ),
        "",
    ]


def _curves_and_studies(c: Comparison) -> list[str]:
    """The training curves, the studies, the warnings and the trials left out."""
    lines = ["## Training curves", ""]
    for w in c.workloads:
        lines += [f"### {w}", "", f"![{w}](curves_{w}.png)", ""]
    lines += ["## Studies", "", *_md_table(_study_table(c)), ""]
    if c.warnings:
        lines += ["## Warnings (coverage and inputs)", "", *[f"- {w}" for w in c.warnings], ""]
    diverged = [t.log.path for t in c.trials if t.log.diverged]
    if c.skipped or diverged:
        lines += [
            "## Trials skipped",
            "",
            *[f"- `{path}`: {why}" for path, why in c.skipped],
            *[f"- `{path}`: diverged (meta_data); scored as not reached" for path in diverged],
            "",
        ]
    return lines


def _design(c: Comparison) -> str:
    return f", {c.design}" if c.design else ""


def _whose_targets(c: Comparison) -> str:
    """Which targets apply where: kronbench's own workloads carry kronbench's, AlgoPerf's carry the published ones."""
    own = [w for w in c.workloads if is_own(c.entries.workload(w))]
    theirs = [w for w in c.workloads if w not in own]
    parts = [f"kronbench's own for its workloads ({', '.join(own)})"] if own else []
    parts += [f"AlgoPerf v{c.version}'s published ones for AlgoPerf's ({', '.join(theirs)})"] if theirs else []
    return f"Targets: {' and '.join(parts)}; each is in the time-to-target table below."


def framework_table(c: Comparison) -> list[list[str]]:
    """Per submission and workload run in several frameworks: median time and steps to target in each, and the
    time ratio to the reference framework; header first."""
    rows = framework_rows(c.rows, c.entries)
    others = [f for f in (rows[0].times if rows else []) if f != REFERENCE]
    header = ["submission", "workload", *[f"time {f} (s)" for f in (REFERENCE, *others)]]
    header += [f"{f} / {REFERENCE}" for f in others] + [f"steps {f}" for f in (REFERENCE, *others)]
    header.append(f"studies reached ({', '.join((REFERENCE, *others))})")
    out = [header]
    for r in rows:
        ratios = [f"{r.ratio(f):.3f}" if math.isfinite(r.ratio(f)) else "n/a" for f in others]
        steps = [f"{r.steps[f]:.0f}" if math.isfinite(r.steps[f]) else "-" for f in (REFERENCE, *others)]
        reached = ", ".join(r.reached[f] for f in (REFERENCE, *others))
        out.append([r.submission, r.workload, *[_seconds(r.times[f]) for f in (REFERENCE, *others)], *ratios,
                    *steps, reached])  # fmt: skip
    return out


def _framework_section(c: Comparison) -> list[str]:
    split = ", ".join(sorted(c.entries.split))
    table = framework_table(c)
    lines = [
        "## Framework comparison",
        "",
        f"Workloads logged in more than one framework ({split}) are scored as one entry per framework "
        "(`<workload>_<framework>` above): each with its own medians, 4x rule and column of the performance "
        "profile. Here, the same submission's median time and steps to target (over studies) in each framework, "
        f"and the time ratio to {REFERENCE} (< 1 = faster than {REFERENCE}; n/a unless both reached).",
        "",
    ]
    if len(table) == 1:
        return lines + ["No submission ran one of these workloads in every framework.", ""]
    return lines + [*_md_table(table), ""]


def _study_table(c: Comparison) -> list[list[str]]:
    rows = [["submission", "workload", "studies reached", "chosen trials (study: trial, time)"]]
    for r in c.rows:
        chosen = [t for t in c.trials if t.chosen and t.log.submission == r.submission and t.log.workload == r.workload]
        detail = ", ".join(f"{t.log.study}: {t.log.trial}, {_seconds(t.hit.time)}" for t in chosen) or "-"
        rows.append([r.submission, r.workload, f"{r.studies_reached}/{r.num_studies}", detail])
    return rows


def _md_table(rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])] + [
        "| " + " | ".join(r) + " |" for r in rows[1:]
    ]


def _seconds(t: float) -> str:
    return f"{t:.2f}" if math.isfinite(t) else "-"


def _time_and_steps(t: float, step: float) -> str:
    """Seconds (this machine's) and steps (the machine-independent part) to target; a median of two may end in .5."""
    if not math.isfinite(t):
        return "-"
    return f"{t:.2f} s, {step:.0f} steps" if step == int(step) else f"{t:.2f} s, {step:.1f} steps"


def _write_csv(path: str, header: list[str], rows: list[list]) -> None:
    with atomic_open(path, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
