"""A dependency-light stand-in for the official ``algoperf`` API modules.

Official PyTorch submissions import ``from algoperf import spec`` and
``from algoperf.pytorch_utils import pytorch_setup``. When the real ``algoperf`` package is installed it is
used; otherwise importing this package puts ``compat/shim`` at the *end* of ``sys.path`` so that those
imports resolve to our implementation of the same contract. Every kronbench entry point imports this
package first.
"""

import importlib.util
import os
import sys

SHIM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim")


def real_algoperf_installed() -> bool:
    """True when an ``algoperf`` other than our shim is importable."""
    if SHIM_DIR in sys.path:
        module = sys.modules.get("algoperf")
        if module is not None:
            return not os.path.abspath(module.__file__).startswith(SHIM_DIR)
        sys.path.remove(SHIM_DIR)
        try:
            return importlib.util.find_spec("algoperf") is not None
        finally:
            sys.path.append(SHIM_DIR)
    return importlib.util.find_spec("algoperf") is not None


def ensure_algoperf() -> None:
    """Make ``import algoperf`` work, preferring the real package."""
    if SHIM_DIR not in sys.path and importlib.util.find_spec("algoperf") is None:
        sys.path.append(SHIM_DIR)


ensure_algoperf()
