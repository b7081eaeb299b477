"""What differs between a PyTorch and a JAX trial in the runner, behind one small interface: random keys, waiting
for the device before the clock is read, the finiteness check, out-of-memory errors, checkpoints, and copies of
the model (runner/refine.py).

PyTorch: AlgoPerf's numpy emulation of JAX keys (compat/prng.py); the clock synchronises CUDA itself
(runner/clock.py); parameters live in an ``nn.Module``. JAX: real ``jax.random`` keys; dispatch is asynchronous,
so the runner blocks on a step's outputs before it reads the clock (``wait``) where AlgoPerf's runner reads
``time.time()`` at once and lets queued work spill into the next step or an untimed eval (docs/usage.md, "The
clock", measures what that changes); parameters and states are pytrees. JAX is imported only by JAX trials.
"""

import copy
import functools
from contextlib import contextmanager
from typing import Any

from runner import checkpoint, jax_layout


class Torch:
    name = "pytorch"
    checkpoint = checkpoint
    layout = jax_layout.PassThrough()  # what the submission is handed: the workload's arrays as they are

    def root_key(self, seed: int):
        from compat import prng

        return prng.PRNGKey(seed)

    def split(self, key, num: int) -> list:
        from compat import prng

        return list(prng.split(key, num))

    def step_keys(self, rng):
        from runner.keys import TorchStepKeys

        return TorchStepKeys(rng)

    def wait(self, outputs: Any) -> None:
        """Nothing: the clock synchronises CUDA before it reads the time."""

    def finite(self, model) -> bool:
        """Every parameter finite. On the CPU, numpy's isfinite over the tensors' memory (no torch dispatch: a
        quarter of the sums' cost on MNIST); elsewhere one sum each and one host sync (a sixth of the max-abs norm's
        cost), exactly only when a sum is not finite (a non-finite value, or finite values whose sum overflowed)."""
        import torch

        from precond.guards import sums_finite

        params = [p.detach() for p in model.parameters()]
        if all(p.device.type == "cpu" and str(p.dtype).removeprefix("torch.") in _NUMPY_FLOATS for p in params):
            import numpy as np

            return all(np.isfinite(p.numpy()).all() for p in params)
        return sums_finite(params) or all(bool(torch.isfinite(p).all()) for p in params)

    def is_out_of_memory(self, error: BaseException) -> bool:
        import torch

        return isinstance(error, torch.OutOfMemoryError)

    def free_memory(self) -> None:
        import torch

        torch.cuda.empty_cache()

    def snapshot(self, model, model_state) -> tuple:
        """A copy of the model's parameters and buffers (its state dict) and of the model state."""
        return {k: v.detach().clone() for k, v in model.state_dict().items()}, copy.deepcopy(model_state)

    @contextmanager
    def swapped(self, model, model_state, snapshot):
        """The module holds the snapshot's weights while the block runs, and its own again after."""
        own = self.snapshot(model, model_state)
        model.load_state_dict(snapshot[0])
        try:
            yield model, snapshot[1]
        finally:
            model.load_state_dict(own[0])


class Jax:
    name = "jax"

    def __init__(self, batch_layout: str = "jit"):
        from runner import checkpoint_jax

        self.checkpoint = checkpoint_jax
        self.layout = jax_layout.get(batch_layout)  # runner/jax_layout.py: jit, or AlgoPerf v0.5/v0.6's pmap

    def root_key(self, seed: int):
        import jax

        return jax.random.PRNGKey(seed)

    def split(self, key, num: int) -> list:
        import jax

        return list(jax.random.split(key, num))

    def step_keys(self, rng):
        from runner.keys import JaxStepKeys

        return JaxStepKeys(rng)

    def wait(self, outputs: Any) -> None:
        import jax

        jax.block_until_ready(outputs)

    def finite(self, params) -> bool:
        """Every floating-point leaf finite: one jitted reduction, compiled once per process and tree structure.
        (numpy's isfinite over the host values costs a fifth of its wall time on MNIST's CPU step but, measured
        around an idle submission, adds ~3 us to every timed step after it: docs/measurements.md.)"""
        return bool(_all_finite()(params))

    def is_out_of_memory(self, error: BaseException) -> bool:
        import jax

        return isinstance(error, jax.errors.JaxRuntimeError) and "RESOURCE_EXHAUSTED" in str(error)

    def free_memory(self) -> None:
        """Nothing to do: JAX frees buffers when their arrays go."""

    def snapshot(self, params, model_state) -> tuple:
        """Copies, not references: the submissions' jitted steps donate (and so delete) the arrays they update."""
        import jax
        import jax.numpy as jnp

        return jax.tree.map(jnp.copy, (params, model_state))

    @contextmanager
    def swapped(self, params, model_state, snapshot):
        """Pytrees are values: the snapshot itself is evaluated."""
        yield snapshot


_NUMPY_FLOATS = ("float16", "float32", "float64")  # numpy's own: bfloat16 takes the device path


@functools.cache
def _all_finite():
    """A jitted tree -> bool array: whether every floating-point leaf is finite (other leaves are ignored)."""
    import jax
    import jax.numpy as jnp

    def all_finite(tree):
        leaves = [jnp.asarray(x) for x in jax.tree.leaves(tree)]
        checks = [jnp.isfinite(x).all() for x in leaves if jnp.issubdtype(x.dtype, jnp.inexact)]
        return jnp.all(jnp.stack(checks)) if checks else jnp.asarray(True)

    return jax.jit(all_finite)


def get(name: str, jax_batch_layout: str = "jit"):
    """The framework's runner operations; ``name`` as checked by common.checks.framework, ``jax_batch_layout`` one
    of runner.jax_layout.LAYOUTS (JAX only)."""
    return Jax(jax_batch_layout) if name == "jax" else Torch()
