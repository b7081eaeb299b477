"""Model plumbing shared by the suite: parameter types from module classes, AlgoPerf's batch-norm switch,
seeded construction and an MLP builder.

Types come from the module that owns a parameter rather than from its name, so they are right whichever
``algoperf.param_utils`` (the official one or the stand-in) is installed.
"""

import torch
from torch import nn

from algoperf import spec
from workloads.transformer import AttentionOut, KVProjection, QKVProjection, QueryProjection

_ATTENTION = {
    QKVProjection: spec.ParameterType.ATTENTION_QKV,
    QueryProjection: spec.ParameterType.ATTENTION_Q,
    KVProjection: spec.ParameterType.ATTENTION_KV,
    AttentionOut: spec.ParameterType.ATTENTION_OUT,
}
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d, nn.RMSNorm)


def param_types(model: nn.Module) -> dict[str, spec.ParameterType]:
    """``named_parameters()`` names to AlgoPerf parameter types, decided by the owning module's class."""
    pt = spec.ParameterType
    out = {}
    for module_name, module in model.named_modules():
        for leaf, _ in module.named_parameters(recurse=False):
            is_bias = leaf == "bias"
            if isinstance(module, _BATCH_NORMS):
                kind = pt.BATCH_NORM_BIAS if is_bias else pt.BATCH_NORM_SCALE
            elif isinstance(module, _NORMS):
                kind = pt.LAYER_NORM_BIAS if is_bias else pt.LAYER_NORM_SCALE
            elif isinstance(module, (nn.Embedding, nn.EmbeddingBag)) or leaf in ("pos_embedding", "cls_token"):
                kind = pt.EMBEDDING
            elif type(module) in _ATTENTION:
                kind = pt.ATTENTION_BIAS if is_bias else _ATTENTION[type(module)]
            elif is_bias:
                kind = pt.BIAS
            elif isinstance(module, nn.modules.conv._ConvNd):
                kind = pt.CONV_WEIGHT
            else:
                kind = pt.WEIGHT
            out[f"{module_name}.{leaf}" if module_name else leaf] = kind
    return out


def set_batch_norm_update(model: nn.Module, update: bool) -> None:
    """AlgoPerf's ``update_batch_norm``: when False, training-mode batch norm leaves running statistics as they
    are (momentum 0); when True, the module's own momentum is restored."""
    for module in model.modules():
        if isinstance(module, _BATCH_NORMS):
            if not update:
                module.__dict__.setdefault("_kronbench_momentum", module.momentum)
                module.momentum = 0.0
            elif "_kronbench_momentum" in module.__dict__:
                module.momentum = module.__dict__.pop("_kronbench_momentum")


def seeded_model(rng, build) -> nn.Module:
    """``build()`` under a torch seed taken from an AlgoPerf key, without disturbing the global generator."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng[0]))
        return build()


def mlp(widths: tuple[int, ...], last_activation: bool) -> nn.Sequential:
    """Linear layers through ``widths`` with ReLU between them (and after the last if ``last_activation``)."""
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
