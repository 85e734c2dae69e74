"""ReIDDataset: items, labels, paired augmentation, determinism, decoding errors, collation."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from reidstream.training.data import CropCapture, folder
from reidstream.training.data.samplers import PKBatchSampler
from reidstream.training.data.torch_data import ReIDDataset, collate, paired_indices
from reidstream.training.data.transforms import Preprocess

H, W = 32, 16


def _capture(pid: int, frame: int, mods=("rgb", "depth")) -> CropCapture:
    """Left half bright and near, right half dark and far: a flip shows in both modalities."""
    kw = {}
    if "rgb" in mods:
        rgb = np.zeros((H, W, 3), np.uint8)
        rgb[:, : W // 2] = 200 + pid
        kw["rgb"] = rgb
    if "depth" in mods:
        depth = np.full((H, W), 7000, np.uint16)
        depth[:, : W // 2] = 1000
        kw["depth"] = depth
    return CropCapture(pid, frame % 2, "", frame, **kw)


@pytest.fixture
def index(tmp_path):
    caps = [_capture(p, f) for p in (3, 5, 9) for f in range(3)]
    caps += [_capture(3, 10, ("rgb",)), _capture(5, 11, ("depth",)), _capture(20, 0)]
    return folder.write(tmp_path, caps, train_ids=[3, 5, 9], test_ids=[20])


PRE = {"rgb": Preprocess("rgb", 16, 8), "depth": Preprocess("depth", 16, 8)}


def test_items_have_shapes_dtypes_and_labels(index):
    paired = [r for r in index.records("train") if r.paired]
    ds = ReIDDataset(paired, ["rgb", "depth"], PRE)
    assert len(ds) == 9 and ds.num_classes == 3
    assert ds.labels == [{3: 0, 5: 1, 9: 2}[p] for p in ds.pids] and ds.camids == [r.camid for r in paired]
    item = ds[4]
    assert set(item) == {"rgb", "depth", "label", "pid", "camid", "index"}
    assert item["rgb"].shape == item["depth"].shape == (3, 16, 8) and item["rgb"].dtype == torch.float32
    assert item["label"].dtype == torch.long and item["label"].ndim == 0 and item["index"] == 4
    assert isinstance(item["pid"], int) and isinstance(item["camid"], int)
    custom = ReIDDataset(paired, ["depth"], PRE, labels={3: 7, 5: 1, 9: 0})
    assert custom.num_classes == 8 and "rgb" not in custom[0]
    with pytest.raises(ValueError, match=r"labels has no class for pids \[9\]"):
        ReIDDataset(paired, ["depth"], PRE, labels={3: 0, 5: 1})
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_records_lacking_a_modality_are_an_error_unless_require_all_is_false(index):
    records = index.records("train")
    with pytest.raises(ValueError, match=r"2 of 11 records lack one of \['rgb', 'depth'\]; the first \(pid 3"):
        ReIDDataset(records, ["rgb", "depth"], PRE)
    ds = ReIDDataset(records, ["rgb", "depth"], PRE, require_all=False)
    assert len(ds) == 11 and len(ds.paired_indices()) == 9 == len(paired_indices(ds, ["rgb", "depth"]))
    lone = [i for i in range(len(ds)) if not ds.has(i, "depth")]
    assert len(lone) == 1 and set(ds[lone[0]]) == {"rgb", "label", "pid", "camid", "index"}
    batch = collate([ds[i] for i in range(len(ds))])
    assert batch["label"].shape == (11,) and batch["rgb"].shape == (10, 3, 16, 8)
    assert batch["depth_mask"].sum() == 10 and batch["rgb_mask"].sum() == 10
    with pytest.raises(ValueError, match="no Preprocess for 'ir'"):
        ReIDDataset(records, ["ir"], PRE)
    with pytest.raises(ValueError, match="must be among"):
        ReIDDataset(records, ["sonar"], PRE)


def test_paired_augmentation_flips_rgb_and_depth_together_and_is_deterministic(index):
    paired = [r for r in index.records("train") if r.paired]
    ds = ReIDDataset(paired, ["rgb", "depth"], PRE, augment=True, seed=5)
    flipped = set()
    for epoch in range(4):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            rgb_left = item["rgb"][0, :, :4].mean() > item["rgb"][0, :, 4:].mean()
            depth_left = item["depth"][0, :, :4].mean() > item["depth"][0, :, 4:].mean()
            assert rgb_left == depth_left
            flipped.add(bool(rgb_left))
    assert flipped == {True, False}
    ds.set_epoch(2)
    a = ds[3]
    torch.manual_seed(123)
    np.random.seed(123)
    b = ds[3]
    assert torch.equal(a["rgb"], b["rgb"]) and torch.equal(a["depth"], b["depth"])
    other = ReIDDataset(paired, ["rgb", "depth"], PRE, augment=True, seed=5)
    other.set_epoch(2)
    assert torch.equal(other[3]["depth"], a["depth"])
    plain = ReIDDataset(paired, ["rgb", "depth"], PRE)
    assert torch.equal(plain[3]["rgb"], torch.from_numpy(plain.load(3)["rgb"]))


def test_undecodable_file_is_named(index):
    paired = [r for r in index.records("train") if r.paired]
    bad = paired[0].path("depth")
    bad.write_bytes(b"not a png")
    ds = ReIDDataset(paired, ["rgb", "depth"], PRE)
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        ds[0]


def test_default_collate_through_a_dataloader_with_the_pk_sampler(index):
    paired = [r for r in index.records("train") if r.paired]
    ds = ReIDDataset(paired, ["rgb", "depth"], PRE, augment=True)
    loader = DataLoader(ds, batch_sampler=PKBatchSampler(ds.labels, p=3, k=2))
    (batch,) = list(loader)
    assert batch["rgb"].shape == (6, 3, 16, 8) and batch["label"].dtype == torch.long
    assert batch["pid"].dtype == torch.int64 and batch["index"].shape == (6,)
    assert sorted(set(batch["label"].tolist())) == [0, 1, 2]
