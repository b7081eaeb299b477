"""A dependency-light stand-in for the official ``algoperf`` API modules.

Official PyTorch submissions import ``from algoperf import spec`` and
``from algoperf.pytorch_utils import pytorch_setup`` (v0.5-era ones ``from algorithmic_efficiency import spec``,
the package's earlier name: an alias of ``algoperf``). When the real ``algoperf`` package is installed it is
used; otherwise importing this package puts ``compat/shim`` at the *end* of ``sys.path`` so that those
imports resolve to our implementation of the same contract. Every kronbench entry point imports this
package first.
"""

import importlib.util
import os
import sys

SHIM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim")


def ensure_algoperf() -> None:
    """Make ``import algoperf`` (and its old name ``algorithmic_efficiency``) work, preferring real packages."""
    if SHIM_DIR in sys.path:
        return
    real_algoperf = importlib.util.find_spec("algoperf") is not None
    if real_algoperf and importlib.util.find_spec("algorithmic_efficiency") is not None:
        return
    if real_algoperf:  # cached first, so the stand-in appended below never shadows it (e.g. an editable install)
        import algoperf  # noqa: F401
    sys.path.append(SHIM_DIR)


ensure_algoperf()
