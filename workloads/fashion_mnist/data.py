"""Real Fashion-MNIST from its IDX files (Debian ``dataset-fashion-mnist``), shared by fashion_resnet and
fashion_vit.

Splits: train = the first 50,000 official training images, validation = the last 10,000 of them, test = the
official 10,000 test images. Fashion-MNIST's training file has no order that neighbouring images share, so a
cut at 50,000 leaks nothing. Search order: ``--data_dir``, then /usr/share/datasets/fashion-mnist.
"""

import gzip
import os

import numpy as np

from workloads import sources
from workloads.cache import cached_arrays

FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}
SYSTEM_PATHS = ("/usr/share/datasets/fashion-mnist",)
HOW_TO_GET = "run `make data` (apt-get install dataset-fashion-mnist) or pass --data_dir holding the IDX .gz files"
NUM_TRAIN = 50_000
MEAN, STD = 0.2860, 0.3530  # of the official training pixels scaled to [0, 1)


def find(data_dir: str = "") -> dict[str, str]:
    return {
        key: sources.locate("fashion-mnist", name, data_dir, system=SYSTEM_PATHS, how_to=HOW_TO_GET)
        for key, name in FILES.items()
    }


def read_idx(path: str) -> np.ndarray:
    """An IDX file: big-endian header (zero, zero, dtype code 0x08 = uint8, ndim), the dims, then the data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()


def load(data_dir: str = "") -> dict[str, np.ndarray]:
    """uint8 images (N, 784) and int64 labels for 'train', 'validation' and 'test'."""
    paths = find(data_dir)
    key = "fashion-" + "-".join(str(os.stat(p).st_size) for p in paths.values())
    return cached_arrays("fashion_mnist", key, lambda: _decode(paths), __file__)


def _decode(paths: dict[str, str]) -> dict[str, np.ndarray]:
    train_x, test_x = (read_idx(paths[k]).reshape(-1, 784) for k in ("train_x", "test_x"))
    train_y, test_y = (read_idx(paths[k]).astype(np.int64) for k in ("train_y", "test_y"))
    return {
        "train_x": train_x[:NUM_TRAIN],
        "train_y": train_y[:NUM_TRAIN],
        "validation_x": train_x[NUM_TRAIN:],
        "validation_y": train_y[NUM_TRAIN:],
        "test_x": test_x,
        "test_y": test_y,
    }
