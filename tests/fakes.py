"""A tiny in-memory workload and submission whose evals and updates sleep on request: for clock tests."""

import time
import types

import torch

from algoperf import spec
from runner.loading import Submission


class SleepyWorkload(spec.Workload):
    """Two-class toy problem. Validation/test accuracy is 1.0 from ``reach_at_step`` on, else 0.0."""

    target_metric_name = "accuracy"
    validation_target_value = 0.5
    test_target_value = 0.5
    loss_type = spec.LossType.SOFTMAX_CROSS_ENTROPY
    num_train_examples = 64
    eval_batch_size = 8
    num_eval_train_examples = 8
    num_validation_examples = 8
    num_test_examples = 8
    train_mean = 0.0
    train_stddev = 1.0
    step_hint = 100
    max_allowed_runtime_sec = 60.0  # instance values set in __init__
    eval_period_time_sec = 0.0

    def __init__(self, budget=60.0, eval_period=0.0, eval_sleep=0.0, reach_at_step=10**9, test_reach_at_step=None):
        super().__init__()
        self.max_allowed_runtime_sec = budget
        self.eval_period_time_sec = eval_period
        self.eval_sleep = eval_sleep
        self.reach_at_step = reach_at_step
        self.test_reach_at_step = reach_at_step if test_reach_at_step is None else test_reach_at_step
        self.eval_calls = []

    def has_reached_validation_target(self, r):
        return r["validation/accuracy"] > self.validation_target_value

    def has_reached_test_target(self, r):
        return r["test/accuracy"] > self.test_target_value

    def _build_input_queue(
        self, data_rng, split, data_dir, global_batch_size, cache=None, repeat_final_dataset=None, num_batches=None
    ):
        gen = torch.Generator().manual_seed(int(data_rng[0]))
        while True:
            x = torch.randn(global_batch_size, 2, generator=gen)
            yield {"inputs": x, "targets": (x[:, 0] > 0).long()}

    def init_model_fn(self, rng):
        torch.manual_seed(int(rng[0]))
        model = torch.nn.Linear(2, 2)
        self._param_shapes = {n: spec.ShapeTuple(p.shape) for n, p in model.named_parameters()}
        self._param_types = {"weight": spec.ParameterType.WEIGHT, "bias": spec.ParameterType.BIAS}
        return model, None

    def is_output_params(self, key):
        return True

    def model_fn(
        self,
        params,
        augmented_and_preprocessed_input_batch,
        model_state,
        mode,
        rng,
        update_batch_norm,
        dropout_rate=0.0,
    ):
        return params(augmented_and_preprocessed_input_batch["inputs"]), model_state

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing=0.0):
        per = torch.nn.functional.cross_entropy(logits_batch, label_batch, reduction="none")
        return {"summed": per.sum(), "n_valid_examples": torch.tensor(len(per)), "per_example": per}

    def _eval_model_on_split(
        self, split, num_examples, global_batch_size, params, model_state, rng, data_dir, global_step=0
    ):
        if split == "validation":
            self.eval_calls.append(global_step)
            time.sleep(self.eval_sleep)
        reach = self.test_reach_at_step if split == "test" else self.reach_at_step
        return {"accuracy": 1.0 if global_step >= reach else 0.0}


def make_submission(
    update_sleep=0.0,
    prepare_sleep=None,
    complete_at_step=None,
    with_train_state=False,
    seen_train_states=None,
    crash_at_step=None,
) -> Submission:
    """An SGD submission; optional sleeps, TrainingCompleteError, a crash, and a train_state parameter."""
    module = types.ModuleType("sleepy_submission")

    def get_batch_size(workload_name):
        return 8

    def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
        return {"optimizer": torch.optim.SGD(model_params.parameters(), lr=0.1)}

    def _update(workload, current_param_container, model_state, batch, optimizer_state, global_step):
        if crash_at_step is not None and global_step == crash_at_step:
            raise KeyboardInterrupt("simulated preemption")
        if complete_at_step is not None and global_step == complete_at_step:
            raise spec.TrainingCompleteError()
        opt = optimizer_state["optimizer"]
        opt.zero_grad()
        logits, _ = workload.model_fn(
            current_param_container, batch, model_state, spec.ForwardPassMode.TRAIN, None, True
        )
        workload.loss_fn(batch["targets"], logits)["summed"].backward()
        opt.step()
        time.sleep(update_sleep)
        return optimizer_state, current_param_container, model_state

    if with_train_state:

        def update_params(
            workload,
            current_param_container,
            current_params_types,
            model_state,
            hyperparameters,
            batch,
            loss_type,
            optimizer_state,
            eval_results,
            global_step,
            rng,
            train_state=None,
        ):
            seen_train_states.append(train_state)
            return _update(workload, current_param_container, model_state, batch, optimizer_state, global_step)
    else:

        def update_params(
            workload,
            current_param_container,
            current_params_types,
            model_state,
            hyperparameters,
            batch,
            loss_type,
            optimizer_state,
            eval_results,
            global_step,
            rng,
        ):
            return _update(workload, current_param_container, model_state, batch, optimizer_state, global_step)

    def data_selection(
        workload, input_queue, optimizer_state, current_param_container, model_state, hyperparameters, global_step, rng
    ):
        return next(input_queue)

    module.get_batch_size = get_batch_size
    module.init_optimizer_state = init_optimizer_state
    module.update_params = update_params
    module.data_selection = data_selection
    if prepare_sleep is not None:

        def prepare_for_eval(
            workload,
            current_param_container,
            current_params_types,
            model_state,
            hyperparameters,
            loss_type,
            optimizer_state,
            eval_results,
            global_step,
            rng,
        ):
            time.sleep(prepare_sleep)
            return optimizer_state, current_param_container, model_state

        module.prepare_for_eval = prepare_for_eval
    return Submission(module=module, path="/fake/sleepy/submission.py")
