"""The FLOPs of a JAX training pass, for the JAX glue's block-size rule (``precond.flops.block_for_budget``).

Counted as the PyTorch glue counts them (``glue.flop_counter_mode``): 2 per multiply-add of every matrix product
(``dot_general``) and convolution (``conv_general_dilated``), nothing else, walking the jaxpr of the gradient so
nothing runs. The count is of the trial's first batch, as the PyTorch glue's is, but made before training: AlgoPerf
restores a JAX optimizer state into the template ``init_optimizer_state`` builds (flax's ``restore_checkpoint`` with
a target, kronbench's ``runner.checkpoint_jax`` alike), so the blocks must be sized there for a resumed trial to
load. The shapes are the workload's ``train_batch_inputs`` (kronbench's JAX workloads, once the training queue is
built, as both runners build it before the optimizer); ``tests/test_block_rule_jax.py`` checks the count against
torch's.
"""

import math

import jax
import jax.numpy as jnp

import compat  # noqa: F401  (so `from algoperf import spec` resolves)
from algoperf import spec

SCANNED = "scan"  # its body runs ``length`` times
BRANCHING = "cond"  # one of its branches runs: the costliest is counted


def _inner_jaxprs(value) -> list:
    """The jaxprs an equation's parameter holds (pjit's, scan's, remat's body, cond's branches, ...)."""
    if hasattr(value, "eqns"):
        return [value]
    if hasattr(getattr(value, "jaxpr", None), "eqns"):  # a ClosedJaxpr
        return [value.jaxpr]
    if isinstance(value, (tuple, list)):
        return [j for v in value for j in _inner_jaxprs(v)]
    return []


def _own_flops(eqn) -> float:
    if eqn.primitive.name == "dot_general":
        (contracting, _), _ = eqn.params["dimension_numbers"]
        lhs = eqn.invars[0].aval.shape
        return 2.0 * math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[i] for i in contracting)
    if eqn.primitive.name == "conv_general_dilated":
        # each output sums a kernel's worth of products; a dilated input (a strided convolution's input gradient)
        # is mostly the zeros inserted between its entries, which count nothing, as in torch's formula
        rhs, params = eqn.invars[1].aval.shape, eqn.params
        per_output = math.prod(rhs) / rhs[params["dimension_numbers"].rhs_spec[0]]
        return 2.0 * math.prod(eqn.outvars[0].aval.shape) * per_output / math.prod(params["lhs_dilation"])
    return 0.0


def jaxpr_flops(jaxpr) -> float:
    """Matrix-product and convolution FLOPs of ``jaxpr`` (a Jaxpr), inner jaxprs included; a while loop's body
    counts once (its trip count is not in the jaxpr: no model here has one)."""
    total = 0.0
    for eqn in jaxpr.eqns:
        inner = [jaxpr_flops(j) for value in eqn.params.values() for j in _inner_jaxprs(value)]
        if eqn.primitive.name == BRANCHING:
            total += max(inner, default=0.0)
        else:
            total += eqn.params.get("length", 1) * sum(inner) if eqn.primitive.name == SCANNED else sum(inner)
        total += _own_flops(eqn)
    return total


def training_pass_flops(workload: spec.Workload, params, model_state, dropout_rate) -> float:
    """The forward and backward FLOPs (gradients of the parameters only, as torch's autograd computes them) of one
    training batch of ``workload``, traced on its ``train_batch_inputs``."""
    batch_inputs = getattr(workload, "train_batch_inputs", None)
    if batch_inputs is None:
        raise ValueError(
            f"block_budget: {type(workload).__name__} gives no batch shapes before training (train_batch_inputs, "
            "as kronbench's JAX workloads do), so the JAX block-size rule cannot size its blocks; drop block_budget"
        )

    def outputs_sum(p, x):  # the loss adds no products: any scalar of the outputs has the same pass
        out, _ = workload.model_fn(
            p, {"inputs": x}, model_state, spec.ForwardPassMode.TRAIN, jax.random.PRNGKey(0), True, dropout_rate
        )
        return jnp.sum(out)

    return jaxpr_flops(jax.make_jaxpr(jax.grad(outputs_sum))(params, batch_inputs()).jaxpr)
