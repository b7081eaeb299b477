"""One trial under AlgoPerf's clock (docs/algoperf_contract.md, section 4).

Timed (``accumulated_submission_time``): data_selection + update_params, and prepare_for_eval.
Untimed: initialisation, evaluation, logging and checkpointing. An eval is due when
``now - last_eval_time >= eval_period_time_sec`` (``last_eval_time`` starts at 0, so the first eval follows
step 1) or training is complete; the budget is checked after each step and again after prepare_for_eval,
and an eval runs only while budget remains.

Per-step keys are AlgoPerf's (``fold_in(rng, step)`` split four ways) but derived in blocks outside the timed
interval: they are runner bookkeeping, and derived one at a time between torch steps they cost ~75 us each
(cold caches) where a block costs ~26 us a step. The official runner charges that cost to the submission only
because of where its code sits.
"""

import functools
import logging
import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch

from algoperf import spec
from compat import prng
from runner import checkpoint
from runner.clock import get_time
from runner.eval_hooks import EvalHooks
from runner.loading import Submission
from runner.logs import MetricsLogger, meta_data, write_json
from runner.progress import Progress

log = logging.getLogger("kronbench.runner")

SELF_TUNING_BUDGET_FACTOR = 1.5
KEY_BLOCK = 256


class StepKeys:
    """(data_selection, update, prepare_for_eval, eval) keys of a step, derived KEY_BLOCK steps at a time.

    ``fold_in(rng, step)`` is ``[draw(rng), step]``: its first entry does not depend on the step, so it is drawn
    once and each step costs one ``split``.
    """

    def __init__(self, rng):
        self._folded, self._start, self._keys = prng.fold_in(rng, 0)[0], 0, []

    def __call__(self, step: int):
        i = step - self._start
        if not 0 <= i < len(self._keys):
            self._start, i = step, 0
            self._keys = [prng.split([self._folded, s], 4) for s in range(step, step + KEY_BLOCK)]
        return self._keys[i]


@dataclass(frozen=True)
class TrialConfig:
    workload_name: str
    framework: str = "pytorch"
    data_dir: str = ""
    imagenet_v2_data_dir: str | None = None
    tuning_ruleset: str = "external"
    max_global_steps: int | None = None
    save_checkpoints: bool = True
    rng_seed: int | None = None
    progress: bool | None = None  # None: only when stderr is a terminal
    eval_hooks: tuple = ()  # runner.eval_hooks.EvalHookSpec: measurements after evals, to TensorBoard
    flags: dict = field(default_factory=dict)

    @property
    def budget_factor(self) -> float:
        return SELF_TUNING_BUDGET_FACTOR if self.tuning_ruleset == "self" else 1.0


@dataclass
class TrialResult:
    trial_dir: str | None
    global_step: int
    submission_time: float
    budget_sec: float
    metric: str
    target: float
    reached_validation: bool
    reached_test: bool
    step_to_target: int | None = None
    time_to_target: float | None = None
    last_validation: float | None = None
    eval_results: list = field(default_factory=list)
    train_state: dict = field(default_factory=dict)

    def summary(self, label: str) -> str:
        steps = f"{self.global_step} steps, {self.submission_time:.1f} s submission time"
        last = "n/a" if self.last_validation is None else f"{self.last_validation:.4g}"
        if self.reached_validation:
            return (
                f"{label}: reached validation {self.metric} target {self.target:g} at step {self.step_to_target}, "
                f"{self.time_to_target:.2f} s submission time (ran {steps}; last {last})"
            )
        return (
            f"{label}: did NOT reach validation {self.metric} target {self.target:g} "
            f"(ran {steps} of a {self.budget_sec:g} s budget; last {last})"
        )


def train_once(
    workload: spec.Workload,
    submission: Submission,
    hyperparameters: Any,
    rng: Any,
    config: TrialConfig,
    trial_dir: str | None = None,
) -> TrialResult:
    """Train until both targets are reached, the budget is spent, max_global_steps, or TrainingCompleteError."""
    data_rng, opt_init_rng, model_init_rng, rng = prng.split(rng, 4)
    base_name = getattr(workload, "base_workload_name", None)
    batch_size = submission.batch_size(config.workload_name, base_name)
    eval_batch_size = submission.eval_batch_size(config.workload_name, workload.eval_batch_size)
    input_queue = workload._build_input_queue(data_rng, "train", data_dir=config.data_dir, global_batch_size=batch_size)
    model_params, model_state = workload.init_model_fn(model_init_rng)
    optimizer_state = submission.module.init_optimizer_state(
        workload, model_params, model_state, hyperparameters, opt_init_rng
    )
    train_state = {
        "validation_goal_reached": False,
        "test_goal_reached": False,
        "is_time_remaining": True,
        "last_eval_time": 0,
        "training_complete": False,
        "accumulated_submission_time": 0,
        "accumulated_eval_time": 0,
        "accumulated_logging_time": 0,
        "last_step_end_time": None,
    }
    global_step, eval_results, preemption_count = 0, [], 0

    logger = None
    if trial_dir is not None:
        restored = checkpoint.restore(trial_dir, model_params, optimizer_state)
        if restored is not None:
            model_state = restored["model_state"]
            train_state.update(restored["train_state"])
            eval_results = restored["eval_results"]
            global_step = restored["global_step"]
            preemption_count = restored["preemption_count"] + 1
            log.info("resumed %s at step %d (preemption %d)", trial_dir, global_step, preemption_count)
        write_json(
            os.path.join(trial_dir, f"meta_data_{preemption_count}.json"),
            meta_data(workload, config.workload_name, config.framework, config.rng_seed),
        )
        write_json(os.path.join(trial_dir, f"flags_{preemption_count}.json"), config.flags)
        if hyperparameters is not None:
            write_json(os.path.join(trial_dir, "hparams.json"), hyperparameters._asdict())
        logger = MetricsLogger(trial_dir, resume_step=global_step)
        workload.attach_metrics_logger(logger)
    eval_hooks = None
    if logger is not None and config.eval_hooks:
        eval_hooks = EvalHooks(config.eval_hooks, workload, data_rng, config.data_dir)

    budget = workload.max_allowed_runtime_sec * config.budget_factor
    metric = workload.target_metric_name
    progress = Progress(
        f"{config.workload_name}/{submission.name}",
        budget,
        metric,
        workload.validation_target_value,
        enabled=config.progress,
    )
    data_selection = submission.module.data_selection
    update_params = submission.module.update_params
    prepare_for_eval = submission.fn("prepare_for_eval")
    update_kwargs = {"train_state": MappingProxyType(train_state)} if submission.update_takes_train_state else {}
    first_hit = _first_hit(eval_results, workload)
    api_kwargs = functools.partial(_api_kwargs, workload, hyperparameters, eval_results)

    def save_checkpoint() -> None:
        """The trial as it is now (the closure reads the loop's current values)."""
        if trial_dir is not None and config.save_checkpoints:
            checkpoint.save(
                trial_dir,
                model_params=model_params,
                model_state=model_state,
                optimizer_state=optimizer_state,
                train_state=train_state,
                eval_results=eval_results,
                global_step=global_step,
                preemption_count=preemption_count,
            )

    step_keys = StepKeys(rng)
    keys = step_keys(global_step)

    global_start_time = get_time()
    train_state["last_step_end_time"] = global_start_time
    while (
        train_state["is_time_remaining"]
        and not (train_state["validation_goal_reached"] and train_state["test_goal_reached"])
        and not train_state["training_complete"]
    ):
        data_select_rng, update_rng, prep_eval_rng, eval_rng = keys
        batch = data_selection(
            workload,
            input_queue,
            optimizer_state,
            model_params,
            model_state,
            hyperparameters,
            global_step,
            data_select_rng,
        )
        try:
            optimizer_state, model_params, model_state = update_params(
                batch=batch,
                **api_kwargs(model_params, model_state, optimizer_state, global_step, update_rng),
                **update_kwargs,
            )
        except spec.TrainingCompleteError:
            train_state["training_complete"] = True
        global_step += 1
        if config.max_global_steps is not None and global_step >= config.max_global_steps:
            train_state["training_complete"] = True
        train_step_end_time = get_time()
        train_state["accumulated_submission_time"] += train_step_end_time - train_state["last_step_end_time"]
        train_state["is_time_remaining"] = train_state["accumulated_submission_time"] < budget

        if (
            train_step_end_time - train_state["last_eval_time"] >= workload.eval_period_time_sec
            or train_state["training_complete"]
        ):
            if prepare_for_eval is not None:
                start = get_time()
                optimizer_state, model_params, model_state = prepare_for_eval(
                    **api_kwargs(model_params, model_state, optimizer_state, global_step, prep_eval_rng)
                )
                train_state["accumulated_submission_time"] += get_time() - start
            train_state["is_time_remaining"] = train_state["accumulated_submission_time"] < budget
            if train_state["is_time_remaining"]:
                del batch
                result = _evaluate(
                    workload,
                    model_params,
                    model_state,
                    eval_rng,
                    config,
                    eval_batch_size,
                    global_step,
                    train_state,
                    global_start_time,
                )
                if result is not None:
                    eval_results.append((global_step, result))
                    if first_hit is None and workload.has_reached_validation_target(result):
                        first_hit = (global_step, result["score"])
                    progress.evaluated(
                        global_step, train_state["accumulated_submission_time"], result.get(f"validation/{metric}")
                    )
                    if logger is not None:  # logging time is tracked, not charged
                        start = get_time()
                        logger.append_scalar_metrics(result, global_step, preemption_count, is_eval=True)
                        if eval_hooks is not None:
                            eval_hooks.after_eval(workload, model_params, model_state, eval_rng, global_step, logger)
                        save_checkpoint()
                        train_state["accumulated_logging_time"] += get_time() - start
        progress.update(global_step, train_state["accumulated_submission_time"])
        keys = step_keys(global_step)
        train_state["last_step_end_time"] = get_time()

    progress.close()
    if logger is not None and not logger.has_row(global_step):  # once, even if a kill came just before it
        logger.append_scalar_metrics(
            {"score": train_state["accumulated_submission_time"]}, global_step, preemption_count
        )
        save_checkpoint()
    if logger is not None:
        logger.close()
        workload.attach_metrics_logger(None)
    last = eval_results[-1][1].get(f"validation/{metric}") if eval_results else None
    return TrialResult(
        trial_dir=trial_dir,
        global_step=global_step,
        submission_time=train_state["accumulated_submission_time"],
        budget_sec=budget,
        metric=metric,
        target=workload.validation_target_value,
        reached_validation=train_state["validation_goal_reached"],
        reached_test=train_state["test_goal_reached"],
        step_to_target=first_hit[0] if first_hit else None,
        time_to_target=first_hit[1] if first_hit else None,
        last_validation=last,
        eval_results=eval_results,
        train_state=dict(train_state),
    )


def _api_kwargs(
    workload, hyperparameters, eval_results, model_params, model_state, optimizer_state, global_step, rng
) -> dict:
    """The keyword arguments update_params and prepare_for_eval share, under AlgoPerf's names."""
    return {
        "workload": workload,
        "current_param_container": model_params,
        "current_params_types": workload.model_params_types,
        "model_state": model_state,
        "hyperparameters": hyperparameters,
        "loss_type": workload.loss_type,
        "optimizer_state": optimizer_state,
        "eval_results": eval_results,
        "global_step": global_step,
        "rng": rng,
    }


def _evaluate(
    workload, model_params, model_state, eval_rng, config, eval_batch_size, global_step, train_state, global_start_time
) -> dict | None:
    """Untimed evaluation; updates the goal flags and the eval clock. None if the accelerator ran out of memory."""
    eval_start_time = get_time()
    try:
        result = workload.eval_model(
            eval_batch_size,
            model_params,
            model_state,
            eval_rng,
            config.data_dir,
            config.imagenet_v2_data_dir,
            global_step,
        )
    except torch.OutOfMemoryError:
        log.warning("out of memory during the eval at step %d; skipping this eval", global_step)
        torch.cuda.empty_cache()
        return None
    train_state["validation_goal_reached"] |= bool(workload.has_reached_validation_target(result))
    train_state["test_goal_reached"] |= bool(workload.has_reached_test_target(result))
    eval_end_time = get_time()
    train_state["last_eval_time"] = eval_end_time
    train_state["accumulated_eval_time"] += eval_end_time - eval_start_time
    result["score"] = train_state["accumulated_submission_time"]
    result["total_duration"] = eval_end_time - global_start_time
    result["accumulated_submission_time"] = train_state["accumulated_submission_time"]
    result["accumulated_eval_time"] = train_state["accumulated_eval_time"]
    result["accumulated_logging_time"] = train_state["accumulated_logging_time"]
    return result


def _first_hit(eval_results, workload) -> tuple[int, float] | None:
    for step, result in eval_results:
        if workload.has_reached_validation_target(result):
            return step, result["score"]
    return None
