"""How kronbench's flax models name what its PyTorch models name: the same modules, with a Sequential's or
ModuleList's ``.<i>`` folded into ``_<i>`` (``blocks.0.attention.qkv`` is ``blocks_0/attention/qkv``)."""


def flax_module_path(torch_module_name: str) -> tuple[str, ...]:
    """The flax module path of a PyTorch module name (``named_modules()`` spelling; a trailing '.' is fine)."""
    path: list[str] = []
    for part in torch_module_name.split("."):
        if not part:
            continue
        if part.isdigit() and path:
            path[-1] = f"{path[-1]}_{part}"
        else:
            path.append(part)
    return tuple(path)
