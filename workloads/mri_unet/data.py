"""Axial slices of real T1 MRI volumes (Debian ``mricron-data``, read with ``nibabel``) and their simulated
4x Cartesian-undersampled k-space (the fastmri family).

Volumes: ``ch2`` (1 mm) and ``ch2better`` (0.5 mm), two scans of one head in MNI space, and ``inia19-t1-brain``
(a macaque template). Each volume is scaled to [0, 1] by its maximum; axial slices with under 10% of pixels
above a tenth of that are skipped; a slice is padded to a square and area-resized to 64x64.

Splits follow physical position so that neighbouring slices never straddle splits: a slice's world z (mm,
from the volume's affine) falls in a 10 mm slab, and slab index mod 5 decides (1 is validation, 3 is test, the
rest train); slices within 2 mm of a slab of another split are dropped. The two ch2 scans share coordinates, so
one anatomy is never in two splits.

k-space: the 2-D FFT of the slice; each slice has its own fixed mask (seeded by its position in the dataset)
that keeps the central 8% of phase-encoding columns and random others up to a quarter of all columns (AlgoPerf's
fastmri uses 4x, 8% centre). Inputs are the magnitude of the zero-filled inverse FFT.
"""

import os
import zlib

import numpy as np
import torch
import torch.nn.functional as F

from workloads import sources
from workloads.cache import cached_arrays

VOLUMES = ("ch2.nii.gz", "ch2better.nii.gz", "inia19-t1-brain.nii.gz")
SYSTEM_PATHS = ("/usr/share/mricron/templates",)
HOW_TO_GET = (
    "run `make data` (apt-get install mricron-data; pip install nibabel==5.4.2) or pass --data_dir with the .nii.gz"
)
SIDE = 64
SLAB_MM, GAP_MM = 10.0, 2.0
SPLIT_OF_SLAB = {1: "validation", 3: "test"}
ACCELERATION, CENTER_FRACTION = 4, 0.08
MIN_CONTENT = 0.10


def find(data_dir: str = "") -> list[str]:
    return [sources.locate("mri", v, data_dir, system=SYSTEM_PATHS, how_to=HOW_TO_GET) for v in VOLUMES]


def split_of_z(z_mm: float) -> str:
    return SPLIT_OF_SLAB.get(int(np.floor(z_mm / SLAB_MM)) % 5, "train")


def slice_split(z_mm: float) -> str | None:
    """The split of a slice at ``z_mm``, or None when a slice of another split lies within GAP_MM."""
    split = split_of_z(z_mm)
    near = (split_of_z(z_mm - GAP_MM), split_of_z(z_mm + GAP_MM))
    return split if all(s == split for s in near) else None


def cartesian_mask(width: int, seed: int) -> np.ndarray:
    """A (width,) 0/1 column mask: the central CENTER_FRACTION columns plus random others, width/ACCELERATION
    columns in all."""
    rng = np.random.default_rng(seed)
    center = int(round(width * CENTER_FRACTION))
    mask = np.zeros(width, dtype=bool)
    start = (width - center + 1) // 2
    mask[start : start + center] = True
    others = rng.choice(np.flatnonzero(~mask), width // ACCELERATION - center, replace=False)
    mask[others] = True
    return mask


def zero_filled(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """|IFFT2(mask * FFT2(image))| for (N, H, W) images and (N, W) column masks (k-space centred by fftshift)."""
    kspace = torch.fft.fftshift(torch.fft.fft2(images.double(), norm="ortho"), dim=(-2, -1))
    kspace = kspace * masks[:, None, :]
    return torch.fft.ifft2(torch.fft.ifftshift(kspace, dim=(-2, -1)), norm="ortho").abs().float()


def square_resize(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape
    n = max(h, w)
    padded = np.zeros((n, n), dtype=np.float32)
    padded[(n - h) // 2 : (n - h) // 2 + h, (n - w) // 2 : (n - w) // 2 + w] = image
    return F.interpolate(torch.from_numpy(padded)[None, None], size=(side, side), mode="area")[0, 0].numpy()


def load(data_dir: str = "") -> dict[str, np.ndarray]:
    """Per split: 'inputs' and 'targets' float32 (N, 64, 64) and 'volume_max' float32 (N,), the maximum of the
    slice's volume (1 after scaling): SSIM's data range, as in fastMRI's evaluation."""
    paths = find(data_dir)
    key = "mri-" + "-".join(str(os.stat(p).st_size) for p in paths) + f"-{SIDE}"
    return cached_arrays("mri_unet", key, lambda: _build(paths), __file__)


def _build(paths: list[str]) -> dict[str, np.ndarray]:
    import nibabel as nib

    slices = {"train": [], "validation": [], "test": []}
    for path in paths:
        image = nib.load(path)
        volume = np.asarray(image.dataobj, dtype=np.float32)
        volume /= volume.max()
        for k in range(volume.shape[2]):
            z_mm = float(nib.affines.apply_affine(image.affine, [0, 0, k])[2])
            split, plane = slice_split(z_mm), volume[:, :, k]
            if split is not None and (plane > 0.1).mean() >= MIN_CONTENT:
                slices[split].append(square_resize(plane, SIDE))
    out = {}
    for name, images in slices.items():
        targets = torch.from_numpy(np.stack(images))
        seeds = [zlib.crc32(f"{name}-{i}".encode()) for i in range(len(images))]
        masks = torch.from_numpy(np.stack([cartesian_mask(SIDE, s) for s in seeds])).double()
        out[f"{name}_inputs"] = zero_filled(targets, masks).numpy()
        out[f"{name}_targets"] = targets.numpy()
        out[f"{name}_volume_max"] = np.ones(len(images), dtype=np.float32)
    return out
