"""PyTorch weights as flax parameters: a kronbench PyTorch model's parameters as the parameter tree of its
flax twin (``workloads.param_names`` gives the paths), numpy arrays in the layout flax uses.

Linear weights (out, in) become kernels (in, out); LayerNorm's weight is flax's scale; an Embedding's weight is
flax's embedding; a bare parameter (a position embedding) keeps its name and layout. Other layers (convolutions,
batch norm) have no JAX port yet and are refused by name.
"""

import numpy as np
import torch
from torch import nn

from workloads.param_names import flax_module_path


def flax_params(model: nn.Module) -> dict:
    """The nested dict of numpy arrays that the flax twin of ``model`` takes as its 'params'."""
    params: dict = {}
    for module_name, module in model.named_modules():
        for leaf, p in module.named_parameters(recurse=False):
            name, value = _flax_leaf(module, leaf, p.detach().cpu().numpy())
            node = params
            for part in flax_module_path(module_name):
                node = node.setdefault(part, {})
            node[name] = value
    return params


def _flax_leaf(module: nn.Module, leaf: str, value: np.ndarray) -> tuple[str, np.ndarray]:
    if isinstance(module, nn.Linear):
        return ("kernel", value.T.copy()) if leaf == "weight" else (leaf, value)
    if isinstance(module, nn.LayerNorm):
        return ("scale" if leaf == "weight" else leaf), value
    if isinstance(module, nn.Embedding):
        return "embedding", value
    if type(module).__module__.startswith("torch.nn"):
        raise ValueError(f"no flax counterpart for the parameter {leaf!r} of {type(module).__name__}")
    return leaf, value  # a model's own parameter, e.g. pos_embedding


def state_dict_to_flax(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> dict:
    """``state_dict`` loaded into ``model`` (an instance of its architecture), then as flax parameters of
    the flax twin."""
    model.load_state_dict(state_dict)
    return flax_params(model)
