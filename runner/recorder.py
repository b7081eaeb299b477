"""What a trial writes and restores around the clock, so that runner/loop.py is only AlgoPerf's rules.

Before the first step: continue from the trial's checkpoint if it has one, open the logs (they are checked
before anything is written), write this run's meta data, flags and hyperparameters, attach the logger to the
workload and build the eval hooks. After each eval: its row, the hooks' measurements and a checkpoint, all
untimed (their time is tracked in ``accumulated_logging_time``, never charged). At the end: a divergence in
the meta data, the final row, a last checkpoint, and the logs closed. File names: common/layout.py.

Without a trial directory a recorder records nothing, so the loop never asks whether it is logging. The
``state`` it is given is the loop's TrialState, read (and on restore, filled) in place.
"""

import json
import logging
import os

from common import layout
from common.atomic import write_json
from runner import checkpoint, distributed
from runner.clock import get_time
from runner.eval_hooks import EvalHookError, EvalHooks
from runner.logs import MetricsLogger, has_final_row, meta_data
from runner.refine import Crossing
from runner.trial import DIVERGED_REASON

log = logging.getLogger("kronbench.runner")


class TrialRecorder:
    def __init__(self, trial_dir: str | None, config, identity: dict, checkpoints=checkpoint):
        """``config``: the TrialConfig; ``identity``: what a checkpoint must match to be resumed by this trial;
        ``checkpoints``: the framework's checkpoint module (runner/checkpoint.py or runner/checkpoint_jax.py).
        Under torchrun the ranks other than 0 restore and take part in checkpoint snapshots (a collective) but
        write nothing."""
        self.trial_dir, self.config, self.identity, self.checkpoints = trial_dir, config, identity, checkpoints
        self.writes = distributed.is_writer()
        self.logger: MetricsLogger | None = None
        self._meta_path, self._meta, self._hooks = None, None, None
        self.finished = False  # an earlier run finished the trial: it is reported and left as it is
        self.diverged: dict | None = None  # that run's divergence record ({"step", "reason"}), if it diverged

    def start(self, workload, state, hyperparameters, data_rng) -> None:
        if self.trial_dir is None:
            return
        self._restore(state)
        if self.finished:
            return
        distributed.decided_by_rank0(lambda: self._open(workload, state, hyperparameters, data_rng))

    def _open(self, workload, state, hyperparameters, data_rng) -> None:
        """The writer's part of ``start``: hooks (built first: a bad one writes nothing), logs, meta data, flags,
        hyperparameters."""
        if self.config.eval_hooks:
            self._hooks = EvalHooks(self.config.eval_hooks, workload, data_rng, self.config.data_dir)
        self.logger = MetricsLogger(self.trial_dir, resume_step=state.global_step, evals=state.eval_results)
        n = state.preemption_count
        self._meta_path = os.path.join(self.trial_dir, layout.meta_data_file(n))
        self._meta = meta_data(workload, self.config.workload_name, self.config.framework, self.config.rng_seed)
        if distributed.active():
            self._meta["torchrun"] = {"world_size": distributed.world_size(), **distributed.world_env()}
        write_json(self._meta_path, self._meta)
        write_json(os.path.join(self.trial_dir, layout.flags_file(n)), self.config.flags)
        if hyperparameters is not None:
            write_json(os.path.join(self.trial_dir, layout.HPARAMS), hyperparameters._asdict())
        workload.attach_metrics_logger(self.logger)

    def _restore(self, state) -> None:
        restored = self.checkpoints.restore(
            self.trial_dir, self.identity, state.model_params, state.optimizer_state, state.model_state
        )
        if restored is None:
            return
        state.model_params = restored["model_params"]
        state.model_state = restored["model_state"]
        state.optimizer_state = restored["optimizer_state"]
        state.train_state.update(restored["train_state"])
        state.eval_results = [tuple(e) for e in restored["eval_results"]]
        state.global_step = restored["global_step"]
        state.preemption_count = restored["preemption_count"] + 1
        state.refined = _earlier_crossing(self.trial_dir, state.preemption_count)
        self.diverged = _earlier_divergence(self.trial_dir, state.preemption_count)
        ts = state.train_state
        done = not ts["is_time_remaining"] or ts["training_complete"]
        done = done or (ts["validation_goal_reached"] and ts["test_goal_reached"])
        # a kill between the last checkpoint and the final row leaves the row to this run
        self.finished = bool(self.diverged) or (done and has_final_row(self.trial_dir, state.global_step))
        if self.finished:
            return
        log.info("resumed %s at step %d (preemption %d)", self.trial_dir, state.global_step, state.preemption_count)

    def evaluated(self, workload, state, result: dict, eval_rng, diverged: bool) -> None:
        """After an eval: its row, the hooks, and a checkpoint unless the eval found the loss non-finite."""
        if self.trial_dir is None:
            return
        start = get_time()
        if self.logger is not None:
            self.logger.append_scalar_metrics(result, state.global_step, state.preemption_count, is_eval=True)
        if self._hooks is not None:
            try:
                self._hooks.after_eval(
                    workload, state.model_params, state.model_state, eval_rng, state.global_step, self.logger
                )
            except EvalHookError as e:  # the trial ends here, its logs and last checkpoint kept
                write_json(self._meta_path, {**self._meta, "error": {"step": state.global_step, "reason": str(e)}})
                self.logger.close()
                raise
        if not diverged:
            self.save(state)
        state.train_state["accumulated_logging_time"] += get_time() - start

    def refined(self, crossing) -> None:
        """The refined time to target (runner/refine.py) joins this run's meta data."""
        if self._meta is None:
            return
        self._meta["refined_time_to_target"] = crossing.to_dict()
        write_json(self._meta_path, self._meta)

    def save(self, state, write: bool = True) -> None:
        """A checkpoint: snapshot on every rank, written by the writer when ``write``."""
        if self.trial_dir is None or not self.config.save_checkpoints:
            return
        blob = self.checkpoints.snapshot(
            self.trial_dir,
            identity=self.identity,
            model_params=state.model_params,
            model_state=state.model_state,
            optimizer_state=state.optimizer_state,
            train_state=state.train_state,
            eval_results=state.eval_results,
            global_step=state.global_step,
            preemption_count=state.preemption_count,
        )
        if self.writes and write:
            self.checkpoints.write(self.trial_dir, blob)

    def finish(self, workload, state, diverged_at: int | None, reason: str = DIVERGED_REASON) -> None:
        """A diverged trial keeps its logs, and its last checkpoint stays the last finite one. The final row (and
        its checkpoint) is written once, even if a kill came just after an earlier attempt wrote it."""
        if self.trial_dir is None:
            return
        new_row = self.logger is not None and not self.logger.has_row(state.global_step)
        if diverged_at is None:
            self.save(state, write=new_row)  # every rank takes part in the snapshot; the writer decides
        if self.logger is None:
            return
        if diverged_at is not None:
            write_json(self._meta_path, {**self._meta, "diverged": {"step": diverged_at, "reason": reason}})
        if new_row:
            score = {"score": state.train_state["accumulated_submission_time"]}
            self.logger.append_scalar_metrics(score, state.global_step, state.preemption_count)
        self.logger.close()
        workload.attach_metrics_logger(None)


def _earlier_divergence(trial_dir: str, runs: int) -> dict | None:
    """The divergence an earlier run of this trial recorded in its meta data, or None."""
    for n in range(runs):
        try:
            with open(os.path.join(trial_dir, layout.meta_data_file(n))) as f:
                record = json.load(f)["diverged"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            return record
    return None


def _earlier_crossing(trial_dir: str, runs: int):
    """The crossing an earlier run of this trial found and recorded in its meta data (written by kronbench as
    JSON), or None."""
    for n in range(runs):
        try:
            with open(os.path.join(trial_dir, layout.meta_data_file(n))) as f:
                return Crossing(**json.load(f)["refined_time_to_target"])
        except (OSError, ValueError, KeyError, TypeError):  # no such run, no record, or not one of ours
            continue
    return None
