"""``python -m tuning``: a campaign of submissions x workloads x studies x trials (AlgoPerf's flag names)."""

from absl import app, flags

from common import checks
from common.checks import PROGRESS
from common.errors import UsageError, cli_main, parse_flags
from common.seeds import draw_seed
from tuning.plan import FRAMEWORK_CHOICES

flags.DEFINE_list(
    "submissions", None, "Submission names under submissions/ or folders holding submission.py / submission_jax.py."
)
flags.DEFINE_list("workloads", None, "Workload names; 'suite' stands for the CPU suite.")
flags.DEFINE_integer("num_studies", 1, "Studies per submission and workload (AlgoPerf scores with 3).")
flags.DEFINE_integer("num_tuning_trials", 1, "Hyperparameter points per study (external ruleset; AlgoPerf: 5).")
flags.DEFINE_enum("tuning_ruleset", "external", list(checks.RULESETS), "AlgoPerf tuning ruleset.")
flags.DEFINE_string("experiment_dir", None, "Root directory of experiment logs.")
flags.DEFINE_string("experiment_name", None, "Campaign name (a folder under --experiment_dir).")
flags.DEFINE_enum("executor", "local", ["local", "ray"], "local: worker subprocesses; ray: Ray tasks.")
flags.DEFINE_integer("workers", 1, "Trials run at once (local: subprocesses; ray: tasks in flight).")
flags.DEFINE_integer("threads", None, "Threads per local worker (default: cores / workers).")
flags.DEFINE_string("ray_address", None, "Address of an existing Ray cluster; unset starts a local one.")
flags.DEFINE_float("cpus_per_trial", 1.0, "Ray: CPUs each trial task asks for (per process of the trial).")
flags.DEFINE_float("gpus_per_trial", 0.0, "Ray: GPUs each trial task asks for (per process of the trial).")
flags.DEFINE_integer(
    "procs_per_trial", 1, "Processes per trial: >1 runs each trial under torchrun with DDP (gloo on CPU, nccl on GPU)."
)
flags.DEFINE_integer("max_global_steps", None, "Stop every trial after this many update steps.")
flags.DEFINE_float(
    "refine_time_to_target_sec",
    0.0,
    "Each trial copies its model this often (submission seconds) between evals and reports a time to target "
    "refined from the copies beside AlgoPerf's (runner/refine.py); 0: off.",
)
flags.DEFINE_integer("rng_seed", None, "Campaign seed; studies derive theirs from it. Unset: drawn, or reused.")
flags.DEFINE_string("data_dir", "", "Dataset directory; workloads also look in installed packages.")
flags.DEFINE_enum(
    "framework",
    "pytorch",
    list(FRAMEWORK_CHOICES),
    "Framework of the trials: pytorch (submission.py), jax (submission_jax.py) or both (every trial in each).",
)
flags.DEFINE_enum("progress", "auto", ["auto", "on", "off"], "Campaign progress bar (auto: only on a terminal).")

FLAGS = flags.FLAGS


def _seed(root: str) -> int:
    """--rng_seed, else the seed of the campaign being continued, else a fresh one (printed, to repeat it)."""
    from tuning import manifest

    if FLAGS.rng_seed is not None:
        return FLAGS.rng_seed
    data = manifest.load(root)
    if data is not None and isinstance(data["identity"].get("rng_seed"), int):
        seed = data["identity"]["rng_seed"]
        print(f"continuing {root} with its --rng_seed={seed}", flush=True)
        return seed
    return draw_seed("campaign")


def _config():
    from tuning.plan import CampaignConfig, campaign_root

    for name in ("submissions", "workloads", "experiment_dir", "experiment_name"):
        if not getattr(FLAGS, name):
            raise UsageError(f"missing --{name}; see python -m tuning --help")
    checks.experiment_name(FLAGS.experiment_name)  # before the name is used as a path
    root = campaign_root(FLAGS.experiment_dir, FLAGS.experiment_name)
    return CampaignConfig(
        submissions=tuple(FLAGS.submissions),
        workloads=tuple(FLAGS.workloads),
        experiment_dir=FLAGS.experiment_dir,
        experiment_name=FLAGS.experiment_name,
        rng_seed=_seed(root),
        num_studies=FLAGS.num_studies,
        num_tuning_trials=FLAGS.num_tuning_trials,
        tuning_ruleset=FLAGS.tuning_ruleset,
        max_global_steps=FLAGS.max_global_steps,
        refine_time_to_target_sec=FLAGS.refine_time_to_target_sec,
        framework=FLAGS.framework,
        data_dir=FLAGS.data_dir,
    )


def _executor(cfg):
    from tuning.campaign import log_dir
    from tuning.executors import LocalExecutor, RayExecutor

    if FLAGS.workers < 1:
        raise UsageError(f"--workers={FLAGS.workers} must be at least 1")
    if FLAGS.procs_per_trial < 1:
        raise UsageError(f"--procs_per_trial={FLAGS.procs_per_trial} must be at least 1")
    if FLAGS.procs_per_trial > 1 and "jax" in cfg.frameworks:
        raise UsageError(
            f"--procs_per_trial={FLAGS.procs_per_trial} runs trials under torchrun (PyTorch DDP); a JAX trial shards "
            "over its local devices in one process: drop --procs_per_trial or use --framework=pytorch"
        )
    if FLAGS.executor == "ray":
        if FLAGS.cpus_per_trial <= 0 or FLAGS.gpus_per_trial < 0:
            raise UsageError("--cpus_per_trial must be > 0 and --gpus_per_trial >= 0")
        return RayExecutor(
            FLAGS.ray_address,
            FLAGS.cpus_per_trial,
            FLAGS.gpus_per_trial,
            FLAGS.workers,
            log_dir(cfg),
            FLAGS.procs_per_trial,
        )
    if FLAGS.threads is not None and FLAGS.threads < 1:
        raise UsageError(f"--threads={FLAGS.threads} must be at least 1")
    return LocalExecutor(FLAGS.workers, FLAGS.threads, log_dir(cfg), FLAGS.procs_per_trial)


def _preflight(data_dir: str, frameworks: tuple[str, ...]):
    """Load each workload's data in the coordinator once: a missing dataset (or a workload without a version in a
    requested framework) stops the campaign before any trial, and the data caches are built once rather than by
    every worker at the same time."""
    from workloads.registry import get_workload

    def check(name: str) -> None:
        workloads = [get_workload(name, framework) for framework in frameworks]
        checked = next((w for w in workloads if hasattr(w, "check_data")), None)  # one data set for all
        if checked is not None:
            checked.check_data(data_dir, keep=False)

    return check


def _check_submissions(cfg) -> None:
    """Each submission file against its framework, its search space against the hyperparameters it declares, and
    under --procs_per_trial its batch sizes against the ranks, before anything is written (a worker checks them
    again, for remote clusters where this is skipped)."""
    from common import search_space as ss
    from runner.experiment import check_batch_split
    from runner.loading import load_submission
    from tuning.plan import expand_workloads, resolve_submissions, search_space
    from workloads.registry import get_workload

    for _, paths in resolve_submissions(cfg.submissions, cfg.frameworks):
        for framework, path in paths.items():  # one search space, checked against each framework's declarations
            submission = load_submission(path, framework)  # a file for the other framework: one line, here
            space = search_space(path, cfg.tuning_ruleset)
            if space is not None:
                ss.check(space, submission.hyperparameters, path)
            for name in expand_workloads(cfg.workloads) if FLAGS.procs_per_trial > 1 else ():
                check_batch_split(
                    submission, name, get_workload(name, framework), FLAGS.procs_per_trial, "--procs_per_trial"
                )


def _run() -> int:
    from tuning.campaign import run_campaign

    cfg = _config()
    remote = FLAGS.executor == "ray" and FLAGS.ray_address  # the data lives on the cluster's nodes
    if not remote:
        _check_submissions(cfg)
    summary = run_campaign(
        cfg,
        _executor(cfg),
        progress=PROGRESS[FLAGS.progress],
        preflight=None if remote else _preflight(cfg.data_dir, cfg.frameworks),
    )
    print(summary.line(), flush=True)
    return 1 if summary.failures else 0


def main() -> None:
    app.run(cli_main(_run), flags_parser=parse_flags)
