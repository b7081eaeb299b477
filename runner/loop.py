"""One trial under AlgoPerf's clock (docs/algoperf_contract.md, section 4).

Timed (``accumulated_submission_time``): data_selection + update_params, and prepare_for_eval.
Untimed: initialisation, evaluation, logging and checkpointing. An eval is due when
``now - last_eval_time >= eval_period_time_sec`` (``last_eval_time`` starts at 0, so the first eval follows
step 1) or training is complete; the budget is checked after each step and again after prepare_for_eval,
and an eval runs only while budget remains. With ``refine_time_to_target_sec`` the runner also copies the model
between evals, outside the clock, to refine the time to target beside AlgoPerf's (runner/refine.py).

A divergence (non-finite parameters, or a non-finite training loss at an eval) ends the trial at the step it is
detected. The parameters are checked, untimed, at every eval point (after prepare_for_eval, before the eval and
its checkpoint), before every copy the refiner keeps, at the end of the loop (before the final checkpoint) and
every FINITE_CHECK_EVERY steps between, so a divergence is found within that many steps and the last checkpoint
is always a finite one. AlgoPerf's update_params returns no loss for the runner to watch each step, and a check
of every parameter every step cost ~15% of MNIST's PyTorch step (docs/measurements.md, "Runner overhead").

Per-step keys are AlgoPerf's (``fold_in(rng, step)`` split four ways) but derived in blocks outside the timed
interval: they are runner bookkeeping, and derived one at a time between torch steps they cost ~75 us each
(cold caches), where runner/keys.py derives a block for a fifth of ``prng.split``'s cost a step. The official
runner charges that cost to the submission only because of where its code sits. Inside the clock the runner
adds only its calls and a few dict writes (update_params's keywords fill one dict kept across steps): ~5 us a
step around a submission that does nothing (``python -m benchmarks.runner_overhead``, docs/measurements.md).
"""

import logging
import math
from types import MappingProxyType
from typing import Any

from algoperf import spec
from runner import frameworks
from runner.clock import get_time
from runner.loading import Submission
from runner.progress import Progress
from runner.recorder import TrialRecorder
from runner.refine import Refiner
from runner.trial import DIVERGED_REASON, DIVERGENCE_ERRORS, TrialConfig, TrialResult, TrialState

log = logging.getLogger("kronbench.runner")

# update_params's keywords that change every step, cleared after it
_STEP_ENTRIES = dict.fromkeys(
    ("batch", "rng", "global_step", "current_param_container", "model_state", "optimizer_state")
)
FINITE_CHECK_EVERY = 10  # steps between parameter checks away from evals, refiner copies and the loop's end


def train_once(
    workload: spec.Workload,
    submission: Submission,
    hyperparameters: Any,
    rng: Any,
    config: TrialConfig,
    trial_dir: str | None = None,
) -> TrialResult:
    """Train until both targets are reached, the budget is spent, max_global_steps, or TrainingCompleteError."""
    fw = frameworks.get(config.framework, config.jax_batch_layout)
    data_rng, opt_init_rng, model_init_rng, rng = fw.split(rng, 4)
    base_name = getattr(workload, "base_workload_name", None)
    batch_size = submission.batch_size(config.workload_name, base_name)
    eval_batch_size = submission.eval_batch_size(config.workload_name, workload.eval_batch_size)
    input_queue = workload._build_input_queue(data_rng, "train", data_dir=config.data_dir, global_batch_size=batch_size)
    input_queue = fw.layout.batches(input_queue)
    model_params, model_state = fw.layout.model(*workload.init_model_fn(model_init_rng))
    optimizer_state = submission.module.init_optimizer_state(
        workload, model_params, model_state, hyperparameters, opt_init_rng
    )
    state = TrialState(model_params, model_state, optimizer_state)
    identity = {
        "submission": submission.name,
        "workload": config.workload_name,
        "rng_seed": config.rng_seed,
        "hyperparameters": None if hyperparameters is None else dict(hyperparameters._asdict()),
    }
    recorder = TrialRecorder(trial_dir, config, identity, fw.checkpoint)
    recorder.start(workload, state, hyperparameters, data_rng)
    run = _Run(workload, submission, hyperparameters, config, recorder, input_queue, eval_batch_size, fw)
    if recorder.finished:  # by an earlier run: reported from its checkpoint, nothing written
        run.diverged_reason = (recorder.diverged or {}).get("reason", DIVERGED_REASON)
        done = run.result(state, trial_dir, (recorder.diverged or {}).get("step"))
        done.finished_earlier = True
        return done
    diverged_at = run.loop(state, rng)
    recorder.finish(workload, state, diverged_at, run.diverged_reason)
    return run.result(state, trial_dir, diverged_at)


class _Run:
    """One run of a trial under AlgoPerf's clock: what stays fixed while it runs, and the loop itself."""

    def __init__(self, workload, submission, hyperparameters, config, recorder, input_queue, eval_batch_size, fw):
        self.workload, self.hyperparameters, self.config, self.recorder = workload, hyperparameters, config, recorder
        self.fw = fw
        self.input_queue, self.eval_batch_size = input_queue, eval_batch_size
        self.data_selection = submission.module.data_selection
        self.update_params = submission.module.update_params
        self.prepare_for_eval = submission.fn("prepare_for_eval")
        self.takes_train_state = submission.update_takes_train_state
        self.budget = workload.max_allowed_runtime_sec * config.budget_factor
        self.metric = workload.target_metric_name
        self.diverged_reason = DIVERGED_REASON
        self.progress = Progress(
            f"{config.workload_name}/{submission.name}",
            self.budget,
            self.metric,
            workload.validation_target_value,
            enabled=config.progress,
        )

    def loop(self, state: TrialState, rng) -> int | None:
        """Select data, update, maybe evaluate, check the budget; until a stopping rule holds. Returns the step
        at which training diverged (non-finite loss or parameters), else None."""
        ts = state.train_state
        update_kwargs = self._api_kwargs(state, None)  # its per-step entries are set in _train_step
        if self.takes_train_state:
            update_kwargs["train_state"] = MappingProxyType(ts)
        step_keys = self.fw.step_keys(rng)
        keys = step_keys(state.global_step)
        diverged_at = None
        period = self.config.refine_time_to_target_sec
        self.refiner = Refiner(self.fw, self.workload, period, state.refined) if period else None
        self._checked_step = state.global_step  # a fresh model, or a resumed one from a (finite) checkpoint
        start_time = get_time()
        ts["last_step_end_time"] = start_time
        while (
            ts["is_time_remaining"]
            and not (ts["validation_goal_reached"] and ts["test_goal_reached"])
            and not ts["training_complete"]
            and diverged_at is None
        ):
            data_select_rng, update_rng, prep_eval_rng, eval_rng = keys
            try:
                step_end_time = self._train_step(state, data_select_rng, update_rng, update_kwargs)
            except DIVERGENCE_ERRORS as e:  # the submission reports that this step diverged
                diverged_at = state.global_step + 1
                self.diverged_reason = f"{type(e).__name__}: {' '.join(str(e).split())}"
                break
            if step_end_time - ts["last_eval_time"] >= self.workload.eval_period_time_sec or ts["training_complete"]:
                diverged_at = self._eval_point(state, prep_eval_rng, eval_rng, start_time)
            else:  # untimed, as the eval is: runner bookkeeping
                copy = self.refiner is not None and self.refiner.due(state)
                if (copy or state.global_step % FINITE_CHECK_EVERY == 0) and self._diverged(state):
                    diverged_at = state.global_step
                elif copy:
                    self.refiner.copy(state)
            self.progress.update(state.global_step, ts["accumulated_submission_time"])
            keys = step_keys(state.global_step)
            ts["last_step_end_time"] = get_time()
        if diverged_at is None and self._checked_step != state.global_step and self._diverged(state):
            diverged_at = state.global_step  # before the final checkpoint
        self.progress.close()
        return diverged_at

    def _diverged(self, state: TrialState) -> bool:
        """Whether a parameter is not finite (untimed: runner bookkeeping)."""
        self._checked_step = state.global_step
        return not self.fw.finite(state.model_params)

    def _train_step(self, state: TrialState, data_select_rng, update_rng, kwargs: dict) -> float:
        """Timed, from the end of the previous step: data_selection and update_params. Returns the step's end.
        ``kwargs`` holds update_params's keywords that stay the same from step to step (one dict filled in place,
        not one built per step inside the clock); the batch is released on return, before any eval."""
        ts = state.train_state
        batch = self.data_selection(
            self.workload,
            self.input_queue,
            state.optimizer_state,
            state.model_params,
            state.model_state,
            self.hyperparameters,
            state.global_step,
            data_select_rng,
        )
        kwargs["batch"], kwargs["rng"], kwargs["global_step"] = batch, update_rng, state.global_step
        kwargs["current_param_container"], kwargs["model_state"] = state.model_params, state.model_state
        kwargs["optimizer_state"] = state.optimizer_state
        try:
            state.optimizer_state, state.model_params, state.model_state = self.update_params(**kwargs)
        except spec.TrainingCompleteError:
            ts["training_complete"] = True
        self.fw.wait((state.optimizer_state, state.model_params, state.model_state))  # JAX: dispatch is async
        state.global_step += 1
        if self.config.max_global_steps is not None and state.global_step >= self.config.max_global_steps:
            ts["training_complete"] = True
        step_end_time = get_time()
        ts["accumulated_submission_time"] += step_end_time - ts["last_step_end_time"]
        ts["is_time_remaining"] = ts["accumulated_submission_time"] < self.budget
        kwargs.update(_STEP_ENTRIES)  # untimed: no batch or replaced state kept alive through an eval
        return step_end_time

    def _eval_point(self, state: TrialState, prep_eval_rng, eval_rng, start_time: float) -> int | None:
        """An eval is due: prepare_for_eval (timed), the parameters checked, then, while budget remains, the
        untimed eval and its record. Returns the step if a parameter or the eval's training loss is not finite."""
        ts = state.train_state
        if self.prepare_for_eval is not None:
            start = get_time()
            state.optimizer_state, state.model_params, state.model_state = self.prepare_for_eval(
                **self._api_kwargs(state, prep_eval_rng)
            )
            self.fw.wait((state.optimizer_state, state.model_params, state.model_state))
            ts["accumulated_submission_time"] += get_time() - start
        if self._diverged(state):
            return state.global_step
        ts["is_time_remaining"] = ts["accumulated_submission_time"] < self.budget
        if not ts["is_time_remaining"]:
            return None
        first_crossing = not ts["validation_goal_reached"]
        result = _evaluate(
            self.fw,
            self.workload,
            state.model_params,
            state.model_state,
            eval_rng,
            self.config,
            self.eval_batch_size,
            state.global_step,
            ts,
            start_time,
        )
        if result is None:
            return None
        diverged = not math.isfinite(result.get("train/loss", 0.0))
        state.eval_results.append((state.global_step, result))
        self.progress.evaluated(
            state.global_step, ts["accumulated_submission_time"], result.get(f"validation/{self.metric}")
        )
        if self.refiner is not None:
            self._refine(state, result, eval_rng, first_crossing and ts["validation_goal_reached"])
        self.recorder.evaluated(self.workload, state, result, eval_rng, diverged)
        return state.global_step if diverged else None

    def _refine(self, state: TrialState, result: dict, eval_rng, first_crossing: bool) -> None:
        """After a grid eval: the refiner's turn (runner/refine.py), evaluating its copies as the grid evaluates."""

        def evaluate(params, model_state, step):
            return _eval_model(
                self.fw, self.workload, params, model_state, eval_rng, self.config, self.eval_batch_size, step
            )

        crossing = self.refiner.evaluated(state, result["score"], first_crossing, evaluate)
        if crossing is not None:
            state.refined = crossing
            self.recorder.refined(crossing)
            state.train_state["last_eval_time"] = get_time()  # a full period of training before the next eval

    def _api_kwargs(self, state: TrialState, rng) -> dict:
        """The keyword arguments update_params and prepare_for_eval share, under AlgoPerf's names."""
        return {
            "workload": self.workload,
            "current_param_container": state.model_params,
            "current_params_types": self.workload.model_params_types,
            "model_state": state.model_state,
            "hyperparameters": self.hyperparameters,
            "loss_type": self.workload.loss_type,
            "optimizer_state": state.optimizer_state,
            "eval_results": state.eval_results,
            "global_step": state.global_step,
            "rng": rng,
        }

    def result(self, state: TrialState, trial_dir: str | None, diverged_at: int | None) -> TrialResult:
        first_hit = _first_hit(state.eval_results, self.workload)
        last = state.eval_results[-1][1].get(f"validation/{self.metric}") if state.eval_results else None
        ts = state.train_state
        return TrialResult(
            trial_dir=trial_dir,
            global_step=state.global_step,
            submission_time=ts["accumulated_submission_time"],
            budget_sec=self.budget,
            metric=self.metric,
            target=self.workload.validation_target_value,
            reached_validation=ts["validation_goal_reached"],
            reached_test=ts["test_goal_reached"],
            step_to_target=first_hit[0] if first_hit else None,
            time_to_target=first_hit[1] if first_hit else None,
            last_validation=last,
            eval_results=state.eval_results,
            train_state=dict(ts),
            diverged_at_step=diverged_at,
            diverged_reason=self.diverged_reason,
            refined_step_to_target=state.refined.step if state.refined else None,
            refined_time_to_target=state.refined.time if state.refined else None,
            test_target=getattr(self.workload, "test_target_value", None),
        )


def _evaluate(
    fw,
    workload,
    model_params,
    model_state,
    eval_rng,
    config,
    eval_batch_size,
    global_step,
    train_state,
    global_start_time,
) -> dict | None:
    """Untimed evaluation; updates the goal flags and the eval clock. None if the accelerator ran out of memory."""
    eval_start_time = get_time()
    result = _eval_model(fw, workload, model_params, model_state, eval_rng, config, eval_batch_size, global_step)
    if result is None:
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


def _eval_model(fw, workload, model_params, model_state, eval_rng, config, eval_batch_size, global_step):
    """The workload's eval_model under the runner's arguments; None if the accelerator ran out of memory."""
    model_params, model_state = fw.layout.for_eval(model_params, model_state)
    try:
        return workload.eval_model(
            eval_batch_size,
            model_params,
            model_state,
            eval_rng,
            config.data_dir,
            config.imagenet_v2_data_dir,
            global_step,
        )
    except Exception as e:
        if not fw.is_out_of_memory(e):
            raise
        log.warning("out of memory during the eval at step %d; skipping this eval", global_step)
        fw.free_memory()
        return None


def _first_hit(eval_results, workload) -> tuple[int, float] | None:
    """(step, submission time) of the first eval past the validation target, under the workload's own rule."""
    for step, result in eval_results:
        if workload.has_reached_validation_target(result):
            return step, result["score"]
    return None
