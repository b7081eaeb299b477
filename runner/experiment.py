"""An experiment: one submission on one workload, over the trials of a search space (or self-tuning)."""

import os
from contextlib import ExitStack
from dataclasses import dataclass, replace

from common import checks, layout
from common import search_space as ss
from common.errors import UsageError
from common.locks import HOLDER, LockBusy, exclusive_dir
from common.seeds import draw_seed
from runner import distributed, frameworks
from runner.loading import Submission, load_submission
from runner.loop import TrialConfig, TrialResult, train_once


@dataclass(frozen=True)
class ExperimentConfig:
    submission_path: str
    trial: TrialConfig
    tuning_search_space: str | None = None
    num_tuning_trials: int = 1
    experiment_dir: str | None = None
    experiment_name: str | None = None
    overwrite: bool = False
    resume_last_run: bool = False
    hparam_start_index: int | None = None
    hparam_end_index: int | None = None

    def workload_dir(self) -> str | None:
        if self.experiment_dir is None:
            return None
        return os.path.join(
            os.path.abspath(os.path.expanduser(self.experiment_dir)),
            self.experiment_name or "",
            layout.workload_name(self.trial.workload_name, self.trial.framework),
        )


def plan_trials(cfg: ExperimentConfig, submission: Submission | None = None) -> list[tuple[int, dict | None]]:
    """(trial index, hyperparameter point) pairs; one (0, None) trial under the self-tuning ruleset. The search
    space is checked against the hyperparameters ``submission`` declares."""
    ruleset = cfg.trial.tuning_ruleset
    checks.tuning_ruleset(ruleset)
    if ruleset == "self":
        if cfg.tuning_search_space:
            raise UsageError(
                "--tuning_search_space is not allowed with --tuning_ruleset=self; drop it "
                "(self-tuning submissions use their own defaults)"
            )
        return [(0, None)]
    if not cfg.tuning_search_space:
        raise UsageError(
            "--tuning_ruleset=external needs --tuning_search_space=path/to/tuning_search_space.json "
            "(or use --tuning_ruleset=self)"
        )
    if cfg.num_tuning_trials < 1:
        raise UsageError(f"--num_tuning_trials={cfg.num_tuning_trials} must be at least 1")
    space = ss.load(cfg.tuning_search_space)
    if submission is not None:
        ss.check(space, submission.hyperparameters, submission.path)
    num = cfg.num_tuning_trials
    start = cfg.hparam_start_index or 0
    end = num if cfg.hparam_end_index is None else cfg.hparam_end_index
    if not 0 <= start < end <= num:
        raise UsageError(
            f"hyperparameter indices [{start}, {end}) must satisfy 0 <= start < end <= "
            f"--num_tuning_trials={num}; fix --hparam_start_index/--hparam_end_index"
        )
    points = space.points(num, seed=cfg.trial.rng_seed or 0)  # run_experiment has resolved the seed
    return [(i, points[i]) for i in range(start, end)]


def check_paths(cfg: ExperimentConfig) -> None:
    if cfg.overwrite and cfg.resume_last_run:
        raise UsageError("--overwrite and --resume_last_run contradict each other; pass only one")
    if cfg.experiment_dir is None:
        return
    if not cfg.experiment_name:
        raise UsageError("--experiment_dir needs --experiment_name; pass --experiment_name=NAME")
    checks.experiment_name(cfg.experiment_name)
    checks.output_dir("experiment_dir", cfg.experiment_dir)


def prepare_trial_dirs(cfg: ExperimentConfig, indices: list[int], locks: ExitStack) -> dict[int, str | None]:
    """Check every trial directory before anything runs, so a refused run loses nothing, then lock each one for
    this process (held until ``locks`` closes): a second runner on a trial is refused, naming the holder."""
    check_paths(cfg)
    base = cfg.workload_dir()
    if base is None:
        return {i: None for i in indices}
    dirs = {i: os.path.join(base, layout.trial_name(i + 1)) for i in indices}
    for d in dirs.values():
        checks.no_links(cfg.experiment_dir, d)  # nothing is written or deleted through a link
        if os.path.exists(d) and not os.path.isdir(d):
            raise UsageError(f"{d} is a file, not a trial directory; move it away or pick another --experiment_name")
        if _contents(d) and not (cfg.overwrite or cfg.resume_last_run):
            raise UsageError(
                f"trial directory {d} already exists; pass --overwrite to replace it or "
                f"--resume_last_run to continue it"
            )
        foreign = [n for n in _contents(d) if not (layout.is_trial_file(n) and os.path.isfile(os.path.join(d, n)))]
        if cfg.overwrite and foreign:
            raise UsageError(
                f"trial directory {d} holds {foreign[0]!r}, which kronbench does not write; --overwrite removes only "
                f"a trial's own files: move it away, or pick another --experiment_name"
            )
    for d in dirs.values():
        checks.make_dirs("experiment_dir", d)
        try:
            locks.enter_context(exclusive_dir(d))
        except LockBusy as e:
            raise UsageError(
                f"trial {d} is being run by another process ({e.holder}); wait for it or stop it"
            ) from None
    for d in dirs.values():
        if cfg.overwrite:  # the trial's own files only, all checked above
            for name in _contents(d):
                os.remove(os.path.join(d, name))
    return dirs


def _contents(folder: str) -> list[str]:
    """What a trial directory holds, besides the lock's holder note."""
    return [n for n in os.listdir(folder) if n != HOLDER] if os.path.isdir(folder) else []


def check_batch_split(
    submission: Submission, workload_name: str, workload, world: int | None = None, flag: str = "--nproc_per_node"
) -> None:
    """Under torchrun each of ``world`` ranks (default: this run's) trains on an equal slice of the global batch;
    ``flag`` sets the number of ranks (a campaign's is --procs_per_trial)."""
    world = distributed.world_size() if world is None else world
    batch_size = submission.batch_size(workload_name, getattr(workload, "base_workload_name", None))
    if batch_size % world:
        raise UsageError(
            f"{submission.name}'s global batch size {batch_size} for {workload_name} does not split over "
            f"{world} processes; run with a {flag} that divides it"
        )


def run_experiment(cfg: ExperimentConfig, workload) -> list[TrialResult]:
    """Run every planned trial of ``cfg`` on ``workload``; print one summary line per trial."""
    submission = load_submission(cfg.submission_path, cfg.trial.framework)
    if cfg.trial.rng_seed is None:  # one seed for the search-space points and the trials, recorded in meta data
        cfg = replace(cfg, trial=replace(cfg.trial, rng_seed=distributed.decided_by_rank0(lambda: draw_seed("run"))))
    trials = plan_trials(cfg, submission)
    check_paths(cfg)
    check_batch_split(submission, cfg.trial.workload_name, workload)
    check_data = getattr(workload, "check_data", None)
    if check_data is not None:  # missing data stops the run here, before any directory is written
        check_data(cfg.trial.data_dir)
    results, fw = [], frameworks.get(cfg.trial.framework)
    with ExitStack() as locks:
        # under torchrun rank 0 checks, creates and locks the directories; every rank gets their paths
        dirs = distributed.decided_by_rank0(lambda: prepare_trial_dirs(cfg, [i for i, _ in trials], locks))
        for index, point in trials:
            hyperparameters = None if point is None else ss.make_hyperparameters(point)
            result = train_once(
                workload, submission, hyperparameters, fw.root_key(cfg.trial.rng_seed), cfg.trial, dirs[index]
            )
            if distributed.is_writer():
                print(result.summary(f"{cfg.trial.workload_name} / {submission.name} / trial {index + 1}"), flush=True)
            results.append(result)
    return results
