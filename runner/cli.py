"""``python -m runner``: AlgoPerf's submission runner flags, kronbench's runner."""

import contextlib
import json

from absl import app, flags

from common import checks
from common.checks import PROGRESS
from common.errors import UsageError, cli_main, parse_flags
from compat import aliases
from workloads.registry import get_workload

# A name, not an import: diagnostics sits above the runner, which loads the hook only when it is asked for.
KRON_HOOK = "diagnostics.kron_logging:KronQualityHook"

flags.DEFINE_string("submission_path", None, "Path to the submission's submission.py.")
flags.DEFINE_string("workload", None, "Workload name (see workloads.registry).")
flags.DEFINE_enum("framework", "pytorch", list(checks.FRAMEWORKS), "Framework of the submission.")
flags.DEFINE_enum("tuning_ruleset", "external", list(checks.RULESETS), "AlgoPerf tuning ruleset.")
flags.DEFINE_string("tuning_search_space", None, "tuning_search_space.json (external ruleset only).")
flags.DEFINE_integer("num_tuning_trials", 1, "Number of hyperparameter points to run (external ruleset).")
flags.DEFINE_string("data_dir", "", "Dataset directory; workloads also look in installed packages.")
flags.DEFINE_string("imagenet_v2_data_dir", None, "Test-set directory for imagenet workloads.")
flags.DEFINE_string("experiment_dir", None, "Root directory of experiment logs.")
flags.DEFINE_string("experiment_name", None, "Experiment name (a folder under --experiment_dir).")
flags.DEFINE_integer("rng_seed", None, "Seed of the trial RNG; drawn from os.urandom when unset.")
flags.DEFINE_integer("max_global_steps", None, "Stop after this many update steps.")
flags.DEFINE_float(
    "refine_time_to_target_sec",
    0.0,
    "Copy the model every this many submission seconds between evals and, at the first eval past the target, "
    "evaluate the copies to report a finer time to target beside AlgoPerf's (runner/refine.py); 0: off.",
)
flags.DEFINE_boolean("overwrite", False, "Replace existing trial directories.")
flags.DEFINE_boolean("resume_last_run", False, "Continue existing trials from their last checkpoint.")
flags.DEFINE_boolean("save_checkpoints", True, "Checkpoint at every eval (needed by --resume_last_run).")
flags.DEFINE_integer("hparam_start_index", None, "First hyperparameter point to run (0-based).")
flags.DEFINE_integer("hparam_end_index", None, "One past the last hyperparameter point to run.")
flags.DEFINE_boolean("torch_compile", False, "Accepted for AlgoPerf compatibility; compile is not used on CPU.")
flags.DEFINE_enum("progress", "auto", ["auto", "on", "off"], "Progress bar (auto: only on a terminal).")
flags.DEFINE_list(
    "eval_hooks",
    [],
    "Measurements after evals, to TensorBoard: package.module:factory[@N] (every N-th eval), comma-separated; "
    "see runner/eval_hooks.py.",
)
flags.DEFINE_list(
    "module_aliases",
    [],
    "alias=target module names (comma-separated) for a foreign submission that imports its own vendored package "
    "under several names: the alias resolves to the target's very module; see compat/aliases.py.",
)
flags.DEFINE_boolean(
    "cuda_on_cpu",
    False,
    "Without CUDA, create on the CPU the tensors a submission written for GPUs asks for on a CUDA device "
    "(compat/cuda_on_cpu.py); for running published GPU submissions under torchrun with gloo.",
)
flags.DEFINE_string(
    "jax_batch_layout",
    "jit",
    "How a JAX trial hands batches and parameters to the submission: jit (today's AlgoPerf: global arrays sharded "
    "along the batch axis) or pmap (AlgoPerf v0.5/v0.6, whose JAX submissions jax.pmap their step: a leading axis "
    "of the local device count on every batch array, parameters and model state replicated along it); see "
    "runner/jax_layout.py.",
)
flags.DEFINE_boolean(
    "jax_removed_names",
    False,
    "Restore names JAX removed that older JAX submissions call (jax.tree_map and the other jax.tree_* aliases, "
    "jnp.clip's a_min/a_max keywords) while the trial runs (compat/jax_removed_names.py).",
)
flags.DEFINE_integer(
    "log_kron_quality_every",
    0,
    f"Log Kronecker approximation quality of small layers to TensorBoard every N evals (--eval_hooks={KRON_HOOK}@N).",
)

FLAGS = flags.FLAGS


def _config():
    from runner.eval_hooks import EvalHookSpec
    from runner.experiment import ExperimentConfig
    from runner.loop import TrialConfig

    missing = [f"--{n}" for n in ("workload", "submission_path") if not getattr(FLAGS, n)]
    if missing:
        raise UsageError(f"missing {' and '.join(missing)}; see python -m runner --help")
    if FLAGS.log_kron_quality_every < 0:
        raise UsageError(f"--log_kron_quality_every={FLAGS.log_kron_quality_every} must be >= 0 (0 turns it off)")
    if FLAGS.cuda_on_cpu and FLAGS.framework != "pytorch":
        raise UsageError("--cuda_on_cpu places PyTorch tensors; drop it or use --framework=pytorch")
    _check_jax_flags()
    hooks = [EvalHookSpec.parse(text) for text in FLAGS.eval_hooks]
    if FLAGS.log_kron_quality_every:
        if FLAGS.framework != "pytorch":
            raise UsageError("--log_kron_quality_every measures PyTorch models; drop it or use --framework=pytorch")
        hooks.append(EvalHookSpec(KRON_HOOK, FLAGS.log_kron_quality_every))
    for hook in hooks:
        hook.resolve()  # a bad name fails here, before any trial starts
    checks.framework(FLAGS.framework)
    checks.max_global_steps(FLAGS.max_global_steps)
    checks.refine_time_to_target_sec(FLAGS.refine_time_to_target_sec)
    checks.rng_seed(FLAGS.rng_seed)
    checks.data_dir(FLAGS.data_dir)
    flag_values = {f.name: f.value for f in FLAGS.get_flags_for_module(__name__)}
    trial = TrialConfig(
        workload_name=FLAGS.workload,
        framework=FLAGS.framework,
        data_dir=FLAGS.data_dir,
        imagenet_v2_data_dir=FLAGS.imagenet_v2_data_dir,
        tuning_ruleset=FLAGS.tuning_ruleset,
        max_global_steps=FLAGS.max_global_steps,
        save_checkpoints=FLAGS.save_checkpoints,
        rng_seed=FLAGS.rng_seed,
        progress=PROGRESS[FLAGS.progress],
        eval_hooks=tuple(hooks),
        refine_time_to_target_sec=FLAGS.refine_time_to_target_sec,
        jax_batch_layout=FLAGS.jax_batch_layout,
        flags=json.loads(json.dumps(flag_values, default=str)),
    )
    return ExperimentConfig(
        submission_path=FLAGS.submission_path,
        trial=trial,
        tuning_search_space=FLAGS.tuning_search_space,
        num_tuning_trials=FLAGS.num_tuning_trials,
        experiment_dir=FLAGS.experiment_dir,
        experiment_name=FLAGS.experiment_name,
        overwrite=FLAGS.overwrite,
        resume_last_run=FLAGS.resume_last_run,
        hparam_start_index=FLAGS.hparam_start_index,
        hparam_end_index=FLAGS.hparam_end_index,
    )


def _check_jax_flags() -> None:
    from runner.jax_layout import LAYOUTS

    if FLAGS.jax_batch_layout not in LAYOUTS:
        raise UsageError(f"--jax_batch_layout={FLAGS.jax_batch_layout!r} is not one of {', '.join(LAYOUTS)}")
    if FLAGS.framework != "jax":
        if FLAGS.jax_batch_layout != "jit":
            raise UsageError("--jax_batch_layout lays out JAX arrays; drop it or use --framework=jax")
        if FLAGS.jax_removed_names:
            raise UsageError("--jax_removed_names restores JAX names; drop it or use --framework=jax")


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _run() -> None:
    from runner import distributed
    from runner.experiment import run_experiment

    cfg = _config()
    try:
        aliases.install(aliases.parse(FLAGS.module_aliases))
    except ValueError as e:
        raise UsageError(f"--module_aliases: {e}") from None
    distributed.init()  # under torchrun: join the process group before any workload touches data
    with contextlib.ExitStack() as stack:
        if FLAGS.cuda_on_cpu and not _has_cuda():
            from compat.cuda_on_cpu import CudaOnCpu

            stack.enter_context(CudaOnCpu())
        if FLAGS.jax_removed_names:
            from compat.jax_removed_names import restored

            stack.enter_context(restored())
        run_experiment(cfg, get_workload(FLAGS.workload, FLAGS.framework))


def main() -> None:
    app.run(cli_main(_run), flags_parser=parse_flags)
