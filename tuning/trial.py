"""One campaign trial, in whatever process an executor gives it: lock, train (continuing from a checkpoint if an
earlier attempt was cut off), commit.

The commit is ``trial_result.json``, written atomically as the attempt's last act; a trial is finished exactly
when that file exists, so a kill at any moment leaves it either finished or resumable, never half counted. The
lock (``flock`` on the trial directory, released by the kernel when its holder dies; the runner takes the same
one) keeps two processes from ever running one trial at once, e.g. a worker that outlived a killed coordinator
and the re-run that follows.
"""

import json
import os
from dataclasses import replace

from common import layout
from common.atomic import write_json
from common.locks import LockBusy, exclusive_dir
from tuning.plan import TrialSpec


class TrialBusyError(RuntimeError):
    """Another live process holds the trial's lock."""


def read_result(trial_dir: str) -> dict | None:
    try:
        with open(os.path.join(trial_dir, layout.TRIAL_RESULT)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def run_trial(spec: TrialSpec) -> dict:
    """Train ``spec`` to completion and return its committed result (at once if an earlier attempt committed it).
    Under torchrun (``--procs_per_trial``) rank 0 holds the lock and commits; every rank trains."""
    if "LOCAL_RANK" in os.environ:
        return _run_distributed(spec)
    _check_no_links(spec)
    os.makedirs(spec.trial_dir, exist_ok=True)
    try:
        with exclusive_dir(spec.trial_dir):
            return _run_locked(spec)
    except LockBusy as e:
        raise _busy(spec, e) from None


def _check_no_links(spec: TrialSpec) -> None:
    """The coordinator checked the campaign's folders; a worker checks again below the root before it writes
    (its trial may run on another node, or a link may have been planted since)."""
    from common import checks

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(spec.trial_dir))))
    checks.no_links(root, spec.trial_dir)


def _busy(spec: TrialSpec, e: LockBusy) -> TrialBusyError:
    return TrialBusyError(
        f"trial {spec.id} is being run by another process ({e.holder}); wait for it or stop it, then re-run"
    )


def _run_distributed(spec: TrialSpec) -> dict:
    from contextlib import ExitStack

    from common.errors import UsageError
    from runner import distributed

    distributed.init()

    def lock(stack: ExitStack) -> None:
        _check_no_links(spec)
        os.makedirs(spec.trial_dir, exist_ok=True)
        try:
            stack.enter_context(exclusive_dir(spec.trial_dir))
        except LockBusy as e:
            raise UsageError(str(_busy(spec, e))) from None

    with ExitStack() as stack:
        distributed.decided_by_rank0(lambda: lock(stack))
        return _run_locked(spec)


def attempt(spec: TrialSpec) -> tuple[dict | None, str | None]:
    """``run_trial``, with bad input, missing data or a busy trial returned as one ``error: ...`` line."""
    from common.errors import user_errors

    try:
        return run_trial(spec), None
    except (*user_errors(), TrialBusyError) as e:
        return None, f"error: {e}"


def _run_locked(spec: TrialSpec) -> dict:
    # torch comes in only here, in the process that trains; the coordinator needs just read_result
    from common import search_space as ss
    from runner import distributed, frameworks
    from runner.experiment import check_batch_split
    from runner.loading import load_submission
    from runner.loop import train_once
    from workloads.registry import get_workload

    committed = read_result(spec.trial_dir)
    if committed is not None:
        return committed
    config = replace(spec.config, flags=spec.to_dict())
    submission = load_submission(spec.submission_path, config.framework)
    hyperparameters = None
    if spec.hyperparameters is not None:
        point = ss.parse([spec.hyperparameters], source=f"point of trial {spec.id}")
        ss.check(point, submission.hyperparameters, submission.path)
        hyperparameters = ss.make_hyperparameters(spec.hyperparameters)
    workload = get_workload(config.workload_name, config.framework)
    check_batch_split(submission, config.workload_name, workload)  # under torchrun: --procs_per_trial ranks
    result = train_once(
        workload,
        submission,
        hyperparameters,
        frameworks.get(config.framework).root_key(config.rng_seed),
        config,
        trial_dir=spec.trial_dir,
    )
    summary = {
        "id": spec.id,
        "reached_validation": result.reached_validation,
        "reached_test": result.reached_test,
        "time_to_target": result.time_to_target,
        "step_to_target": result.step_to_target,
        "refined_time_to_target": result.refined_time_to_target,
        "refined_step_to_target": result.refined_step_to_target,
        "global_step": result.global_step,
        "submission_time": result.submission_time,
        "metric": result.metric,
        "target": result.target,
        "last_validation": result.last_validation,
        "diverged_at_step": result.diverged_at_step,
        "summary": result.summary(spec.id),
    }
    if distributed.is_writer():
        write_json(os.path.join(spec.trial_dir, layout.TRIAL_RESULT), summary)
    return summary
