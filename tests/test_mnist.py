"""The mnist workload on the real data: loader, pipeline, model, loss by hand, eval, one NAdamW step."""

import math

import numpy as np
import pytest
import torch

from algoperf import spec
from compat import prng
from submissions.nadamw import submission as nadamw
from workloads import arrays, sources
from workloads.mnist import data
from workloads.registry import WorkloadError, get_workload

# The standard MNIST test set's class counts (digits 0..9).
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def workload():
    return get_workload("mnist")


def test_loader_reads_the_real_splits():
    raw = data.load()
    assert raw["train_x"].shape == (50_000, 784) and raw["train_x"].dtype == np.uint8
    assert raw["validation_x"].shape == (10_000, 784) and raw["test_x"].shape == (10_000, 784)
    assert raw["train_y"][:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.bincount(raw["test_y"]).tolist() == MNIST_TEST_COUNTS
    assert raw["train_x"].max() == 255 and raw["train_x"].min() == 0


def test_loader_prefers_data_dir_and_explains_how_to_get_data(tmp_path, monkeypatch):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / data.FILENAME).symlink_to(data.find())
    assert data.find(str(tmp_path)) == str(tmp_path / "mnist" / data.FILENAME)
    monkeypatch.setattr(sources, "package_dir", lambda name: None)
    monkeypatch.setattr(data, "SYSTEM_PATHS", ())
    with pytest.raises(WorkloadError, match="make data"):
        data.find(str(tmp_path / "empty"))


def test_train_batches_are_epoch_permutations():
    stream = arrays.train_indices(10, batch_size=3, seed=0)
    epoch1 = np.concatenate([next(stream) for _ in range(3)])  # 9 of 10; the ragged tail is dropped
    epoch2 = np.concatenate([next(stream) for _ in range(3)])
    assert len(set(epoch1.tolist())) == 9 and len(set(epoch2.tolist())) == 9
    again = arrays.train_indices(10, batch_size=3, seed=0)
    assert np.array_equal(np.concatenate([next(again) for _ in range(3)]), epoch1)


def test_model_shapes_and_types(workload):
    model, state = workload.init_model_fn(prng.PRNGKey(0))
    assert state is None
    shapes = {k: v.shape_tuple for k, v in workload.param_shapes.items()}
    assert shapes == {
        "net.layer1.weight": (128, 784),
        "net.layer1.bias": (128,),
        "net.layer2.weight": (10, 128),
        "net.layer2.bias": (10,),
    }
    types = workload.model_params_types
    assert (
        types["net.layer1.weight"] == spec.ParameterType.WEIGHT and types["net.layer2.bias"] == spec.ParameterType.BIAS
    )
    assert workload.is_output_params("net.layer2.weight") and not workload.is_output_params("net.layer1.weight")
    same, _ = workload.init_model_fn(prng.PRNGKey(0))
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), same.parameters(), strict=True))


def test_loss_fn_by_hand(workload):
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([0, 2])
    eps = 0.3
    # smoothed CE: -(1 - eps) log p_y - eps / K * sum_k log p_k
    logp = [
        [2 - math.log(math.e**2 + 2), -math.log(math.e**2 + 2), -math.log(math.e**2 + 2)],
        [-math.log(math.e + 2), 1 - math.log(math.e + 2), -math.log(math.e + 2)],
    ]
    expected = [-(1 - eps) * lp[y] - eps / 3 * sum(lp) for lp, y in zip(logp, [0, 2], strict=True)]
    out = workload.loss_fn(labels, logits, label_smoothing=eps)
    torch.testing.assert_close(out["per_example"], torch.tensor(expected))
    assert out["summed"].item() == pytest.approx(sum(expected)) and out["n_valid_examples"].item() == 2
    masked = workload.loss_fn(labels, logits, mask_batch=torch.tensor([1.0, 0.0]), label_smoothing=eps)
    assert masked["summed"].item() == pytest.approx(expected[0]) and masked["n_valid_examples"].item() == 1


def test_eval_metrics_on_a_tiny_split(workload):
    model, _ = workload.init_model_fn(prng.PRNGKey(1))
    metrics = workload._eval_model_on_split("validation", 100, 32, model, None, None, "")
    val = workload.split_arrays("validation", "")
    with torch.no_grad():
        model.eval()
        logits = model(val["inputs"][:100])
    assert metrics["accuracy"] == pytest.approx((logits.argmax(1) == val["targets"][:100]).float().mean().item())
    expected_loss = torch.nn.functional.cross_entropy(logits, val["targets"][:100]).item()
    assert metrics["loss"] == pytest.approx(expected_loss, rel=1e-5)


def test_one_nadamw_step(workload):
    model, state = workload.init_model_fn(prng.PRNGKey(0))
    opt_state = nadamw.init_optimizer_state(workload, model, state, None, None)
    queue = workload._build_input_queue(prng.PRNGKey(0), "train", "", 128)
    before = [p.detach().clone() for p in model.parameters()]
    batch = nadamw.data_selection(workload, queue, opt_state, model, state, None, 0, None)
    # step 0 has lr 0 (linear warmup from zero, as AlgoPerf's schedule); take step 1
    for step in (0, 1):
        opt_state, model, state = nadamw.update_params(
            workload,
            model,
            workload.model_params_types,
            state,
            None,
            batch,
            workload.loss_type,
            opt_state,
            [],
            step,
            None,
        )
    moved = [not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True)]
    assert all(moved) and all(torch.isfinite(p).all() for p in model.parameters())
