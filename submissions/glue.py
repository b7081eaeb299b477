"""What every kronbench PyTorch submission shares: the recipe of ``submissions.recipe`` (hyperparameters with
defaults, the warmup + cosine schedule, the routing rule: huge tables to Adam, norms and biases unpreconditioned;
shared with the JAX glue ``glue_jax``) applied to torch: one training step (forward, loss with label smoothing,
backward, optional clipping, optimizer step), the routed optimizers, and the AlgoPerf functions themselves, built
from an optimizer factory so that a submission states only its optimizer and defaults.

Submissions import only the AlgoPerf API, ``precond``, this module and modules in their own folder.
"""

import contextlib
import warnings
from dataclasses import asdict
from typing import Any

import torch
import torch.distributed.nn as dist_nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils import flop_counter

import compat  # noqa: F401  (so `from algoperf import spec` resolves)
import precond
from algoperf import spec
from algoperf.pytorch_utils import pytorch_setup
from submissions import recipe, routing
from submissions.recipe import (  # noqa: F401  (re-exported: submissions and tests name them glue.X)
    BASELINE_DEFAULTS,
    BATCH_SIZES,
    TrainingHParams,
    batch_size,
    data_selection,
    scheduled_lr,
    warmup_cosine,
)

hyperparameters = recipe.hyperparameters  # re-exported: submissions call glue.hyperparameters
USE_DDP = pytorch_setup()[0]
# The differentiable all_reduce AlgoPerf's baselines use; torch suggests a private module in its place.
warnings.filterwarnings("ignore", message="torch.distributed.nn.functional.all_reduce is deprecated")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _cpu_attention(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_attention_backward(grad_out_shape, query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    """The backward pass's four products (torch's formula less its first, the flash kernels' recompute of the
    scores: a kernel's choice, not the pass's, which XLA does not make)."""
    b, h, s_q, d = query_shape
    recompute = flop_counter.bmm_flop((b * h, s_q, d), (b * h, d, key_shape[2]))
    return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape) - recompute


def flop_counter_mode() -> flop_counter.FlopCounterMode:
    """torch's FLOP counter (2 per multiply-add of matrix products, convolutions and attention) with the CPU
    kernel of scaled_dot_product_attention, which torch's table leaves out (it has the CUDA kernels'), counted as
    the pass's products: the JAX glue's count (``flops_jax``) of the same models is then the same number."""
    aten = torch.ops.aten
    cpu = {
        aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention,
        aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_attention_backward,
    }
    return flop_counter.FlopCounterMode(display=False, custom_mapping=cpu)


def train_step(
    workload: spec.Workload, model, model_state, batch: dict, rng, optimizer: torch.optim.Optimizer, hp: TrainingHParams
) -> tuple[torch.Tensor, Any]:
    """One forward/backward/step; returns (mean loss, new model state). The first step of an optimizer with the
    block-size rule on counts its forward and backward FLOPs, from which the optimizer sets its blocks."""
    optimizer.zero_grad(set_to_none=True)
    counting = getattr(optimizer, "awaits_batch_flops", False)
    with flop_counter_mode() if counting else contextlib.nullcontext() as counter:
        loss, new_model_state = _forward_backward(workload, model, model_state, batch, rng, hp)
    if counting:
        optimizer.set_blocks(counter.get_total_flops())
    if hp.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=hp.grad_clip)
    optimizer.step()
    return loss.detach(), new_model_state


def _forward_backward(workload: spec.Workload, model, model_state, batch: dict, rng, hp: TrainingHParams):
    logits, new_model_state = workload.model_fn(
        params=model,
        augmented_and_preprocessed_input_batch=batch,
        model_state=model_state,
        mode=spec.ForwardPassMode.TRAIN,
        rng=rng,
        update_batch_norm=True,
        dropout_rate=hp.dropout_rate,
    )
    loss_dict = workload.loss_fn(
        label_batch=batch["targets"],
        logits_batch=logits,
        mask_batch=batch.get("weights"),
        label_smoothing=hp.label_smoothing,
    )
    summed, n_valid = loss_dict["summed"], loss_dict["n_valid_examples"]
    if USE_DDP:  # sum over ranks (one collective for both) so gradients are those of the global batch mean
        summed, n_valid = dist_nn.all_reduce(torch.stack([summed, torch.as_tensor(n_valid).to(summed)])).unbind()
    loss = summed / n_valid
    loss.backward()
    return loss, new_model_state


class OptimizerSet:
    """Several torch optimizers stepped as one (a Kronecker optimizer plus Adam for huge tables). With a block
    budget, the Kronecker one is rebuilt (``rebuild``: max_preconditioner_dim -> optimizer) at the block size the
    rule (``precond.flops.block_for_budget``) picks from the first batch's FLOPs, before its first step; the size
    is saved with the state, so a checkpoint loads into optimizers of the size it was saved from."""

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer], budget: float | None = None, rebuild=None):
        self.optimizers, self.budget, self._rebuild = optimizers, budget, rebuild
        self.awaits_batch_flops = budget is not None

    def set_blocks(self, batch_flops: float) -> None:
        """Sizes the blocks from this process's forward and backward FLOPs. Under torch.distributed the ranks' counts
        are summed first: the rule weighs the whole optimizer against the global batch, and every rank (whose
        batches may differ, unpadded graphs say) picks the same size, as the sharded step needs."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            total = torch.tensor([float(batch_flops)], dtype=torch.float64)
            torch.distributed.all_reduce(total)
            batch_flops = total.item()
        kron = self.optimizers["kron"]
        shapes = [tuple(p.shape) for g in kron.param_groups if g["precondition"] for p in g["params"]]
        self._resize(recipe.rule_block(kron.config, shapes, batch_flops, self.budget, "torch.utils.flop_counter"))
        self.awaits_batch_flops = False

    def _resize(self, max_dim: int | None) -> None:
        kron = self.optimizers["kron"]
        if max_dim is not None and max_dim != kron.config.max_preconditioner_dim:
            self.optimizers["kron"] = self._rebuild(max_dim)
            set_lr(self.optimizers["kron"], kron.param_groups[0]["lr"])  # the scheduled rate update_params set

    @property
    def param_groups(self) -> list[dict]:
        return [g for opt in self.optimizers.values() for g in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers.values():
            opt.step()

    def state_dict(self) -> dict:
        state = {name: opt.state_dict() for name, opt in self.optimizers.items()}
        if self.budget is not None:
            kron = self.optimizers["kron"]
            state["block_rule"] = {"max_preconditioner_dim": kron.config.max_preconditioner_dim,
                                   "awaits_batch_flops": self.awaits_batch_flops}  # fmt: skip
        return state

    def load_state_dict(self, state: dict) -> None:
        rule = state.get("block_rule")
        if rule is not None and self.budget is None:
            raise ValueError(
                f"the optimizer state was saved with the block-size rule (blocks of {rule['max_preconditioner_dim']}) "
                f"and this submission runs without block_budget; load it with the block_budget it was saved with"
            )
        if rule is not None:
            self._resize(rule["max_preconditioner_dim"])
        # saved without the rule (before it was on): the state's blocks stand, so no resizing on the next step
        self.awaits_batch_flops = bool(rule and rule["awaits_batch_flops"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])


def route_parameters(
    model, param_types, policy: routing.Policy = routing.DEFAULT
) -> tuple[list[dict], list[tuple[str, torch.nn.Parameter]]]:
    """(Kronecker parameter groups, parameters for Adam), as (name, parameter) pairs so the optimizers' errors
    name the parameter; ``routing.route`` decides each one from its AlgoPerf type and shape under ``policy``."""
    dest = {routing.KRONECKER: [], routing.UNPRECONDITIONED: [], routing.ADAM: []}
    for name, p in model.named_parameters():
        dest[routing.route(name, (param_types or {}).get(name), tuple(p.shape), policy)].append((name, p))
    groups = [{"params": dest[routing.KRONECKER]}, {"params": dest[routing.UNPRECONDITIONED], "precondition": False}]
    return [g for g in groups if g["params"]], dest[routing.ADAM]


def kronecker(optimizer_cls, policy: routing.Policy = routing.DEFAULT, **options):
    """An optimizer factory: ``optimizer_cls`` with ``options`` (any of them overridden by a hyperparameter of the
    same name in the search-space point) on the parameters ``policy`` routes to it (``precondition_embeddings``
    in the point overrides the policy's), NAdamW on huge tables."""

    factory = recipe.KronFactory(policy, options)

    def build(model, param_types, hp: TrainingHParams, hyperparameters) -> torch.optim.Optimizer:
        kw, policy = factory.options_for(hp, hyperparameters), factory.policy_for(hyperparameters)
        adam_params = route_parameters(model, param_types, policy)[1]

        def kron(max_dim: int | None = None):  # routed afresh: torch.optim keeps and edits the groups it is given
            groups = route_parameters(model, param_types, policy)[0]
            sized = kw if max_dim is None else {**kw, "max_preconditioner_dim": max_dim}
            return optimizer_cls(groups, lr=hp.learning_rate, weight_decay=hp.weight_decay, **sized)

        optimizers, budget = {"kron": kron()}, factory.budget_for(hyperparameters)
        if budget is not None:
            recipe.check_block_rule(optimizers["kron"].config.variant)
        if adam_params:
            optimizers["adam"] = precond.NAdamW(
                adam_params, lr=hp.learning_rate, betas=hp.adam_betas, weight_decay=hp.weight_decay
            )
        return OptimizerSet(optimizers, budget, kron)

    return factory.attach(build)


def make_submission(build_optimizer, defaults: TrainingHParams):
    """(get_batch_size, init_optimizer_state, update_params, data_selection) for ``build_optimizer``:
    a callable (model, param_types, resolved hparams, raw hyperparameters or None) -> optimizer."""

    def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
        del model_state, rng
        hp = TrainingHParams.resolve(hyperparameters, defaults)
        model = model_params.module if isinstance(model_params, DistributedDataParallel) else model_params
        optimizer = build_optimizer(model, workload.model_params_types, hp, hyperparameters)  # names unprefixed
        return {"optimizer": optimizer, "hparams": asdict(hp)}  # a plain dict: checkpoints hold no classes

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
        del current_params_types, hyperparameters, loss_type, eval_results, train_state
        hp, optimizer = TrainingHParams(**optimizer_state["hparams"]), optimizer_state["optimizer"]
        set_lr(optimizer, scheduled_lr(hp, global_step, workload.step_hint))
        _, new_model_state = train_step(workload, current_param_container, model_state, batch, rng, optimizer, hp)
        return optimizer_state, current_param_container, new_model_state

    return batch_size, init_optimizer_state, update_params, data_selection
