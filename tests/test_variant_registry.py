"""Every variant declared in ``precond.registry`` has all it needs, and nothing undeclared exists: a torch and a JAX
implementation with the declared state keys, a preset in both cores, a submission folder for both frameworks and
its rows in the docs. A failure names the variant and what is missing (docs/contributing.md, "Adding a variant")."""

import inspect
import os
import re

import pytest

import precond
import precond_jax
from precond import preconditioners, registry
from precond.config import PRESETS, KronConfig
from precond_jax import variants as jax_variants
from submissions import export
from tests.cli_helpers import ROOT

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

HOOKS = ("init_state", "accumulate", "refresh", "direction")
SUBMISSION_FILES = ("__init__.py", "options.py", "submission.py", "submission_jax.py", "tuning_search_space.json")
STACK = (2, 3, 4)  # two blocks of an order-2 tensor


def read(*parts: str) -> str:
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return f.read()


def implementation(module, base, spec) -> type:
    cls = getattr(module, spec.hooks, None)
    assert isinstance(cls, type) and issubclass(cls, base), (
        f"{spec.name}: {module.__name__} has no Variant subclass {spec.hooks} (the declaration's hooks)"
    )
    missing = [h for h in HOOKS if getattr(cls, h) is getattr(base, h)]
    assert not missing, f"{spec.name}: {module.__name__}.{spec.hooks} does not implement {', '.join(missing)}"
    return cls


def torch_state(cls, name):
    import torch

    return cls(KronConfig(variant=name)).init_state(STACK, torch.float32, "cpu")


def jax_state(cls, name):
    import jax.numpy as jnp

    return cls(KronConfig(variant=name)).init_state(STACK, jnp.float32)


@pytest.mark.parametrize("core", ["torch", "jax"])
@pytest.mark.parametrize("name", registry.VARIANTS)
def test_implementation_has_the_declared_state(name, core):
    spec = registry.SPECS[name]
    module, base, init = {
        "torch": (preconditioners, preconditioners.Variant, torch_state),
        "jax": (jax_variants, jax_variants.Variant, jax_state),
    }[core]
    state = init(implementation(module, base, spec), name)
    assert tuple(state) == spec.state_keys, f"{name}: {core} init_state keys {tuple(state)} != the declared"
    assert spec.statistics in state


@pytest.mark.parametrize("name", registry.VARIANTS)
def test_presets_in_both_cores(name):
    spec = registry.SPECS[name]
    torch_preset = getattr(precond, spec.optimizer)
    assert torch_preset.PRESET == PRESETS[name] == {"variant": name, **spec.preset}
    assert torch_preset.__doc__ == spec.summary
    assert callable(getattr(precond_jax, name, None)), f"{name}: precond_jax.{name} is missing"
    assert set(spec.honours) <= {f.name for f in KronConfig.__dataclass_fields__.values()}, (
        f"{name}: honours options KronConfig does not have"
    )


@pytest.mark.parametrize("name", registry.OPTIMIZERS)
def test_submission_folder_for_both_frameworks(name):
    missing = [f for f in SUBMISSION_FILES if not os.path.isfile(os.path.join(ROOT, "submissions", name, f))]
    assert not missing, f"submissions/{name}/ lacks {', '.join(missing)} (copy submissions/shampoo/)"
    torch_name = registry.TORCH_NAMES[name]
    assert re.search(rf"\bfrom precond import .*\b{torch_name}\b", read("submissions", name, "submission.py")), (
        f"submissions/{name}/submission.py does not build precond.{torch_name}"
    )
    assert f"precond_jax.{name}" in read("submissions", name, "submission_jax.py"), (
        f"submissions/{name}/submission_jax.py does not build precond_jax.{name}"
    )


@pytest.mark.parametrize("name", registry.OPTIMIZERS)
def test_docs_rows(name):
    assert f"| `{name}` |" in read("submissions", "README.md"), f"submissions/README.md has no row for `{name}`"
    if name in registry.SPECS:
        optimizer = registry.SPECS[name].optimizer
        assert f"| `{optimizer}` |" in read("docs", "optimizers.md"), f"docs/optimizers.md has no row for {optimizer}"


def test_nothing_undeclared():
    """Hook classes, submission folders and presets that no declaration names would be silently left out."""
    declared = {spec.hooks for spec in registry.SPECS.values()}
    for module, base in ((preconditioners, preconditioners.Variant), (jax_variants, jax_variants.Variant)):
        classes = {n for n, c in inspect.getmembers(module, inspect.isclass) if issubclass(c, base) and c is not base}
        assert classes <= declared, f"undeclared hook classes in {module.__name__}: {sorted(classes - declared)}"
    folders, declared_names = set(export.names()), set(registry.OPTIMIZERS)
    assert not declared_names - folders, f"declared without a submission folder: {sorted(declared_names - folders)}"
    assert not folders - declared_names, f"submission folders no declaration names: {sorted(folders - declared_names)}"


def test_one_counters_vocabulary():
    """Both engines count in the declared vocabulary; the JAX one adds only the errors it cannot raise in jit."""
    import jax.numpy as jnp
    import torch

    opt = precond.Shampoo([torch.nn.Parameter(torch.zeros(3, 2))])
    assert tuple(opt.counters) == registry.COUNTERS
    state = precond_jax.shampoo().init({"w": jnp.zeros((3, 2))})
    assert set(precond_jax.counters(state)) == set(registry.COUNTERS) | set(registry.TRACED_ERRORS)
    assert set(registry.REFRESH_COUNTERS) <= set(registry.COUNTERS)
