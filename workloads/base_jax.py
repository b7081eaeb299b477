"""The JAX workloads' base: ``workloads.inmemory`` with a flax model, AlgoPerf's JAX ``model_fn`` and batches
sharded along their leading axis (``algoperf.jax_sharding_utils``; one device on CPU).

A workload provides ``numpy_splits`` (its framework-free part, shared with its PyTorch twin), ``build_model``
(a flax module called as ``model(inputs, dropout_rate=..., train=...)``), ``init_inputs`` (a small batch of
inputs to trace the shapes), ``loss_fn``, ``summarize`` and its constants. Imports no torch.
"""

import jax

from algoperf import jax_sharding_utils, spec
from workloads.inmemory import SPLITS, InMemoryCore
from workloads.losses_jax import is_zero
from workloads.nn_jax import param_types
from workloads.param_names import flax_module_path

__all__ = ["SPLITS", "InMemoryJaxWorkload"]


class InMemoryJaxWorkload(InMemoryCore):
    """Splits stay numpy arrays on the host; each batch is gathered there and put on the devices."""

    def __init__(self):
        super().__init__()
        self._model = self.build_model()
        self._eval_forward = jax.jit(self._eval_apply)

    # --- what a workload provides ----------------------------------------------------------------------------
    def numpy_splits(self, data_dir: str) -> dict[str, dict]:
        raise NotImplementedError

    def build_model(self):
        raise NotImplementedError

    def init_inputs(self):
        """Inputs of a batch of one or two examples, for ``init`` to trace shapes with."""
        raise NotImplementedError

    def train_batch_inputs(self):
        """The shapes (``jax.ShapeDtypeStruct``) of the training batches' inputs, for a submission to trace its first
        step ahead of it; known once the training queue is built, which AlgoPerf's runner (and kronbench's) does
        before initialising the model and the optimizer."""
        if self.train_batch_size is None:
            raise ValueError(f"{type(self).__name__}: build the training input queue before asking its batches' shapes")
        size = self.train_batch_size
        return jax.tree.map(lambda x: jax.ShapeDtypeStruct((size, *x.shape[1:]), x.dtype), self.init_inputs())

    # --- data -----------------------------------------------------------------------------------------------
    def load_splits(self, data_dir: str) -> dict[str, dict]:
        return self.numpy_splits(data_dir)

    def _data_key(self, data_dir: str) -> tuple:
        return (type(self).numpy_splits, data_dir, "numpy")

    def make_batch(self, split: dict, index) -> dict:
        return {k: v[index] for k, v in split.items()}

    def place(self, batch: dict) -> dict:
        return jax_sharding_utils.shard_along_batch_dim(batch)

    # --- model ----------------------------------------------------------------------------------------------
    def init_model_fn(self, rng) -> spec.ModelInitState:
        """Parameters drawn from ``rng`` (a JAX key) with the PyTorch twin's distributions, replicated."""
        inputs = self.init_inputs()
        # Compiled: flax's eager init runs op by op, ten times slower here (19 s against 2 s for fashion_vit).
        params = jax.jit(lambda key: self._model.init({"params": key}, inputs, train=False)["params"])(rng)
        self._param_shapes = jax.tree.map(lambda p: spec.ShapeTuple(tuple(p.shape)), params)
        self._param_types = param_types(params)
        return jax_sharding_utils.replicate(params), None

    def is_output_params(self, param_key) -> bool:
        """``param_key``: a flax path ('head/kernel', or a tuple of names); prefixes are PyTorch names."""
        path = tuple(param_key.split("/")) if isinstance(param_key, str) else tuple(param_key)
        prefixes = (flax_module_path(p) for p in self.output_param_prefixes)
        return any(path[: len(p)] == p for p in prefixes)

    def model_fn(
        self,
        params,
        augmented_and_preprocessed_input_batch,
        model_state,
        mode,
        rng,
        update_batch_norm,
        dropout_rate=0.0,
        use_running_average_bn=None,
    ):
        """Pure (jit it freely); ``rng`` feeds dropout, which is off in EVAL mode and at rate 0.
        ``use_running_average_bn``: AlgoPerf's JAX batch-norm workloads take it and published submissions pass it
        (schedule-free AdamW's JAX v2); accepted so that they run, unused."""
        del update_batch_norm, use_running_average_bn  # no model here has batch norm
        train = mode == spec.ForwardPassMode.TRAIN
        rate = 0.0 if dropout_rate is None else dropout_rate
        rngs = {"dropout": rng} if train and not is_zero(rate) else None
        inputs = augmented_and_preprocessed_input_batch["inputs"]
        out = self._model.apply({"params": params}, inputs, dropout_rate=rate, train=train, rngs=rngs)
        return out, model_state

    # --- evaluation -----------------------------------------------------------------------------------------
    def _eval_apply(self, params, batch, model_state):
        return self.model_fn(params, batch, model_state, spec.ForwardPassMode.EVAL, None, False)[0]

    def eval_logits(self, params, batch: dict, model_state, rng):
        del rng
        return self._eval_forward(params, batch, model_state)
