"""``python -m scoring``: AlgoPerf's scoring flags over a folder of submissions' experiment logs."""

import os

from absl import app, flags

from runner.errors import UsageError, cli_main

flags.DEFINE_string("submission_directory", None, "Folder holding one experiment folder per submission.")
flags.DEFINE_string("output_dir", "scoring_results", "Where tables, plots and report.md are written.")
flags.DEFINE_boolean("self_tuning_ruleset", False, "Score under the self-tuning ruleset (one trial per study).")
flags.DEFINE_string("baseline", None, "Submission the speedups are measured against (e.g. nadamw).")
flags.DEFINE_boolean("strict", False, "Errors instead of warnings when workloads, studies or trials are missing.")
flags.DEFINE_enum(
    "trial_selection",
    "time",
    ["time", "eval_index"],
    "Best trial of a study: earliest time to target, or the official scorer's earliest eval index.",
)
flags.DEFINE_boolean("compute_performance_profiles", True, "Accepted for AlgoPerf compatibility; always on.")

FLAGS = flags.FLAGS


def _run() -> None:
    from scoring.compare import compare
    from scoring.experiments import read_experiments
    from scoring.report import text_table, time_table, write_all

    if not FLAGS.submission_directory:
        raise UsageError("missing --submission_directory; pass the folder holding one folder per submission")
    output_dir = os.path.abspath(FLAGS.output_dir)
    source = os.path.abspath(FLAGS.submission_directory)
    if output_dir == source:
        raise UsageError("--output_dir must differ from --submission_directory; pick another folder")
    logs, warnings = read_experiments(source)
    c = compare(
        logs,
        rule=FLAGS.trial_selection,
        self_tuning=FLAGS.self_tuning_ruleset,
        strict=FLAGS.strict,
        baseline=FLAGS.baseline,
        warnings=warnings,
    )
    for w in c.warnings:
        print(f"warning: {w}")
    files = write_all(c, output_dir, FLAGS.trial_selection, FLAGS.self_tuning_ruleset, source)
    print("Time to target (s, median over studies; - = not reached):")
    print(text_table(time_table(c)))
    print("Scores: " + ", ".join(f"{s} {c.scores[s]:.4f}" for s in c.submissions))
    for s, (v, n) in c.speedups.items():
        value = "n/a (no workload reached by both)" if n == 0 else f"{v:.3f}x over {n} workload(s)"
        print(f"Speedup of {s} over {c.baseline}: {value}")
    print(f"Report: {files['report.md']}")


def main() -> None:
    app.run(cli_main(_run))
