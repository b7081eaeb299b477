"""``algoperf.param_utils``: parameter shapes and types, of a PyTorch model keyed by parameter name, or of a
JAX (flax) parameter pytree keyed like it. Neither framework is imported until its functions are called."""

from algoperf import spec


def pytorch_param_shapes(model) -> dict[str, spec.ShapeTuple]:
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


def jax_param_shapes(params) -> spec.ParameterShapeTree:
    import jax

    return jax.tree.map(lambda x: spec.ShapeTuple(tuple(x.shape)), params)


def jax_param_types(param_shapes, parent_name: str = "") -> dict:
    """The types of a flax parameter tree (or of its shapes), as a tree of the same keys, inferred from module
    and parameter names as flax and AlgoPerf's JAX models spell them: ``Dense_0/kernel`` (WEIGHT),
    ``Conv_0/kernel`` (CONV_WEIGHT), ``Embed_0/embedding`` (EMBEDDING), ``LayerNorm_0/scale``, ``BatchNorm_0/bias``,
    ``.../attention/query/kernel`` (ATTENTION_Q; key, value and out alike), biases (BIAS or ATTENTION_BIAS)."""
    out = {}
    for name, value in param_shapes.items():
        path = f"{parent_name}/{name}".lower()
        if hasattr(value, "items"):
            out[name] = jax_param_types(value, path)
        else:
            out[name] = _jax_type(parent_name.lower(), name.lower())
    return out


_ATTENTION_KERNELS = (
    ("query", spec.ParameterType.ATTENTION_Q),
    ("key", spec.ParameterType.ATTENTION_K),
    ("value", spec.ParameterType.ATTENTION_V),
    ("out", spec.ParameterType.ATTENTION_OUT),
    ("qkv", spec.ParameterType.ATTENTION_QKV),
    ("kv", spec.ParameterType.ATTENTION_KV),
)


def _jax_type(parent: str, leaf: str) -> spec.ParameterType:
    pt = spec.ParameterType
    module = parent.rsplit("/", 1)[-1]
    if "batchnorm" in parent or "batch_norm" in parent or module.startswith("bn"):
        return pt.BATCH_NORM_BIAS if leaf == "bias" else pt.BATCH_NORM_SCALE
    if "layernorm" in parent or "layer_norm" in parent or "norm" in module or module.startswith("ln"):
        return pt.LAYER_NORM_BIAS if leaf == "bias" else pt.LAYER_NORM_SCALE
    if "embedding" in leaf or ("embedding" in module and leaf == "kernel"):
        return pt.EMBEDDING
    if "conv" in parent and leaf != "bias":
        return pt.CONV_WEIGHT
    if "attention" in parent:
        if leaf == "bias":
            return pt.ATTENTION_BIAS
        for name, kind in _ATTENTION_KERNELS:
            if module == name or module.startswith(name + "_") or module.endswith("_" + name):
                return kind
    return pt.BIAS if leaf == "bias" else pt.WEIGHT
