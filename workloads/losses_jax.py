"""AlgoPerf ``loss_fn`` bodies in JAX, the same quantities as ``workloads.losses`` (PyTorch)."""

import jax
import jax.numpy as jnp


def is_zero(x) -> bool:
    """Whether ``x`` is a Python zero: a traced hyperparameter (a jitted argument) may be anything."""
    return isinstance(x, (int, float)) and x == 0


def reduce_masked(per_example: jax.Array, mask_batch) -> dict:
    """``mask_batch`` has the shape of ``per_example`` (or broadcasts to it and counts the same)."""
    if mask_batch is not None:
        per_example = per_example * mask_batch
        n_valid = mask_batch.sum()
    else:
        n_valid = jnp.asarray(per_example.size)
    return {"summed": per_example.sum(), "n_valid_examples": n_valid, "per_example": per_example}


def softmax_cross_entropy(label_batch, logits_batch, mask_batch=None, label_smoothing: float = 0.0) -> dict:
    """Integer labels, class logits on the last axis (leading axes are examples). Smoothing as PyTorch's
    ``cross_entropy``: (1 - s) of the label's loss plus s of the mean loss over classes; s may be traced."""
    log_p = jax.nn.log_softmax(logits_batch, axis=-1)
    nll = -jnp.take_along_axis(log_p, label_batch[..., None].astype(jnp.int32), axis=-1)[..., 0]
    if not is_zero(label_smoothing):
        nll = (1.0 - label_smoothing) * nll - label_smoothing * log_p.mean(axis=-1)
    return reduce_masked(nll, mask_batch)


def sigmoid_cross_entropy(label_batch, logits_batch, mask_batch=None, label_smoothing: float = 0.0) -> dict:
    """Binary labels (0/1, any shape matching the logits); smoothing pulls them towards 1/2, as AlgoPerf's."""
    labels = label_batch.astype(logits_batch.dtype)
    if not is_zero(label_smoothing):
        labels = labels * (1.0 - label_smoothing) + 0.5 * label_smoothing
    x = logits_batch
    per_element = jnp.maximum(x, 0) - x * labels + jnp.log1p(jnp.exp(-jnp.abs(x)))
    return reduce_masked(per_element, mask_batch)
