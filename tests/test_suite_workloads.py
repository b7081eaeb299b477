"""Every workload of the CPU suite against the AlgoPerf contract: real data through the input pipeline, model
output shapes, parameter types, output-layer keys, deterministic init, evaluation keys, one NAdamW step."""

import math

import pytest
import torch

from algoperf import spec
from compat import prng
from submissions.nadamw import submission as nadamw
from tuning import search_space
from workloads.registry import CPU_SUITE, get_workload

OUTPUT_SHAPES = {  # per example
    "fashion_resnet": (10,),
    "fashion_vit": (10,),
    "stdlib_lm": (64, 256),
    "flights_dlrm": (),
    "qm9_gnn": (12,),
    "mri_unet": (64, 64),
}


@pytest.fixture(scope="module", params=CPU_SUITE)
def loaded(request):
    workload = get_workload(request.param)
    model, state = workload.init_model_fn(prng.PRNGKey(0))
    queue = workload._build_input_queue(prng.PRNGKey(1), "train", "", 8)
    return request.param, workload, model, state, next(queue)


def forward(workload, model, state, batch, mode=spec.ForwardPassMode.EVAL):
    return workload.model_fn(model, batch, state, mode, prng.PRNGKey(2), update_batch_norm=False)[0]


def test_model_output_shape_and_finite_loss(loaded):
    name, workload, model, state, batch = loaded
    logits = forward(workload, model, state, batch)
    assert tuple(logits.shape) == (8, *OUTPUT_SHAPES[name])
    loss = workload.loss_fn(batch["targets"], logits)
    assert torch.isfinite(loss["summed"]) and loss["per_example"].shape[0] == 8


def test_param_types_cover_every_parameter_and_output_layer_is_last(loaded):
    _, workload, model, _, _ = loaded
    names = [n for n, _ in model.named_parameters()]
    assert list(workload.param_shapes) == names and set(workload.model_params_types) == set(names)
    assert all(isinstance(t, spec.ParameterType) for t in workload.model_params_types.values())
    outputs = [n for n in names if workload.is_output_params(n)]
    assert outputs and outputs == names[-len(outputs) :], "output params are the model's last layer"


def test_init_is_deterministic_in_the_seed(loaded):
    name, workload, model, _, _ = loaded
    again, _ = get_workload(name).init_model_fn(prng.PRNGKey(0))
    other, _ = get_workload(name).init_model_fn(prng.PRNGKey(5))
    pairs = list(
        zip(model.state_dict().values(), again.state_dict().values(), other.state_dict().values(), strict=True)
    )
    assert all(torch.equal(a, b) for a, b, _ in pairs)
    assert not all(torch.equal(a, c) for a, _, c in pairs if a.is_floating_point())


def test_eval_reports_every_split_and_metric(loaded):
    name, workload, model, state, _ = loaded
    for attr in ("num_eval_train_examples", "num_validation_examples", "num_test_examples"):
        setattr(workload, attr, 16)  # on this instance only: a tiny leading subset of each split
    result = workload.eval_model(2, model, state, prng.PRNGKey(3), "", "", 0)
    metric = workload.target_metric_name
    for split in ("train", "validation", "test"):
        assert math.isfinite(result[f"{split}/{metric}"])
    assert result["validation/num_examples"] == 16
    assert isinstance(workload.has_reached_validation_target(result), bool)


def test_one_nadamw_step_lowers_the_batch_loss(loaded):
    name, workload, model, state, batch = loaded
    hp = search_space.make_hyperparameters(
        {
            **search_space.load(nadamw.__file__.replace("submission.py", "tuning_search_space.json")).points(1)[0],
            "learning_rate": 1e-3,
            "warmup_factor": 0.0,
        }
    )
    model, _ = get_workload(name).init_model_fn(prng.PRNGKey(0))
    before = [p.detach().clone() for p in model.parameters()]
    opt = nadamw.init_optimizer_state(workload, model, state, hp, prng.PRNGKey(4))
    loss0 = workload.loss_fn(batch["targets"], forward(workload, model, state, batch))["summed"].item()
    for step in range(3):
        opt, model, state = nadamw.update_params(
            workload,
            model,
            workload.model_params_types,
            state,
            hp,
            batch,
            workload.loss_type,
            opt,
            [],
            step,
            prng.PRNGKey(5),
        )
    loss3 = workload.loss_fn(batch["targets"], forward(workload, model, state, batch))["summed"].item()
    changed = [not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)]
    assert sum(changed) >= len(changed) - 1, "every parameter with a gradient moves"  # DLRM: unseen table rows
    assert loss3 < loss0
