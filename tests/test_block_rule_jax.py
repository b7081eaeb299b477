"""The block-size rule in the JAX glue: the jaxpr's FLOP count against closed forms and against torch's counter on
every JAX workload's first batch, the same block size as the PyTorch glue picks, and a checkpoint of a state sized
by the rule loading into the template a resumed trial builds."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from submissions import flops_jax


def _count(fn, *args) -> float:
    return flops_jax.jaxpr_flops(jax.make_jaxpr(fn)(*args).jaxpr)


def _zeros(*shape):
    return jax.ShapeDtypeStruct(shape, jnp.float32)


def test_a_matrix_product_costs_two_flops_per_multiply_add():
    assert _count(jnp.matmul, _zeros(5, 7), _zeros(7, 3)) == 2 * 5 * 7 * 3
    batched = _count(lambda a, b: jnp.einsum("bik,bkj->bij", a, b), _zeros(4, 5, 7), _zeros(4, 7, 3))
    assert batched == 4 * 2 * 5 * 7 * 3


def test_a_convolution_costs_two_flops_per_output_and_kernel_entry():
    """(N, C_in, H, W) * (C_out, C_in / groups, kh, kw), valid padding: 2 N C_out H' W' (C_in / groups) kh kw."""
    for groups in (1, 2):
        x, w = _zeros(2, 4, 9, 8), _zeros(6, 4 // groups, 3, 2)
        conv = functools.partial(jax.lax.conv_general_dilated, window_strides=(1, 1), padding="VALID")
        assert (
            _count(functools.partial(conv, feature_group_count=groups), x, w)
            == 2 * 2 * 6 * 7 * 7 * (4 // groups) * 3 * 2
        )


def test_a_gradient_counts_the_backward_products_torch_autograd_computes():
    """y = relu(x W1) W2, gradients of the weights only: forward 2 products; backward W2's gradient, the hidden
    gradient and W1's, but not the input's (it needs none), as torch's autograd."""
    n, a, b, c = 8, 5, 6, 3

    def loss(ws, x):
        return jnp.sum(jax.nn.relu(x @ ws[0]) @ ws[1])

    forward = 2 * n * a * b + 2 * n * b * c
    backward = 2 * n * b * c + 2 * n * c * b + 2 * n * a * b
    assert _count(jax.grad(loss), (_zeros(a, b), _zeros(b, c)), _zeros(n, a)) == forward + backward


def test_a_strided_convolution_and_its_gradients_count_as_torch_counts_them():
    """Stride 2 over an input its stride divides: the input gradient is a convolution over the output gradient
    dilated by the stride, whose inserted zeros count nothing; forward, input and weight gradients as torch's."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x, w = torch.zeros(2, 3, 8, 8, requires_grad=True), torch.zeros(5, 3, 2, 2, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.conv2d(x, w, stride=2).sum().backward()

    def loss(x, w):
        return jnp.sum(jax.lax.conv_general_dilated(x, w, (2, 2), "VALID"))

    assert _count(jax.grad(loss, argnums=(0, 1)), _zeros(2, 3, 8, 8), _zeros(5, 3, 2, 2)) == counter.get_total_flops()


def test_an_equation_without_outputs_counts_nothing():
    assert _count(lambda m: (jax.debug.print("{}", m), m @ m)[1], _zeros(3, 3)) == 2 * 3**3


def test_inner_jaxprs_count_a_scan_by_its_length_and_a_cond_by_its_costlier_branch():
    m = _zeros(4, 4)
    assert _count(lambda m: jax.lax.scan(lambda h, _: (h @ h, None), m, None, length=5)[0], m) == 5 * 2 * 4**3
    branch = lambda p, m: jax.lax.cond(p, lambda m: m @ m @ m, lambda m: m, m)  # noqa: E731
    assert _count(branch, jax.ShapeDtypeStruct((), jnp.bool_), m) == 2 * 2 * 4**3
    assert _count(jax.jit(lambda m: m @ m), m) == 2 * 4**3  # inside pjit


def test_a_workload_without_batch_shapes_gets_one_line():
    class Foreign:
        pass

    with pytest.raises(ValueError, match="train_batch_inputs.*drop block_budget"):
        flops_jax.training_pass_flops(Foreign(), {}, None, 0.0)


@pytest.mark.integration
@pytest.mark.parametrize(
    "name", ["mnist", "flights_dlrm", pytest.param("fashion_vit", marks=pytest.mark.slow), "stdlib_lm"]
)
def test_the_jaxpr_count_is_torch_counters_on_the_first_batch(name):
    """Both frameworks' twins of a workload, the first training batch: the PyTorch glue's count (its counter,
    CPU attention included) and the JAX glue's count from the jaxpr are the same number."""
    from compat import prng
    from submissions import glue, recipe
    from workloads.registry import get_workload

    size = recipe.batch_size(name)
    torch_workload, jax_workload = get_workload(name), get_workload(name, "jax")
    model, state = torch_workload.init_model_fn(prng.PRNGKey(0))
    batch = next(torch_workload._build_input_queue(prng.PRNGKey(0), "train", None, size))
    with glue.flop_counter_mode() as counter:
        glue._forward_backward(torch_workload, model, state, batch, prng.PRNGKey(1), glue.TrainingHParams())
    jax_workload._build_input_queue(jax.random.PRNGKey(0), "train", None, size)
    params, jax_state = jax_workload.init_model_fn(jax.random.PRNGKey(0))
    counted = flops_jax.training_pass_flops(jax_workload, params, jax_state, glue.TrainingHParams().dropout_rate)
    assert counted == counter.get_total_flops() > 0


def _leaf_shapes(tree) -> list:
    return [np.shape(x) for x in jax.tree.leaves(tree) if hasattr(x, "shape")]


@pytest.mark.integration
def test_both_glues_pick_the_same_block_and_a_resumed_jax_trial_loads_its_state(tmp_path):
    """Shampoo on mnist at budgets from generous to tight: the JAX state is the state built at the block the
    PyTorch glue picks after its first step; a JAX checkpoint of it after two steps loads into the template a
    resumed trial builds (init_optimizer_state again) and the next step matches the uninterrupted one."""
    from compat import prng
    from runner import checkpoint_jax
    from tests.test_submissions_jax import jax_submission, point, torch_submission
    from workloads.registry import get_workload

    jax_module, torch_module = jax_submission("shampoo"), torch_submission("shampoo")
    forced = dict(start_preconditioning_step=1, precondition_frequency=1)
    torch_workload, jax_workload = get_workload("mnist"), get_workload("mnist", "jax")
    torch_batch = next(torch_workload._build_input_queue(prng.PRNGKey(0), "train", None, 128))
    jax_batches = jax_workload._build_input_queue(jax.random.PRNGKey(0), "train", None, 128)
    params, model_state = jax_workload.init_model_fn(jax.random.PRNGKey(0))
    picked = {}
    for budget in (200.0, 20.0, 5.0, 0.5):  # at precondition_frequency 1: 1024, 256, 64, 32
        hp = point("shampoo", block_budget=budget, **forced)
        model, state = torch_workload.init_model_fn(prng.PRNGKey(0))
        opt = torch_module.init_optimizer_state(torch_workload, model, state, hp, prng.PRNGKey(0))
        opt = torch_module.update_params(
            torch_workload, model, None, state, hp, torch_batch, None, opt, [], 0, prng.PRNGKey(1)
        )[0]
        picked[budget] = opt["optimizer"].optimizers["kron"].config.max_preconditioner_dim
        sized = jax_module.init_optimizer_state(jax_workload, params, model_state, hp, None)[0]
        built = jax_module.init_optimizer_state(
            jax_workload, params, model_state, point("shampoo", max_preconditioner_dim=picked[budget], **forced), None
        )[0]
        assert _leaf_shapes(sized) == _leaf_shapes(built), budget
    assert picked == {200.0: 1024, 20.0: 256, 5.0: 64, 0.5: 32}

    hp = point("shampoo", block_budget=5.0, **forced)
    state = jax_module.init_optimizer_state(jax_workload, params, model_state, hp, None)
    batches = [next(jax_batches) for _ in range(3)]

    def step(state, params, i):
        return jax_module.update_params(
            jax_workload, params, None, model_state, hp, batches[i], None, state, [], i, jax.random.PRNGKey(i)
        )[:2]

    state, p = step(*step(state, params, 0), 1)
    fields = dict(identity={}, train_state={}, eval_results=[], global_step=2, preemption_count=0)
    checkpoint_jax.write(
        str(tmp_path),
        checkpoint_jax.snapshot(str(tmp_path), model_params=p, model_state=None, optimizer_state=state[0], **fields),
    )
    template = jax_module.init_optimizer_state(jax_workload, p, model_state, hp, None)  # params were donated
    restored = checkpoint_jax.restore(str(tmp_path), {}, p, template[0])
    resumed = step((restored["optimizer_state"], template[1]), restored["model_params"], 2)[1]
    straight = step(state, p, 2)[1]
    for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(straight), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert math.isfinite(float(jax.tree.leaves(straight)[0].sum()))
