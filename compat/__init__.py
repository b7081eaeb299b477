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


def ensure_algoperf() -> None:
    """Make ``import algoperf`` work, preferring the real package."""
    if SHIM_DIR not in sys.path and importlib.util.find_spec("algoperf") is None:
        sys.path.append(SHIM_DIR)


ensure_algoperf()
