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
import math
from contextlib import contextmanager
from typing import Any

from runner import checkpoint


class Torch:
    name = "pytorch"
    checkpoint = checkpoint

    def root_key(self, seed: int):
        from compat import prng

        return prng.PRNGKey(seed)

    def split(self, key, num: int) -> list:
        from compat import prng

        return list(prng.split(key, num))

    def step_keys(self, rng):
        from runner.keys import StepKeys

        return StepKeys(rng)

    def wait(self, outputs: Any) -> None:
        """Nothing: the clock synchronises CUDA before it reads the time."""

    def finite(self, model) -> bool:
        """Every parameter finite: one fused max-abs per step (NaN propagates through it, and it cannot overflow)."""
        import torch

        params = [p.detach() for p in model.parameters()]
        return not params or bool(torch.isfinite(torch.stack(torch._foreach_norm(params, math.inf))).all())

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

    def __init__(self):
        from runner import checkpoint_jax

        self.checkpoint = checkpoint_jax
        self._all_finite = None

    def root_key(self, seed: int):
        import jax

        return jax.random.PRNGKey(seed)

    def split(self, key, num: int) -> list:
        import jax

        return list(jax.random.split(key, num))

    def step_keys(self, rng):
        """AlgoPerf's per-step keys: ``split(fold_in(rng, step), 4)``, on real keys."""
        import jax

        def keys(step: int):
            return list(jax.random.split(jax.random.fold_in(rng, step), 4))

        return keys

    def wait(self, outputs: Any) -> None:
        import jax

        jax.block_until_ready(outputs)

    def finite(self, params) -> bool:
        import jax
        import jax.numpy as jnp

        if self._all_finite is None:
            self._all_finite = jax.jit(
                lambda tree: jnp.all(jnp.stack([jnp.isfinite(x).all() for x in jax.tree.leaves(tree)] or [True]))
            )
        floats = jax.tree.map(lambda x: x if jnp.issubdtype(jnp.result_type(x), jnp.inexact) else None, params)
        return bool(self._all_finite(floats))

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


def get(name: str):
    """The framework's runner operations; ``name`` as checked by common.checks.framework."""
    return Jax() if name == "jax" else Torch()
