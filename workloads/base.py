"""The PyTorch workloads' base: ``workloads.inmemory`` with tensors on the device, a model built from a seed and
a generic ``model_fn``.

A workload provides ``load_splits`` (tensors per split; by default ``numpy_splits`` as tensors), ``build_model``,
``loss_fn``, ``summarize`` (metrics from the evaluation outputs) and its constants; everything else follows
AlgoPerf's contract here.
"""

import numpy as np
import torch
from torch import nn

from algoperf import spec
from algoperf.pytorch_utils import pytorch_setup
from workloads import arrays, ddp
from workloads.inmemory import SPLITS, InMemoryCore
from workloads.nn import param_types, seeded_model, set_batch_norm_update

DEVICE = pytorch_setup()[2]
__all__ = ["DEVICE", "SPLITS", "InMemoryWorkload"]


class InMemoryWorkload(InMemoryCore):
    """Splits are dicts of tensors with equal first dimension ('inputs', 'targets', optional 'weights')."""

    # --- what a workload provides ----------------------------------------------------------------------------
    def numpy_splits(self, data_dir: str) -> dict[str, dict[str, np.ndarray]]:
        """Framework-free splits (what the JAX port of a workload reads too), if the workload has them."""
        raise NotImplementedError

    def load_splits(self, data_dir: str) -> dict[str, dict]:
        """'train', 'validation' and 'test' as dicts of CPU tensors."""
        splits = self.numpy_splits(data_dir)
        return {name: {k: torch.from_numpy(v) for k, v in split.items()} for name, split in splits.items()}

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    # --- data -----------------------------------------------------------------------------------------------
    def _data_key(self, data_dir: str) -> tuple:
        return (type(self).load_splits, type(self).numpy_splits, data_dir, str(DEVICE))

    @staticmethod
    def to_device(split: dict) -> dict:
        return {k: v.to(DEVICE) for k, v in split.items()}

    def as_index(self, index: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(index).to(DEVICE)

    def make_batch(self, split: dict, index: torch.Tensor) -> dict:
        return {k: v.index_select(0, index) for k, v in split.items()}

    def train_index_stream(self, n: int, global_batch_size: int, data_rng):
        """Every rank draws the global batches and keeps its slice of each."""
        mine = ddp.local_slice(global_batch_size)
        return (i[mine] for i in arrays.train_indices(n, global_batch_size, arrays.seed_from_rng(data_rng)))

    # --- model ----------------------------------------------------------------------------------------------
    def init_model_fn(self, rng) -> spec.ModelInitState:
        model = seeded_model(rng, self.build_model)
        self._param_shapes = {n: spec.ShapeTuple(tuple(p.shape)) for n, p in model.named_parameters()}
        self._param_types = param_types(model)
        return ddp.wrap(model.to(DEVICE)), None

    def model_fn(
        self,
        params,
        augmented_and_preprocessed_input_batch,
        model_state,
        mode,
        rng,
        update_batch_norm,
        dropout_rate=0.0,
    ):
        del rng
        train = mode == spec.ForwardPassMode.TRAIN
        model = params if train else ddp.unwrap(params)  # workloads/ddp.py: why evals skip the DDP wrapper
        model.train(train)
        if train:
            set_batch_norm_update(model, update_batch_norm)
        with torch.set_grad_enabled(train and torch.is_grad_enabled()):
            out = model(augmented_and_preprocessed_input_batch["inputs"], dropout_rate=dropout_rate or 0.0)
        return out, model_state

    # --- evaluation -----------------------------------------------------------------------------------------
    def eval_outputs(self, data: dict, indices, params, model_state, rng):
        """Under torchrun each rank evaluates its share of the batches; the pairs are gathered in order."""
        pairs = super().eval_outputs(data, ddp.mine(indices), params, model_state, rng)
        if ddp.active():  # summaries read targets (and weights), never the inputs: those stay on their rank
            pairs = ddp.gather_in_order([({k: v for k, v in b.items() if k != "inputs"}, o) for b, o in pairs])
        return pairs

    @torch.no_grad()
    def _eval_model_on_split(
        self, split, num_examples, global_batch_size, params, model_state, rng, data_dir, global_step=0
    ) -> dict[str, float]:
        return super()._eval_model_on_split(
            split, num_examples, global_batch_size, params, model_state, rng, data_dir, global_step
        )
