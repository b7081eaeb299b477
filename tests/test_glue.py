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


def _batch_flops(workload, model, batch) -> float:
    """The forward and backward FLOPs of one training batch, counted here independently of the glue."""
    from torch.utils.flop_counter import FlopCounterMode

    model.zero_grad()
    with FlopCounterMode(display=False) as counter:
        logits = model(batch["inputs"])
        F.cross_entropy(logits, batch["targets"]).backward()
    model.zero_grad()
    return counter.get_total_flops()


def _shampoo(**options):
    import precond

    base = dict(precondition_frequency=1, start_preconditioning_step=1, max_preconditioner_dim=1024)
    return glue.kronecker(precond.Shampoo, **{**base, **options})


@pytest.mark.integration
def test_block_rule_sizes_the_blocks_from_the_first_batch_and_steps_as_if_built_so(mnist):
    """A budget chosen so that block 64 is just within it: after the first step the Kronecker optimizer has
    max_preconditioner_dim 64, the scheduled learning rate, and the same parameters, after two steps, as an
    optimizer built at 64 from the start; its state saved and loaded into a fresh one (built at 1024) continues
    the same."""
    from precond import flops
    from precond.config import KronConfig

    workload, model, batch = mnist
    hp = glue.TrainingHParams(label_smoothing=0.0, warmup_factor=0.0)
    shapes = [(128, 784), (10, 128)]
    cfg = KronConfig(variant="shampoo", grafting="adam", precondition_frequency=1, max_preconditioner_dim=1024)
    modelled = {d: flops.steady_flops(cfg, flops.preconditioned_blocks(shapes, d)) for d in (64, 128)}
    assert modelled[64] < modelled[128]
    budget = modelled[64] / _batch_flops(workload, model, batch) * (1 + 1e-9)
    start = [p.detach().clone() for p in model.parameters()]
    runs = {}
    for name, build in (("rule", _shampoo(block_budget=budget)), ("built at 64", _shampoo(max_preconditioner_dim=64))):
        with torch.no_grad():
            for p, s in zip(model.parameters(), start, strict=True):
                p.copy_(s)
        opt = build(model, workload.model_params_types, hp, None)
        glue.set_lr(opt, 0.01)
        glue.train_step(workload, model, None, batch, None, opt, hp)
        assert opt.optimizers["kron"].config.max_preconditioner_dim == 64
        assert opt.optimizers["kron"].param_groups[0]["lr"] == 0.01
        if name == "rule":
            resumed = build(model, workload.model_params_types, hp, None)
            assert resumed.optimizers["kron"].config.max_preconditioner_dim == 1024
            resumed.load_state_dict(opt.state_dict())
            assert resumed.optimizers["kron"].config.max_preconditioner_dim == 64
            assert not resumed.awaits_batch_flops
            glue.set_lr(resumed, 0.01)
            opt = resumed
        glue.train_step(workload, model, None, batch, None, opt, hp)
        runs[name] = [p.detach().clone() for p in model.parameters()]
    for a, b in zip(runs["rule"], runs["built at 64"], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("bad", [0, -0.5, float("nan"), "0.25", True])
def test_block_budget_must_be_a_positive_number(bad):
    with pytest.raises(ValueError, match="block_budget"):
        _shampoo(block_budget=bad)


def test_block_budget_is_a_hyperparameter_a_point_may_set_in_either_glue():
    from submissions import glue_jax, recipe

    assert recipe.hyperparameters(_shampoo(block_budget=0.25))["block_budget"].default == 0.25
    declared = recipe.hyperparameters(_shampoo())["block_budget"]
    assert declared.default is None and not declared.admits(0.0) and declared.admits(0.1)
    point = collections.namedtuple("Point", ["block_budget"])(0.5)
    assert recipe.KronFactory(options={"block_budget": 0.25}).budget_for(point) == 0.5
    import precond_jax

    assert (
        recipe.hyperparameters(glue_jax.kronecker(precond_jax.shampoo, block_budget=0.25))["block_budget"].default
        == 0.25
    )


def test_block_budget_on_a_variant_without_a_flop_model_is_one_line(mnist):
    import precond

    workload, model, _ = mnist
    build = glue.kronecker(precond.KrADagrad, block_budget=0.25)
    with pytest.raises(ValueError, match="kradagrad has no FLOP model"):
        build(model, workload.model_params_types, glue.TrainingHParams(), None)


def test_block_rule_state_loads_only_where_it_fits(mnist):
    """A state saved without the rule loads into a ruled optimizer as it is (no resize on the next step, which
    would drop the loaded factors); a ruled state into an unruled one is one line; no FLOPs counted is one line."""
    workload, model, _ = mnist
    hp = glue.TrainingHParams()
    plain = _shampoo()(model, workload.model_params_types, hp, None)
    ruled = _shampoo(block_budget=0.25)(model, workload.model_params_types, hp, None)
    assert ruled.awaits_batch_flops and "block_rule" not in plain.state_dict()
    ruled.load_state_dict(plain.state_dict())
    assert not ruled.awaits_batch_flops
    with pytest.raises(ValueError, match="saved with the block-size rule"):
        plain.load_state_dict(_shampoo(block_budget=0.25)(model, workload.model_params_types, hp, None).state_dict())
    with pytest.raises(ValueError, match="counted no FLOPs"):
        _shampoo(block_budget=0.25)(model, workload.model_params_types, hp, None).set_blocks(0.0)
