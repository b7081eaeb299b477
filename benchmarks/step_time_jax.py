"""The JAX column of ``benchmarks.step_time``: its three models in plain JAX, with torch's parameter shapes and
layouts (Linear (out, in), Conv2d (c_out, c_in, kh, kw)), so that both cores block and precondition the same
matrices, and the jitted step's time with precond_jax's variants or optax.adamw.

Each model builder returns (params, loss(params, x, y), x, y) on fixed random data of the torch benchmark's sizes.
"""

import functools
import os
import time

import jax
import jax.numpy as jnp
import optax

import precond_jax
from precond.registry import SPECS

# the torch benchmark's names -> precond_jax's
VARIANTS = {spec.optimizer: name for name, spec in SPECS.items()}


def single_threaded() -> None:
    """XLA's CPU backend on one thread, as the torch side (call before JAX first computes anything)."""
    flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()


def _linear(key, n_in, n_out):
    bound = n_in**-0.5
    kw, kb = jax.random.split(key)
    return {
        "weight": jax.random.uniform(kw, (n_out, n_in), minval=-bound, maxval=bound),
        "bias": jax.random.uniform(kb, (n_out,), minval=-bound, maxval=bound),
    }


def _apply_linear(p, x):
    return x @ p["weight"].T + p["bias"]


def _cross_entropy(logits, y):
    return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - jnp.take_along_axis(logits, y[:, None], axis=-1)[:, 0])


def mlp(key):
    keys = jax.random.split(key, 5)
    params = [_linear(keys[0], 784, 1024), _linear(keys[1], 1024, 1024), _linear(keys[2], 1024, 10)]

    def loss(params, x, y):
        h = jax.nn.relu(_apply_linear(params[0], x))
        h = jax.nn.relu(_apply_linear(params[1], h))
        return _cross_entropy(_apply_linear(params[2], h), y)

    return params, loss, jax.random.normal(keys[3], (128, 784)), jax.random.randint(keys[4], (128,), 0, 10)


def _layer_norm(p, x, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + eps) * p["weight"] + p["bias"]


def transformer(key, d=256, heads=4, ff=1024, vocab=512):
    """Embedding, one post-norm encoder layer (torch's TransformerEncoderLayer, ReLU), output head."""
    keys = jax.random.split(key, 8)
    params = {
        "embed": jax.random.normal(keys[0], (vocab, d)),
        "in_proj": _linear(keys[1], d, 3 * d),
        "out_proj": _linear(keys[2], d, d),
        "linear1": _linear(keys[3], d, ff),
        "linear2": _linear(keys[4], ff, d),
        "norm1": {"weight": jnp.ones(d), "bias": jnp.zeros(d)},  # separate buffers: the step donates them
        "norm2": {"weight": jnp.ones(d), "bias": jnp.zeros(d)},
        "head": _linear(keys[5], d, vocab),
    }

    def attention(p, x):
        b, t, _ = x.shape
        q, k, v = jnp.split(_apply_linear(p["in_proj"], x), 3, axis=-1)
        q, k, v = (a.reshape(b, t, heads, d // heads).transpose(0, 2, 1, 3) for a in (q, k, v))
        weights = jax.nn.softmax(q @ k.transpose(0, 1, 3, 2) / jnp.sqrt(d // heads), axis=-1)
        return _apply_linear(p["out_proj"], (weights @ v).transpose(0, 2, 1, 3).reshape(b, t, d))

    def loss(p, x, y):
        h = p["embed"][x]
        h = _layer_norm(p["norm1"], h + attention(p, h))
        h = _layer_norm(p["norm2"], h + _apply_linear(p["linear2"], jax.nn.relu(_apply_linear(p["linear1"], h))))
        return _cross_entropy(_apply_linear(p["head"], h).reshape(-1, vocab), y)

    x = jax.random.randint(keys[6], (16, 64), 0, vocab)
    return params, loss, x, jax.random.randint(keys[7], (16 * 64,), 0, vocab)


def convnet(key):
    """Three conv-BN-ReLU-maxpool stages (3 -> 32 -> 64 -> 128 channels, 32x32 input) and a linear head."""
    channels = [3, 32, 64, 128]
    keys = jax.random.split(key, 6)
    params = {"stages": [], "head": _linear(keys[3], 128 * 16, 10)}
    for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:], strict=True)):
        bound = (c_in * 9) ** -0.5
        params["stages"].append(
            {
                "weight": jax.random.uniform(keys[i], (c_out, c_in, 3, 3), minval=-bound, maxval=bound),
                "bias": jnp.zeros(c_out),
                "bn_weight": jnp.ones(c_out),
                "bn_bias": jnp.zeros(c_out),
            }
        )

    def loss(p, x, y):
        h = x
        for s in p["stages"]:
            h = jax.lax.conv_general_dilated(h, s["weight"], (1, 1), "SAME") + s["bias"][:, None, None]
            mean, var = h.mean((0, 2, 3), keepdims=True), h.var((0, 2, 3), keepdims=True)  # training-mode BN
            h = (h - mean) / jnp.sqrt(var + 1e-5) * s["bn_weight"][:, None, None] + s["bn_bias"][:, None, None]
            h = jax.lax.reduce_window(jax.nn.relu(h), -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        return _cross_entropy(_apply_linear(p["head"], h.reshape(h.shape[0], -1)), y)

    return params, loss, jax.random.normal(keys[4], (32, 3, 32, 32)), jax.random.randint(keys[5], (32,), 0, 10)


MODELS = {"mlp": mlp, "transformer": transformer, "convnet": convnet}


def make_optimizer(name: str) -> optax.GradientTransformation:
    if name == "AdamW":
        return optax.adamw(1e-3, weight_decay=0.0)
    return getattr(precond_jax, VARIANTS[name])(1e-3, precondition_frequency=100, max_preconditioner_dim=1024)


def time_steps(model_name: str, name: str, steps: int) -> tuple[float, float]:
    """(seconds per optimizer step, seconds per training step): the jitted gradient and the jitted optimizer
    step, each waited for, amortised over ``steps`` timed steps after three warm-up steps (compilation)."""
    params, loss, x, y = MODELS[model_name](jax.random.key(0))
    opt = make_optimizer(name)
    state = opt.init(params)
    grad_fn = jax.jit(jax.grad(loss))

    @functools.partial(jax.jit, donate_argnums=(0, 1))  # in place, as torch steps
    def opt_step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    opt_time = total = 0.0
    for i in range(steps + 3):
        start = time.perf_counter()
        grads = jax.block_until_ready(grad_fn(params, x, y))
        mid = time.perf_counter()
        params, state = jax.block_until_ready(opt_step(params, state, grads))
        end = time.perf_counter()
        if i >= 3:
            opt_time += end - mid
            total += end - start
    precond_jax.check(state)
    return opt_time / steps, total / steps
