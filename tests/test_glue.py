"""The submission glue: schedule closed forms, hyperparameter defaults, and one train step by hand."""

import collections
import math

import pytest
import torch
import torch.nn.functional as F

from submissions import glue
from workloads.registry import get_workload


def test_warmup_cosine_closed_form():
    f = lambda s: glue.warmup_cosine(s, warmup_steps=10, total_steps=110)
    assert [f(0), f(5), f(10)] == [0.0, 0.5, 1.0]
    assert f(60) == pytest.approx(0.5)  # halfway through the cosine
    assert f(35) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert f(110) == 0.0 and f(500) == 0.0  # zero at and after step_hint, never back up


def test_resolve_fills_missing_fields_and_self_tuning_uses_defaults():
    defaults = glue.TrainingHParams(learning_rate=0.5, grad_clip=1.0)
    hp_type = collections.namedtuple("Hyperparameters", ["learning_rate", "beta2"])
    hp = glue.TrainingHParams.resolve(hp_type(learning_rate=0.1, beta2=0.9), defaults)
    assert (hp.learning_rate, hp.beta2, hp.grad_clip) == (0.1, 0.9, 1.0)
    assert glue.TrainingHParams.resolve(None, defaults) is defaults
    assert glue.TrainingHParams(one_minus_beta1=0.1, beta2=0.99).betas == (0.9, 0.99)


def test_batch_size_raises_valueerror_for_unknown_workloads():
    assert glue.batch_size("mnist") == 128
    with pytest.raises(ValueError):
        glue.batch_size("no_such_workload")


@pytest.fixture(scope="module")
def mnist():
    workload = get_workload("mnist")
    model, _ = workload.init_model_fn([0, 0])
    batch = next(workload._build_input_queue([0, 0], "train", "", 32))
    return workload, model, batch


@pytest.mark.integration
def test_train_step_applies_label_smoothing_and_clipping(mnist):
    workload, model, batch = mnist
    model.train()
    expected_loss = F.cross_entropy(model(batch["inputs"]), batch["targets"], label_smoothing=0.2)
    expected_loss.backward()
    grad_norm = torch.sqrt(sum((p.grad**2).sum() for p in model.parameters()))
    before = [p.detach().clone() for p in model.parameters()]
    clip = 1e-3
    assert grad_norm > 10 * clip
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    loss, _ = glue.train_step(
        workload, model, None, batch, None, opt, glue.TrainingHParams(label_smoothing=0.2, grad_clip=clip)
    )
    assert loss.item() == pytest.approx(expected_loss.item(), rel=1e-6)
    # SGD with lr 1 moves the parameters by the clipped gradient, whose global norm is the clip value
    step_norm = torch.sqrt(sum(((b - p.detach()) ** 2).sum() for b, p in zip(before, model.parameters(), strict=True)))
    assert step_norm.item() == pytest.approx(clip, rel=1e-3)


def test_train_step_passes_dropout_to_model_fn(mnist):
    workload, model, batch = mnist
    seen = {}
    original = workload.model_fn

    def spy(**kwargs):
        seen["dropout_rate"] = kwargs["dropout_rate"]
        return original(**kwargs)

    workload.model_fn = spy
    try:
        glue.train_step(
            workload,
            model,
            None,
            batch,
            None,
            torch.optim.SGD(model.parameters(), lr=0.0),
            glue.TrainingHParams(dropout_rate=0.3),
        )
    finally:
        del workload.model_fn
    assert seen["dropout_rate"] == 0.3
