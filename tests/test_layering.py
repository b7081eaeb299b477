"""Imports run only downhill (docs/architecture.md, "Layers").

Every ``import`` and ``from ... import`` of every module of every package, at top level or inside a function,
is read from the source (AST, nothing is executed) and checked against the layer table below. Names resolved at
run time from strings (eval hooks, submissions loaded by path) are not imports and are not edges.
"""

import ast
import os

import pytest

from tests.cli_helpers import ROOT

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

# Bottom-up. A package may import itself and any package in a lower layer; packages in one layer may not
# import each other. ``algoperf`` is the AlgoPerf API, provided by compat's shim when the real package is absent.
LAYERS = [
    ("compat", "algoperf"),
    ("common",),  # user errors, atomic writes, locks, flag checks, search spaces, layout, targets, seeds, threads
    ("precond",),
    ("precond_jax",),  # the JAX core: shares precond's torch-free config and blocking rules, nothing else
    ("workloads",),
    ("submissions",),
    ("runner",),
    (
        "tuning",
        "scoring",
        "diagnostics",
    ),  # side by side: tuning runs trials, scoring reads them, neither knows the other
    ("benchmarks",),  # measures anything below it (calibration draws search-space points)
]
RANK = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}
# precond is the optimizer core, usable on its own: it imports nothing of the harness, not even the API stand-in.
SELF_CONTAINED = {"precond"}

# Uphill imports that exist today and are being removed elsewhere, as (importing file, imported package).
# Delete an entry once its fix is merged: the test fails while an entry here is no longer needed.
KNOWN_UPHILL: set[tuple[str, str]] = set()


def _package_of(path: str) -> str:
    rel = os.path.relpath(path, ROOT)
    parts = rel.split(os.sep)
    if parts[:3] == ["compat", "shim", "algoperf"]:
        return "algoperf"
    return parts[0]


def _imported_packages(path: str):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def _sources():
    for package in RANK:
        top = os.path.join(ROOT, package)
        for folder, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            yield from (os.path.join(folder, f) for f in sorted(files) if f.endswith(".py"))


def import_edges() -> set[tuple[str, str, str]]:
    """(importing file relative to the root, its package, imported first-party package)."""
    edges = set()
    for path in _sources():
        package = _package_of(path)
        for imported in _imported_packages(path):
            if imported in RANK and imported != package:
                edges.add((os.path.relpath(path, ROOT).replace(os.sep, "/"), package, imported))
    return edges


def _uphill(package: str, imported: str) -> bool:
    if package in SELF_CONTAINED:
        return True
    if {package, imported} == {"compat", "algoperf"}:
        return False  # compat provides algoperf
    return RANK[imported] >= RANK[package]


def test_every_package_is_in_the_layer_table():
    on_disk = {
        name
        for name in os.listdir(ROOT)
        if os.path.isdir(os.path.join(ROOT, name))
        and any(f.endswith(".py") for f in os.listdir(os.path.join(ROOT, name)))
    }
    assert on_disk - {"tests"} <= set(RANK), "add the new package to LAYERS (and docs/architecture.md)"


def test_imports_run_only_downhill():
    uphill = {(path, imported) for path, package, imported in import_edges() if _uphill(package, imported)}
    unexpected = sorted(uphill - KNOWN_UPHILL)
    assert not unexpected, "imports against the layering (LAYERS in this file): " + ", ".join(
        f"{path} imports {imported}" for path, imported in unexpected
    )
    stale = sorted(KNOWN_UPHILL - uphill)
    assert not stale, f"delete these fixed entries from KNOWN_UPHILL: {stale}"


@pytest.mark.parametrize(
    "source, package, ok",
    [
        ("from runner.loop import train_once", "tuning", True),
        ("import runner.cli", "tuning", True),
        ("from tuning import search_space", "runner", False),
        ("from scoring import scores", "tuning", False),  # same layer
        ("from diagnostics.kron import approximation_cosines", "runner", False),
        ("from compat import prng", "precond", False),  # precond is self-contained
        ("from algoperf import spec", "compat", True),
        ("from . import glue", "submissions", True),  # relative: within the package
    ],
)
def test_the_checker_reads_imports_as_intended(tmp_path, source, package, ok):
    path = tmp_path / "m.py"
    path.write_text(f"def f():\n    {source}\n")  # inside a function: lazy imports count too
    uphill = [p for p in _imported_packages(str(path)) if p in RANK and p != package and _uphill(package, p)]
    assert (not uphill) == ok
