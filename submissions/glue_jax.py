"""What every kronbench JAX submission shares: the recipe of ``submissions.recipe`` (the PyTorch glue's: same
hyperparameters and defaults, warmup + cosine schedule, decoupled weight decay, label smoothing, dropout, global-norm
gradient clipping, routing) on optax and ``precond_jax``, and the AlgoPerf functions built from an optimizer factory.

AlgoPerf's JAX contract: ``init_optimizer_state`` returns ``(optax state, update function)`` (AlgoPerf checkpoints
the first, a pytree of arrays, and keeps the second); ``update_params`` runs one ``jax.jit``-compiled step with
AlgoPerf's shardings (parameters, model and optimizer state replicated, the batch split on its leading axis,
parameters and states donated). The schedule is a function of the optimizer's update count, which is the runner's
global step (a step skipped for a non-finite gradient does not count, and raises under the default policy).

Flax stores kernels inputs-first ((in, out); convolutions (kh, kw, c_in, c_out)) where torch stores them
outputs-first ((out, in); (c_out, c_in, kh, kw)), and ``precond.blocking`` keeps the leading dim as one factor and
merges the trailing ones. The Kronecker optimizers therefore see dense and conv kernels permuted to torch's layout
(``torch_layout``), so both frameworks block, and precondition, every weight alike.

Submissions import only the AlgoPerf API, ``precond_jax``, this module and their folder's options.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import compat  # noqa: F401  (so `from algoperf import spec` resolves)
import precond_jax
from algoperf import spec
from precond.config import PRESETS, KronConfig
from submissions import flops_jax, recipe, routing
from submissions.recipe import BASELINE_DEFAULTS, BATCH_SIZES, TrainingHParams, batch_size  # noqa: F401  (re-exported)

try:
    from algoperf import jax_sharding_utils
except ImportError:  # an algoperf without the JAX utilities: the same shardings, on a one-device mesh
    jax_sharding_utils = None

hyperparameters = recipe.hyperparameters  # re-exported: submissions call glue_jax.hyperparameters
GRAD_CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_'s, and AlgoPerf's JAX baseline's
# Dense types whose flax kernels are (in, out): transposed for the Kronecker optimizers. Embeddings are
# (rows, features) in both frameworks.
DENSE_TYPES = {"WEIGHT", "ATTENTION_Q", "ATTENTION_K", "ATTENTION_V", "ATTENTION_OUT", "ATTENTION_QKV", "ATTENTION_KV"}


def shardings() -> tuple[NamedSharding, NamedSharding]:
    """(replicated, split along the leading axis), from AlgoPerf's ``jax_sharding_utils`` when it has them."""
    if jax_sharding_utils is not None:
        return jax_sharding_utils.get_replicate_sharding(), jax_sharding_utils.get_batch_dim_sharding()
    mesh = Mesh(jax.devices()[:1], ("batch",))
    return NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec("batch"))


def lr_schedule(hp: TrainingHParams, step_hint: int) -> optax.Schedule:
    """``recipe.scheduled_lr`` as an optax schedule of the update count (jit-traceable)."""
    warmup, total = recipe.warmup_steps(hp, step_hint), step_hint

    def schedule(count):
        step = jnp.asarray(count, jnp.result_type(float))  # float64 under jax_enable_x64, as torch's Python float
        progress = (step - warmup) / max(total - warmup, 1)
        cosine = jnp.where(step >= total, 0.0, 0.5 * (1.0 + jnp.cos(jnp.pi * progress)))
        return hp.learning_rate * jnp.where(step < warmup, step / max(warmup, 1), cosine)

    return schedule


def _path_key(path) -> str:
    return jax.tree_util.keystr(path)


def _by_path(tree, fn):
    """``fn(path key, leaf)`` on every leaf (optax's masked nodes have none, so masked trees work too)."""
    return jax.tree_util.tree_map_with_path(lambda path, leaf: fn(_path_key(path), leaf), tree)


def type_names(params, param_types) -> dict[str, str | None]:
    """{path key: AlgoPerf ParameterType name, None where the workload gives none}, whatever mapping types
    (dict or FrozenDict) either tree uses."""
    flat = jax.tree_util.tree_flatten_with_path(param_types)[0] if param_types else []
    names = {_path_key(path): getattr(t, "name", None) for path, t in flat}
    return {key: names.get(key) for key, _ in _leaves_by_path(params)}


def _leaves_by_path(tree) -> list[tuple[str, object]]:
    return [(_path_key(path), leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]]


def route_parameters(params, param_types, policy: routing.Policy = routing.DEFAULT) -> dict[str, str]:
    """{path key: ``recipe.route_by_type`` of the parameter} (its type, its shape: the same in either layout)."""
    names = type_names(params, param_types)
    return {key: recipe.route_by_type(names[key], tuple(p.shape), policy) for key, p in _leaves_by_path(params)}


def torch_layout(type_name: str | None, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The axes permutation taking a flax kernel to torch's layout (outputs first), or None (same layout):
    conv (kh, kw, c_in, c_out) -> (c_out, c_in, kh, kw), dense (in, out) -> (out, in)."""
    n = len(shape)
    if type_name == "CONV_WEIGHT" and n >= 3:
        return (n - 1, n - 2, *range(n - 2))
    if type_name in DENSE_TYPES and n == 2:
        return (1, 0)
    return None


def in_torch_layout(inner: optax.GradientTransformation, perms: dict[str, tuple]) -> optax.GradientTransformation:
    """``inner`` on parameters and gradients permuted by ``perms`` ({path key: permutation}), its updates permuted
    back: a layout change only, so the state is ``inner``'s."""

    def permute(tree, inverse=False):
        def leaf(key, x):
            perm = perms.get(key)
            if perm is None or x is None:
                return x
            return jnp.transpose(x, tuple(np.argsort(perm)) if inverse else perm)

        return None if tree is None else _by_path(tree, leaf)

    def update_fn(updates, state, params=None):
        out, state = inner.update(permute(updates), state, permute(params))
        return permute(out, inverse=True), state

    return optax.GradientTransformation(lambda params: inner.init(permute(params)), update_fn)


def kronecker(transform, policy: routing.Policy = routing.DEFAULT, **options):
    """An optimizer factory: ``transform`` (a ``precond_jax`` preset, say ``precond_jax.shampoo``) with ``options``
    (any overridden by a hyperparameter of the same name in the search-space point) on the parameters
    ``recipe.route_by_type`` sends to it (dense and conv kernels in torch's layout; norms and biases on its diagonal
    method), NAdamW on huge tables: as ``glue.kronecker`` builds the torch optimizers."""

    factory = recipe.KronFactory(policy, options)

    def build(
        params, param_types, hp: TrainingHParams, hyperparameters, learning_rate, batch_flops=None
    ) -> optax.GradientTransformation:
        """``batch_flops``: () -> a training batch's forward and backward FLOPs, called when the block-size rule
        is on (``block_budget``), which sizes the blocks here, before the state is built from them."""
        names = type_names(params, param_types)
        routes = route_parameters(params, param_types, factory.policy_for(hyperparameters))
        perms = {key: torch_layout(names[key], tuple(p.shape)) for key, p in _leaves_by_path(params)}
        kw, budget = factory.options_for(hp, hyperparameters), factory.budget_for(hyperparameters)
        if budget is not None:
            shapes = [
                _permuted(p.shape, perms[key]) for key, p in _leaves_by_path(params) if routes[key] == routing.KRONECKER
            ]
            kw = {**kw, "max_preconditioner_dim": _ruled_block(transform, kw, shapes, batch_flops, budget)}
        kron = transform(
            learning_rate,
            hp.weight_decay,
            precondition=lambda tree: _by_path(tree, lambda key, _: routes[key] == routing.KRONECKER),
            **kw,
        )
        transforms = {routing.KRONECKER: kron}
        if routing.ADAM in routes.values():
            transforms[routing.ADAM] = precond_jax.nadamw(learning_rate, hp.adam_betas, weight_decay=hp.weight_decay)
        labels = _by_path(params, lambda key, _: routing.ADAM if routes[key] == routing.ADAM else routing.KRONECKER)
        return in_torch_layout(optax.multi_transform(transforms, labels), perms)

    return factory.attach(build)


def _ruled_block(transform, options: dict, shapes, batch_flops, budget: float) -> int:
    """The block-size rule's max_preconditioner_dim for ``transform`` (a ``precond_jax`` preset) with ``options``
    on preconditioned parameters of ``shapes`` (torch's layout)."""
    variant = getattr(transform, "__name__", None)
    if variant not in PRESETS:
        raise ValueError(f"block_budget: {transform!r} is not a precond_jax preset; drop block_budget or use one")
    if batch_flops is None:
        raise ValueError("block_budget: the optimizer factory was called without batch_flops; build it through "
                         "make_submission's init_optimizer_state")  # fmt: skip
    config = KronConfig.build(f"precond_jax.{variant}", PRESETS[variant], options)
    recipe.check_block_rule(config.variant)  # before tracing the pass, which costs seconds
    return recipe.rule_block(config, shapes, batch_flops(), budget, "the jaxpr")


def _permuted(shape, perm) -> tuple[int, ...]:
    return tuple(shape) if perm is None else tuple(shape[i] for i in perm)


def clip_by_global_norm(grads, max_norm: float | None):
    """(grads scaled to a global norm of at most ``max_norm``, the norm before), as torch's clip_grad_norm_."""
    norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads)))
    if max_norm is None:
        return grads, norm
    scale = jnp.minimum(max_norm / (norm + GRAD_CLIP_EPS), 1.0)
    return jax.tree.map(lambda g: (g * scale).astype(g.dtype), grads), norm


def train_step(workload, opt_update, model_state, opt_state, params, batch, rng, grad_clip, label_smoothing, dropout):
    """One forward/backward/update: (new optimizer state, new parameters, new model state, mean loss, grad norm).
    The gradient is that of the mean loss over the batch's valid examples."""

    def loss_fn(p):
        logits, new_model_state = workload.model_fn(
            p, batch, model_state, spec.ForwardPassMode.TRAIN, rng, update_batch_norm=True, dropout_rate=dropout
        )
        out = workload.loss_fn(
            label_batch=batch["targets"],
            logits_batch=logits,
            mask_batch=batch.get("weights"),
            label_smoothing=label_smoothing,
        )
        return out["summed"], (out["n_valid_examples"], new_model_state)

    (summed, (n_valid, new_model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    grads = jax.tree.map(lambda g: g / n_valid, grads)
    grads, grad_norm = clip_by_global_norm(grads, grad_clip)
    updates, new_opt_state = opt_update(grads, opt_state, params)
    return new_opt_state, optax.apply_updates(params, updates), new_model_state, summed / n_valid, grad_norm


@functools.cache
def jitted_train_step():
    """``train_step`` compiled with AlgoPerf's shardings; workload and update function are static."""
    replicated, split = shardings()
    return jax.jit(
        train_step,
        static_argnums=(0, 1),
        donate_argnums=(2, 3, 4),
        in_shardings=(replicated, replicated, replicated, split, replicated, replicated, replicated, replicated),
        out_shardings=(replicated,) * 5,
    )


def make_submission(build_optimizer, defaults: TrainingHParams):
    """(get_batch_size, init_optimizer_state, update_params, data_selection) for ``build_optimizer``: a callable
    (params, param types, resolved hparams, raw hyperparameters or None, learning-rate schedule) -> optax
    transformation applying the whole update (learning rate and weight decay included)."""

    def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
        del rng
        hp = TrainingHParams.resolve(hyperparameters, defaults)
        schedule = lr_schedule(hp, workload.step_hint)
        sized = {}  # the block-size rule's count, for the factories that have the rule
        if hasattr(build_optimizer, recipe.BLOCK_BUDGET):
            sized["batch_flops"] = lambda: flops_jax.training_pass_flops(
                workload, model_params, model_state, hp.dropout_rate
            )
        optimizer = build_optimizer(model_params, workload.model_params_types, hp, hyperparameters, schedule, **sized)
        # placed as the jitted step returns it, so the second step does not compile again
        state = jax.device_put(optimizer.init(model_params), shardings()[0])
        return state, optimizer.update

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
        del current_params_types, loss_type, eval_results, global_step, train_state
        hp = TrainingHParams.resolve(hyperparameters, defaults)  # plain values, the same every step
        opt_state, opt_update = optimizer_state
        opt_state, params, model_state, _, _ = jitted_train_step()(
            workload,
            opt_update,
            model_state,
            opt_state,
            current_param_container,
            batch,
            rng,
            hp.grad_clip,
            hp.label_smoothing,
            hp.dropout_rate,
        )
        precond_jax.check(opt_state)  # raises the torch core's errors (non-finite gradient, failed refreshes)
        return (opt_state, opt_update), params, model_state

    return batch_size, init_optimizer_state, update_params, recipe.data_selection
