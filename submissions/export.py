"""Export a kronbench submission as a self-contained AlgoPerf submission folder for the leaderboard.

    python -m submissions.export NAME --output_dir DIR [--framework pytorch|jax] [--overwrite]

DIR receives submission.py, tuning_search_space.json, README.md (provenance) and ``_kronbench_<NAME>/``: the
kronbench modules the submission needs (``precond``'s, ``submissions/glue.py`` and ``recipe.py``, the folder's
``options.py``; with ``--framework jax`` the folder's ``submission_jax.py`` becomes submission.py and
``precond_jax`` and ``submissions/glue_jax.py`` come along), found by following its imports, with those imports
rewritten to the private package.
submission.py loads that package from its own folder by path, so the folder runs wherever AlgoPerf's runner imports
it from, with only ``algoperf`` installed. kronbench's ``import compat`` (which only makes ``algoperf`` resolve
inside kronbench) is dropped.
"""

import argparse
import ast
import datetime
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile

from common.errors import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBMISSIONS = os.path.join(ROOT, "submissions")
MARKER = ".kronbench_export"
# kronbench's top-level packages (pyproject.toml): imports of these are vendored, dropped or refused
KRONBENCH_PACKAGES = frozenset(
    {"compat", "common", "precond", "precond_jax", "workloads", "submissions"}
    | {"runner", "tuning", "scoring", "benchmarks", "diagnostics"}
)

LOADER = """
# Exported by kronbench: load the vendored package from this folder by path, so that it resolves however the
# runner imports this file (by module name relative to its working directory, or by path).
import importlib.util as _importlib_util  # noqa: E402
import os as _os  # noqa: E402
import sys as _sys  # noqa: E402

if "{package}" not in _sys.modules:
    _init = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "{package}", "__init__.py")
    _spec = _importlib_util.spec_from_file_location(
        "{package}", _init, submodule_search_locations=[_os.path.dirname(_init)]
    )
    _sys.modules["{package}"] = _importlib_util.module_from_spec(_spec)
    _spec.loader.exec_module(_sys.modules["{package}"])
"""


class ExportError(UsageError):
    """A problem the user can fix; reported as one line."""


def names() -> list[str]:
    return sorted(d for d in os.listdir(SUBMISSIONS) if os.path.isfile(os.path.join(SUBMISSIONS, d, "submission.py")))


def _module_file(module: str) -> str | None:
    base = os.path.join(ROOT, *module.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


SHARED_MODULES = (
    "submissions.glue",
    "submissions.glue_jax",
    "submissions.flops_jax",
    "submissions.recipe",
    "submissions.routing",
)
ENTRIES = {"pytorch": "submission.py", "jax": "submission_jax.py"}  # the submission file of each framework


def _vendored_name(module: str, package: str) -> str | None:
    """Where a kronbench module goes in the export; None for ``compat`` (dropped)."""
    if module == "compat":
        return None
    if module.split(".")[0] in ("precond", "precond_jax", "common"):  # the optimizer cores, the glue's bottom layer
        return f"{package}.{module}"
    if module in SHARED_MODULES:
        return f"{package}.{module.split('.')[1]}"
    if _is_options(module):  # the submission's options (shared with its JAX file)
        return f"{package}.options"
    raise ExportError(
        f"the submission imports {module}, which an export cannot vendor (only precond, precond_jax, common, "
        f"{', '.join(SHARED_MODULES)} and its folder's options); move what it needs into precond or glue"
    )


def _is_options(module: str) -> bool:
    parts = module.split(".")
    return len(parts) == 3 and parts[0] == "submissions" and parts[2] == "options"


def _imported_modules(node: ast.AST) -> list[str]:
    """The kronbench modules an import statement loads (``from P import m`` counts P.m when m is a module)."""
    if isinstance(node, ast.Import):
        found = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        found = [node.module]
        found += [f"{node.module}.{a.name}" for a in node.names if _module_file(f"{node.module}.{a.name}")]
    else:
        return []
    return [m for m in found if m.split(".")[0] in KRONBENCH_PACKAGES and m != "submissions"]


def _rewrite_import(node: ast.AST, package: str, uses_compat: bool) -> str:
    """The statement with kronbench modules pointing into ``package`` ("" when it only imported compat)."""
    if isinstance(node, ast.Import):
        parts = []
        for a in node.names:
            top = a.name.split(".")[0]
            if top not in KRONBENCH_PACKAGES:
                parts.append(f"import {a.name}" + (f" as {a.asname}" if a.asname else ""))
                continue
            target = _vendored_name(a.name, package)
            if target is None and not uses_compat:
                continue
            if target is None or "." in a.name:
                raise ExportError(f"cannot export `import {a.name}`; import from precond or submissions.glue instead")
            parts.append(f"from {package} import {a.name}" + (f" as {a.asname}" if a.asname else ""))
        return "; ".join(parts)
    module = node.module
    aliases = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in node.names)
    if module.split(".")[0] not in KRONBENCH_PACKAGES:
        return f"from {module} import {aliases}"
    if module == "submissions":
        if any(f"submissions.{a.name}" not in SHARED_MODULES for a in node.names):
            raise ExportError(
                f"cannot export `from submissions import {aliases}`; only glue, recipe and routing can be vendored"
            )
        return f"from {package} import {aliases}"
    target = _vendored_name(module, package)
    if target is None:
        raise ExportError(f"cannot export `from {module} import {aliases}`: compat is not vendored")
    return f"from {target} import {aliases}"


def rewrite(source: str, package: str) -> str:
    """``source`` with every kronbench import pointing into ``package`` (lines otherwise untouched)."""
    tree = ast.parse(source)
    uses_compat = any(isinstance(n, ast.Name) and n.id == "compat" for n in ast.walk(tree))
    lines = source.splitlines(keepends=True)
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    for node in sorted(imports, key=lambda n: n.lineno, reverse=True):
        if not _imported_modules(node):
            continue
        first, last = lines[node.lineno - 1], lines[node.end_lineno - 1]
        new = _rewrite_import(node, package, uses_compat)
        tail = last[node.end_col_offset :] if new else "\n"
        lines[node.lineno - 1 : node.end_lineno] = [first[: node.col_offset] + new + tail] if new else []
    return "".join(lines)


def closure(entry: str) -> dict[str, str]:
    """{kronbench module name: file} that ``entry`` imports, directly or not, with their parent packages."""
    found: dict[str, str] = {}
    pending = [entry]
    while pending:
        with open(pending.pop(), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            for module in _imported_modules(node):
                parts = module.split(".")
                for i in range(1, len(parts) + 1):
                    name = ".".join(parts[:i])
                    path = _module_file(name)
                    folder = name.startswith("submissions.") and path and path.endswith("__init__.py")
                    if name not in found and path and name not in ("submissions", "compat") and not folder:
                        found[name] = path
                        pending.append(path)
                        pending.extend(_lazy_submodules(name, path, found))
    return found


def _lazy_submodules(package: str, init: str, found: dict[str, str]) -> list[str]:
    """A package's ``__init__`` may load its modules by name on first use (precond does, to stay importable
    without torch), which no import statement shows: a vendored package therefore takes all its own modules."""
    if os.path.basename(init) != "__init__.py":
        return []
    added = []
    for file in sorted(os.listdir(os.path.dirname(init))):
        name = f"{package}.{file[:-3]}"
        if file.endswith(".py") and file != "__init__.py" and name not in found:
            found[name] = os.path.join(os.path.dirname(init), file)
            added.append(found[name])
    return added


def _provenance(files: list[str]) -> tuple[str, str, str]:
    """(a line per source file with its hash, kronbench's version, the commit)."""
    try:
        version = importlib.metadata.version("kronbench")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown (not installed)"

    def git(*args):
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "HEAD") or "unknown (not a git checkout)"
    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--", *files) else ""
    rows = []
    for path in files:
        with open(os.path.join(ROOT, path), "rb") as f:
            rows.append(f"- `{path}` (sha256 {hashlib.sha256(f.read()).hexdigest()[:16]})")
    return "\n".join(rows), version, commit + dirty


def _readme(name: str, package: str, files: list[str], framework: str) -> str:
    rows, version, commit = _provenance(files)
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    needs = "`torch`" if framework == "pytorch" else "`jax` >= 0.7 and `optax` >= 0.2.2 (AlgoPerf's pins work)"
    return f"""# {name}: a kronbench submission, exported for AlgoPerf ({framework})

Self-contained: it needs only {needs} and AlgoPerf's `algoperf` package. The optimizer code kronbench runs lives
in `{package}/`, a private copy loaded by `submission.py` from this folder.

    python submission_runner.py --framework={framework} --workload=WORKLOAD \\
        --submission_path=PATH/TO/THIS/submission.py \\
        --tuning_search_space=PATH/TO/THIS/tuning_search_space.json ...

## Provenance

- kronbench {version}, commit {commit}
- exported {date} by `python -m submissions.export {name} --framework={framework}`
- source files (imports rewritten to `{package}`; `import compat` dropped):

{rows}
"""


def export(name: str, output_dir: str, overwrite: bool = False, framework: str = "pytorch") -> None:
    if name not in names():
        raise ExportError(f"unknown submission {name!r}; choose one of {', '.join(names())}")
    entry = os.path.join(SUBMISSIONS, name, ENTRIES[framework])
    if not os.path.isfile(entry):
        raise ExportError(f"{name} has no {framework} submission ({ENTRIES[framework]}); export it for pytorch")
    output_dir = os.path.abspath(output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ExportError(f"--output_dir {output_dir} is a file; pass a new or empty folder")
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        if not overwrite:
            raise ExportError(f"--output_dir {output_dir} is not empty; pass a new or empty folder, or --overwrite")
        if not os.path.exists(os.path.join(output_dir, MARKER)):
            raise ExportError(f"--overwrite: {output_dir} is not a kronbench export, so it is left alone; pick another")
    package = f"_kronbench_{name}"
    modules = closure(entry)
    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        _write(staging, name, package, entry, modules, framework)
        if os.path.isdir(output_dir):
            shutil.rmtree(output_dir)
        os.replace(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write(out: str, name: str, package: str, entry: str, modules: dict[str, str], framework: str) -> None:
    def put(relative: str, text: str) -> None:
        path = os.path.join(out, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    def read(path: str) -> str:
        with open(path, encoding="utf-8") as f:
            return f.read()

    put(os.path.join(package, "__init__.py"), f'"""kronbench code vendored for the {name} submission."""\n')
    for module, path in modules.items():
        target = _vendored_name(module, package)
        relative = target.split(".", 1)[1].replace(".", os.sep)
        relative = os.path.join(relative, "__init__.py") if path.endswith("__init__.py") else relative + ".py"
        put(os.path.join(package, relative), rewrite(read(path), package))
    put("submission.py", _with_loader(rewrite(read(entry), package), package))
    space = "tuning_search_space.json"
    shutil.copyfile(os.path.join(SUBMISSIONS, name, space), os.path.join(out, space))
    files = [os.path.relpath(p, ROOT) for p in [entry, *modules.values()]]
    put("README.md", _readme(name, package, files, framework))
    put(MARKER, json.dumps({"submission": name, "package": package, "framework": framework}) + "\n")


def _with_loader(source: str, package: str) -> str:
    """The loader right after the module docstring (before the imports that need the package)."""
    tree = ast.parse(source)
    first = tree.body[0]
    has_docstring = isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str)
    lines = source.splitlines(keepends=True)
    at = first.end_lineno if has_docstring else 0
    return "".join(lines[:at]) + LOADER.format(package=package) + "".join(lines[at:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m submissions.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help=f"one of: {', '.join(names())}")
    parser.add_argument("--output_dir", required=True, help="a new or empty folder")
    parser.add_argument("--framework", choices=sorted(ENTRIES), default="pytorch", help="which submission file")
    parser.add_argument("--overwrite", action="store_true", help="replace a previous export in --output_dir")
    args = parser.parse_args(argv)
    try:
        export(args.name, args.output_dir, args.overwrite, args.framework)
    except (ExportError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"exported {args.name} ({args.framework}) to {os.path.abspath(args.output_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
