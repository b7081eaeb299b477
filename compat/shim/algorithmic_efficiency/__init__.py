"""``algorithmic_efficiency``, the AlgoPerf package's name before it became ``algoperf`` (v0.5-era submissions
import ``from algorithmic_efficiency import spec``): every ``algorithmic_efficiency.X`` is the very module
``algoperf.X`` (the real package when installed, else the stand-in), so classes and enums are shared, not copied.
Used only when the real ``algorithmic_efficiency`` is not installed."""

import importlib
import importlib.abc
import importlib.util
import sys

import algoperf as _algoperf

__version__ = getattr(_algoperf, "__version__", None)


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``algorithmic_efficiency.X`` and loads it as the module ``algoperf.X`` itself."""

    def find_spec(self, name, path=None, target=None):
        if name.startswith(__name__ + "."):
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return importlib.import_module("algoperf" + spec.name[len(__name__) :])

    def exec_module(self, module):
        pass  # already executed as algoperf's


if not any(isinstance(f, _Alias) for f in sys.meta_path):
    sys.meta_path.insert(0, _Alias())
