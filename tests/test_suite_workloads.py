"""Every workload of the CPU suite against the AlgoPerf contract: real data through the input pipeline, model
output shapes, parameter types, output-layer keys, deterministic init, evaluation keys, one NAdamW step."""

import math

import pytest
import torch

from algoperf import spec
from common import search_space
from compat import prng
from submissions.nadamw import submission as nadamw
from tests.cli_helpers import NADAMW_SPACE
from workloads.registry import CPU_SUITE, get_workload

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

OUTPUT_SHAPES = {  # per example
    "fashion_resnet": (10,),
    "fashion_vit": (10,),
    "stdlib_lm": (64, 256),
    "flights_dlrm": (),
    "qm9_gnn": (12,),
    "mri_unet": (64, 64),
    "bible_mt": (32, 2000),
    "espeak_asr": (80, 29),
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
    shape = OUTPUT_SHAPES[name]
    if name == "bible_mt":  # a batch is cut to its longest target (at most 32 pieces)
        assert batch["targets"].shape[1] <= shape[0]
        shape = (batch["targets"].shape[1], *shape[1:])
    assert tuple(logits.shape) == (8, *shape)
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
            **search_space.load(NADAMW_SPACE).points(1)[0],
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


def tiny_split(workload, n=16):
    """The first ``n`` validation examples as one batch."""
    data = workload.split_arrays("validation", "")
    return workload.make_batch(data, torch.arange(n))


def test_loss_fn_wiring_by_hand():
    """Each workload's loss_fn on outputs whose loss is known in closed form."""
    ln2, ln256 = math.log(2.0), math.log(256.0)
    cases = {
        "fashion_resnet": (torch.tensor([3]), torch.zeros(1, 10), math.log(10.0), 1),
        "stdlib_lm": (torch.tensor([[7, 9]]), torch.zeros(1, 2, 256), 2 * ln256, 2),  # per token
        "flights_dlrm": (torch.tensor([1.0, 0.0]), torch.zeros(2), 2 * ln2, 2),
        "qm9_gnn": (torch.ones(1, 12), torch.zeros(1, 12), ln2, 1),  # the mean over tasks, per molecule
        "mri_unet": (torch.zeros(2, 4, 4), torch.stack([torch.ones(4, 4), -2 * torch.ones(4, 4)]), 3.0, 2),
        "bible_mt": (torch.tensor([[7, 9, 3, 0]]), torch.zeros(1, 4, 2000), 3 * math.log(2000.0), 3),  # PAD 0 skipped
        # CTC, uniform over 29 symbols, 2 frames, label "a": 3 of the 29^2 paths give it; per character.
        "espeak_asr": (torch.tensor([[3, 0]]), torch.zeros(1, 2, 29), 2 * math.log(29.0) - math.log(3.0), 1),
    }
    for name, (labels, outputs, summed, n_valid) in cases.items():
        out = get_workload(name).loss_fn(labels, outputs)
        assert out["summed"].item() == pytest.approx(summed, rel=1e-6), name
        assert out["n_valid_examples"].item() == n_valid, name


@pytest.mark.parametrize("name", CPU_SUITE)
def test_summarize_on_a_tiny_split_with_known_outputs(name):
    workload = get_workload(name)
    batch = tiny_split(workload)
    y = batch["targets"]
    if name.startswith("fashion"):
        perfect = torch.nn.functional.one_hot(y, 10).float() * 10
        assert workload.summarize([(batch, perfect)], 16)["accuracy"] == 1.0
        assert workload.summarize([(batch, -perfect)], 16)["accuracy"] == 0.0
    elif name == "stdlib_lm":
        assert workload.summarize([(batch, torch.zeros(16, 64, 256))], 16)["loss"] == pytest.approx(math.log(256))
    elif name == "flights_dlrm":
        out = workload.summarize([(batch, torch.zeros(16))], 16)
        assert out["loss"] == pytest.approx(math.log(2)) and out["accuracy"] == pytest.approx(1 - y.mean().item())
    elif name == "qm9_gnn":
        assert workload.summarize([(batch, y * 2 - 1)], 16)["mean_average_precision"] == pytest.approx(1.0)
    elif name == "mri_unet":
        out = workload.summarize([(batch, y)], 16)
        assert out["ssim"] == pytest.approx(1.0) and out["loss"] == 0.0
    elif name == "bible_mt":
        perfect = torch.nn.functional.one_hot(y, 2000).float() * 50
        assert workload.summarize([(batch, perfect)], 16)["accuracy"] == 1.0
    elif name == "espeak_asr":  # each label for one frame, then a blank: greedy decoding gives the transcripts
        path = torch.nn.functional.pad(torch.stack([y, torch.zeros_like(y)], -1).flatten(1), (0, 80 - 2 * y.shape[1]))
        out = workload.summarize([(batch, torch.nn.functional.one_hot(path, 29).float() * 50)], 16)
        assert out["wer"] == 0.0


def test_update_batch_norm_false_freezes_running_statistics():
    """AlgoPerf's contract: a TRAIN-mode forward with update_batch_norm=False leaves running stats alone."""
    workload = get_workload("fashion_resnet")
    model, state = workload.init_model_fn(prng.PRNGKey(0))
    batch = tiny_split(workload)
    stats = lambda: [b.clone() for n, b in model.named_buffers() if "running" in n]  # noqa: E731
    before = stats()
    workload.model_fn(model, batch, state, spec.ForwardPassMode.TRAIN, None, update_batch_norm=False)
    assert all(torch.equal(a, b) for a, b in zip(before, stats(), strict=True))
    workload.model_fn(model, batch, state, spec.ForwardPassMode.TRAIN, None, update_batch_norm=True)
    assert not any(torch.equal(a, b) for a, b in zip(before, stats(), strict=True))


@pytest.mark.parametrize("name", CPU_SUITE)
def test_targets_are_met_from_the_right_side(name):
    workload = get_workload(name)
    metric, target = workload.target_metric_name, workload.validation_target_value
    better = 1 if metric in ("accuracy", "mean_average_precision", "ssim", "bleu") else -1
    at = {f"validation/{metric}": target, f"test/{metric}": workload.test_target_value}
    beyond = {k: v + better * 1e-3 for k, v in at.items()}
    assert not workload.has_reached_validation_target(at) and not workload.has_reached_test_target(at)
    assert workload.has_reached_validation_target(beyond) and workload.has_reached_test_target(beyond)


def test_check_data_can_release_what_it_loaded():
    """A campaign's coordinator checks every workload's data but never trains: it must not hold the arrays."""
    from workloads import inmemory as base
    from workloads.mnist.workload import MnistWorkload

    w = MnistWorkload()
    key = w._data_key("")
    base._LOADED.pop(key, None)
    w.check_data("", keep=False)
    assert key not in base._LOADED and w._splits is None
    w.check_data("")
    assert key in base._LOADED and w.split_arrays("train", "") is base._LOADED[key]["train"]
