"""QM9 (PyPI ``qm9pack``, read from its CSVs: importing the package fails): 130,831 small organic molecules
with DFT geometries and properties.

Graphs: every atom is a node (element H, C, N, O or F); two atoms are joined, in both directions, when their
distance is under 1.2 times the sum of their covalent radii (a bond). Labels: 12 binary tasks, each property of
QM9's standard twelve above its training-split median. A molecule belongs to one split by the CRC32 of its InChI
without stereo layers (mod 10: 8 is validation, 9 is test, the rest train), so stereoisomers share a split.
"""

import json
import os
import re
import zlib

import numpy as np

from workloads import sources
from workloads.cache import cached_arrays

ELEMENTS = ("H", "C", "N", "O", "F")
COVALENT_RADIUS = {"H": 0.31, "C": 0.76, "N": 0.71, "O": 0.66, "F": 0.57}  # angstrom
BOND_TOLERANCE = 1.2
PROPERTIES = (
    "Dipole_debye",
    "Polarizability_bohr3",
    "HOMO_au",
    "LUMO_au",
    "HOMO_LUMO_gap_au",
    "R2_bohr2",
    "ZPVE_au",
    "InternalEnergy_0K_au",
    "InternalEnergy_298K_au",
    "Enthalphy_298K_au",
    "GibbsFreeEnergy_298K_au",
    "Heatcapacity_Cv_cal_mol_K",
)
NUMBER = re.compile(r"[^\[\],\s]+")
PARTS = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")
SPLIT_OF_BUCKET = {8: "validation", 9: "test"}
HOW_TO_GET = "run `make data` (pip install --no-deps qm9pack==1.0.3) or pass --data_dir holding qm9_part{1,2,3}.csv"


def find(data_dir: str = "") -> list[str]:
    return [sources.locate("qm9", p, data_dir, packages=(("qm9pack", "data"),), how_to=HOW_TO_GET) for p in PARTS]


def constitution_key(inchi: str) -> str:
    """The InChI's formula, connectivity (/c) and hydrogen (/h) layers: equal for stereoisomers."""
    layers = inchi.split("/")
    return "/".join(layers[:2] + [x for x in layers[2:] if x[:1] in ("c", "h")])


def bonds(elements: list[str], xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(senders, receivers, distances) of both directions of every bond of one molecule."""
    radius = np.array([COVALENT_RADIUS[e] for e in elements])
    dist = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
    bonded = (dist < BOND_TOLERANCE * (radius[:, None] + radius[None])) & ~np.eye(len(elements), dtype=bool)
    s, r = np.nonzero(bonded)
    return s, r, dist[s, r]


def load(data_dir: str = "") -> dict[str, np.ndarray]:
    """Per split: 'atoms' int8 element indices, 'atom_offsets' (M+1,), 'senders'/'receivers' int8 atom indices
    within their molecule, 'distances' float32, 'bond_offsets' (M+1,), 'labels' uint8 (M, 12)."""
    paths = find(data_dir)
    key = "qm9-" + "-".join(str(os.stat(p).st_size) for p in paths)
    return cached_arrays("qm9_gnn", key, lambda: _build(paths), __file__)


def _build(paths: list[str]) -> dict[str, np.ndarray]:
    import pandas as pd

    columns = ["Index", "InChi", "Elements", "XYZ_Ang", *PROPERTIES]
    df = pd.concat([pd.read_csv(p, usecols=columns) for p in paths]).sort_values("Index", kind="stable")
    split = np.array([SPLIT_OF_BUCKET.get(zlib.crc32(constitution_key(i).encode()) % 10, "train") for i in df["InChi"]])
    props = df[list(PROPERTIES)].to_numpy(np.float64)
    labels = (props > np.median(props[split == "train"], axis=0)).astype(np.uint8)
    graphs = []
    for elements_text, xyz_text in zip(df["Elements"], df["XYZ_Ang"], strict=True):
        elements = json.loads(elements_text.replace("'", '"'))
        xyz = np.array(NUMBER.findall(xyz_text), dtype=np.float64).reshape(-1, 3)  # "0." is not JSON
        graphs.append((elements, bonds(elements, xyz)))
    code = {e: i for i, e in enumerate(ELEMENTS)}
    out = {}
    for name in ("train", "validation", "test"):
        chosen = [g for g, s in zip(graphs, split, strict=True) if s == name]
        out[f"{name}_atoms"] = np.array([code[e] for elements, _ in chosen for e in elements], dtype=np.int8)
        out[f"{name}_atom_offsets"] = np.cumsum([0] + [len(e) for e, _ in chosen]).astype(np.int64)
        out[f"{name}_senders"] = np.concatenate([b[0] for _, b in chosen]).astype(np.int8)
        out[f"{name}_receivers"] = np.concatenate([b[1] for _, b in chosen]).astype(np.int8)
        out[f"{name}_distances"] = np.concatenate([b[2] for _, b in chosen]).astype(np.float32)
        out[f"{name}_bond_offsets"] = np.cumsum([0] + [len(b[0]) for _, b in chosen]).astype(np.int64)
        out[f"{name}_labels"] = labels[split == name]
    return out
