"""Load an AlgoPerf submission module by path and check that it honours the API."""

import importlib
import importlib.util
import inspect
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from common import search_space as ss
from common.errors import UsageError

REQUIRED = ("get_batch_size", "init_optimizer_state", "update_params", "data_selection")
# Top-level packages that tell which framework a submission's code is written for.
_FRAMEWORK_OF_PACKAGE = {"torch": "pytorch", "jax": "jax", "jaxlib": "jax", "flax": "jax", "optax": "jax"}


@dataclass(frozen=True)
class Submission:
    """The submission's functions, looked up once."""

    module: ModuleType
    path: str

    @property
    def name(self) -> str:
        return os.path.basename(os.path.dirname(self.path)) or os.path.splitext(os.path.basename(self.path))[0]

    def fn(self, name: str) -> Any:
        return getattr(self.module, name, None)

    @property
    def hyperparameters(self) -> dict[str, ss.Param] | None:
        """The hyperparameters the submission declares (``HYPERPARAMETERS``); None when it declares none."""
        return ss.declared(getattr(self.module, "HYPERPARAMETERS", None), self.path)

    @property
    def update_takes_train_state(self) -> bool:
        return "train_state" in inspect.signature(self.module.update_params).parameters

    def batch_size(self, workload_name: str, base_workload_name: str | None = None) -> int:
        """``get_batch_size``; on ValueError retried with the base workload name, as AlgoPerf does."""
        try:
            return self.module.get_batch_size(workload_name)
        except ValueError:
            if base_workload_name is None or base_workload_name == workload_name:
                raise UsageError(
                    f"submission {self.path} has no batch size for workload {workload_name!r}; "
                    f"add it to get_batch_size()"
                ) from None
            return self.module.get_batch_size(base_workload_name)

    def eval_batch_size(self, workload_name: str, default: int) -> int:
        fn = self.fn("get_eval_batch_size")
        return default if fn is None else fn(workload_name)

    @property
    def frameworks(self) -> set[str]:
        """The frameworks the submission's code uses: what its module, and the modules its API functions are
        defined in (a thin submission over a shared glue), hold at top level."""
        modules = {self.module} | {sys.modules.get(getattr(self.fn(n), "__module__", None)) for n in REQUIRED}
        found = set()
        for module in filter(None, modules):
            for value in vars(module).values():
                origin = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", None)
                if isinstance(origin, str) and origin.split(".")[0] in _FRAMEWORK_OF_PACKAGE:
                    found.add(_FRAMEWORK_OF_PACKAGE[origin.split(".")[0]])
        return found

    def check_framework(self, framework: str) -> None:
        """A submission written for one framework only, run under the other, is one line rather than a traceback
        from deep inside its first step. One that uses both, or neither visibly, is left to run."""
        used = self.frameworks
        if len(used) == 1 and framework not in used:
            (theirs,) = used
            raise UsageError(
                f"submission {self.path} is written for {theirs}, not {framework}; "
                f"pass --framework={theirs} or a {framework} submission (kronbench's: "
                f"submissions/<name>/{'submission_jax.py' if framework == 'jax' else 'submission.py'})"
            )


def load_submission(path: str, framework: str | None = None) -> Submission:
    """Import ``submission.py`` from ``path``; a package-relative import when its folders are packages. With
    ``framework``, a submission written only for the other framework is refused (``Submission.check_framework``)."""
    if not path or not os.path.isfile(path):
        raise UsageError(f"submission file {path!r} not found; pass --submission_path=path/to/submission.py")
    path = os.path.abspath(path)
    module = _import(path)
    missing = [name for name in REQUIRED if not callable(getattr(module, name, None))]
    if missing:
        raise UsageError(
            f"submission {path} lacks required function(s) {', '.join(missing)}; define them as in the AlgoPerf API"
        )
    submission = Submission(module=module, path=path)
    if framework is not None:
        submission.check_framework(framework)
    return submission


def _import(path: str) -> ModuleType:
    try:
        dotted = _dotted_name(path)
        if dotted is not None:
            return importlib.import_module(dotted)
        name = "kronbench_submission_" + str(abs(hash(path)))
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        with _beside(os.path.dirname(path)):
            spec.loader.exec_module(module)
        return module
    except SyntaxError as e:
        raise UsageError(f"submission {path} has a syntax error at line {e.lineno}: {e.msg}; fix it") from None
    except ImportError as e:
        root = _repository_root(path, getattr(e, "name", None))
        fix = f"put its repository root on PYTHONPATH (PYTHONPATH={root})" if root else "install what it needs"
        raise UsageError(f"submission {path} failed to import: {e}; {fix}") from None
    except Exception as e:  # a submission is code: its failure at import is reported, not re-raised as ours
        raise UsageError(f"submission {path} failed at import: {type(e).__name__}: {e}; fix it") from None


@contextmanager
def _beside(folder: str):
    """``folder`` first on ``sys.path`` while the submission imports, so that it can import the modules beside it
    (they stay loaded, under their names, for the trial); taken off after, so that no later import anywhere in the
    process resolves to a file of the user's folder (a ``csv.py`` there would shadow the standard library's)."""
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        sys.path.remove(folder)  # the first occurrence: the entry inserted above


def _repository_root(path: str, missing: str | None) -> str | None:
    """The folder above ``path`` that holds the module ``missing`` (e.g. ``submissions.self_tuning``): the root of
    the submission's own repository, which it imports from, else None."""
    if not missing:
        return None
    folder = os.path.dirname(os.path.abspath(path))
    while os.path.dirname(folder) != folder:
        target = os.path.join(folder, *missing.split("."))
        if os.path.isdir(target) or os.path.isfile(target + ".py"):
            return folder
        folder = os.path.dirname(folder)
    return None


def _dotted_name(path: str) -> str | None:
    """``a.b.submission`` if ``path`` lies in packages under a ``sys.path`` entry and that name imports this very
    file, else None. The top folder may be a namespace package: kronbench's ``submissions`` is one, so that
    another project's ``submissions`` namespace (MLCommons' submissions repository has no ``__init__.py``)
    merges with it instead of being shadowed by it."""
    parts = [os.path.splitext(os.path.basename(path))[0]]
    folder = os.path.dirname(path)
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        parts.insert(0, os.path.basename(folder))
        folder = os.path.dirname(folder)
    roots = {os.path.abspath(p or os.getcwd()) for p in sys.path}
    if len(parts) > 1 and folder not in roots and os.path.dirname(folder) in roots:
        parts.insert(0, os.path.basename(folder))  # a namespace package directly under a sys.path entry
        folder = os.path.dirname(folder)
    if len(parts) == 1 or folder not in roots or not all(p.isidentifier() for p in parts):
        return None
    dotted = ".".join(parts)
    try:
        found = importlib.util.find_spec(dotted)
    except ImportError:  # a parent of that name is some other module
        return None
    if found is None or not found.origin or not os.path.samefile(found.origin, path):
        return None  # the name belongs to another file that comes first on sys.path
    return dotted
