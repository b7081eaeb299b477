"""``python -m scoring``: AlgoPerf's scoring flags over a folder of submissions' experiment logs."""

import os
import time

from absl import app, flags

from common import checks
from common.errors import UsageError, cli_main, parse_flags
from scoring.targets import DEFAULT_VERSION, VERSIONS

flags.DEFINE_string("submission_directory", None, "Folder holding one experiment folder per submission.")
flags.DEFINE_string("output_dir", "scoring_results", "Where tables, plots and report.md are written.")
flags.DEFINE_boolean("self_tuning_ruleset", False, "Score under the self-tuning ruleset (one trial per study).")
flags.DEFINE_string("baseline", None, "Submission the speedups are measured against (e.g. nadamw).")
flags.DEFINE_boolean("strict", False, "Errors instead of warnings when workloads, studies or trials are missing.")
flags.DEFINE_enum(
    "trial_selection",
    "eval_index",
    ["eval_index", "time"],
    "Best trial of a study: the official scorer's earliest eval index (ties to the earlier time), or the earliest "
    "time to target.",
)
flags.DEFINE_string("benchmark_version", DEFAULT_VERSION, f"AlgoPerf version ({', '.join(VERSIONS)}): targets, base "
                    "and held-out workloads.")  # fmt: skip
flags.DEFINE_boolean("lenient", False, "Skip unreadable or inconsistent eval logs with a warning instead of refusing.")
flags.DEFINE_boolean("compute_performance_profiles", True, "Accepted for AlgoPerf compatibility; always on.")

FLAGS = flags.FLAGS
MAX_PRINTED = 5  # warnings printed on the terminal


def _run() -> None:
    from scoring.compare import compare
    from scoring.experiments import read_experiments
    from scoring.frameworks import REFERENCE
    from scoring.plan import read_plan
    from scoring.report import framework_table, ranked, speedup_lines, text_table, time_table, write_all
    from scoring.targets import benchmark, target_of
    from scoring.verdict import decomposition_table

    if not FLAGS.submission_directory:
        raise UsageError("missing --submission_directory; pass the folder holding one folder per submission")
    output_dir = os.path.abspath(FLAGS.output_dir)
    source = os.path.abspath(FLAGS.submission_directory)
    if output_dir == source:
        raise UsageError("--output_dir must differ from --submission_directory; pick another folder")
    checks.output_dir("output_dir", FLAGS.output_dir)
    benchmark(FLAGS.benchmark_version)  # an unknown version is refused before anything is read
    started = time.perf_counter()
    logs, warnings, skipped = read_experiments(source, lambda w, f: target_of(w, f).column, lenient=FLAGS.lenient)
    c = compare(
        logs,
        rule=FLAGS.trial_selection,
        self_tuning=FLAGS.self_tuning_ruleset,
        strict=FLAGS.strict,
        baseline=FLAGS.baseline,
        warnings=warnings,
        skipped=skipped,
        version=FLAGS.benchmark_version,
        plan=read_plan(source),
    )
    seconds = time.perf_counter() - started
    for w in c.warnings[:MAX_PRINTED]:
        print(f"warning: {w}")
    if len(c.warnings) > MAX_PRINTED:  # a campaign missing trials warns once per study; report.md lists all
        print(f"warning: ... and {len(c.warnings) - MAX_PRINTED} more coverage warning(s), listed in report.md")
    files = write_all(c, output_dir, FLAGS.trial_selection, FLAGS.self_tuning_ruleset, source)
    if c.design:
        print(f"This campaign is {c.design}.")
    print("Time to target (median over studies: submission seconds on this machine, and steps; - = not reached):")
    print(text_table(time_table(c)))
    if len(framework_table(c)) > 1:
        print(f"Framework comparison (median over studies; ratio < 1 = faster than {REFERENCE}):")
        print(text_table(framework_table(c)))
    print("Scores: " + ", ".join(f"{s} {c.scores[s]:.4f}" for s in ranked(c)))
    for line in speedup_lines(c):
        print(line)
    print("Steps and cost per step (median over studies; ratios over the baseline's medians, time = steps x cost):")
    print(text_table(decomposition_table(c)))
    print(f"Scored {len(c.trials)} trial(s) in {seconds:.2f} s (reading and scoring, before writing outputs)")
    print(f"Report: {files['report.md']}")


def main() -> None:
    app.run(cli_main(_run), flags_parser=parse_flags)
