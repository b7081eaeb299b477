"""``algoperf.param_utils``: parameter shapes and types of a PyTorch model, keyed by parameter name."""

import torch

from algoperf import spec


def pytorch_param_shapes(model: torch.nn.Module) -> dict[str, spec.ShapeTuple]:
    return {name: spec.ShapeTuple(tuple(p.shape)) for name, p in model.named_parameters()}


def pytorch_param_types(param_shapes: dict[str, spec.ShapeTuple]) -> dict[str, spec.ParameterType]:
    """Infer each parameter's type from its name and rank, following AlgoPerf's naming conventions."""
    return {name: _infer_type(name, len(shape.shape_tuple)) for name, shape in param_shapes.items()}


def _infer_type(name: str, ndim: int) -> spec.ParameterType:
    parts = name.lower().split(".")
    module, leaf = " ".join(parts[:-1]), parts[-1]
    pt = spec.ParameterType
    is_bias = leaf in ("bias", "beta")
    if "embed" in module or leaf.startswith("embed"):
        return pt.EMBEDDING
    if any(k in module for k in ("batchnorm", "batch_norm", "bn")):
        return pt.BATCH_NORM_BIAS if is_bias else pt.BATCH_NORM_SCALE
    if any(k in module for k in ("layernorm", "layer_norm", "norm")):
        return pt.LAYER_NORM_BIAS if is_bias else pt.LAYER_NORM_SCALE
    if is_bias:
        return pt.BIAS
    return pt.CONV_WEIGHT if ndim >= 3 else pt.WEIGHT
