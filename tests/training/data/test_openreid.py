"""open-reid layout (Hafner et al.'s colour + ``_depth`` copies): round trip, pairing, real-copy format, errors."""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest

from reidstream.pipeline.types import Modality
from reidstream.training.data import CropCapture, load_image, openreid

H, W = 24, 12


def _capture(pid: int, sequence: str, frame: int) -> CropCapture:
    rng = np.random.default_rng([pid, frame, len(sequence)])
    rgb = np.full((H, W, 3), 40 + 10 * pid, np.uint8) + np.arange(W, dtype=np.uint8)[None, :, None]
    depth = rng.integers(500, 8000, (H, W)).astype(np.uint16)
    return CropCapture(pid, 0, sequence, frame, rgb=rgb, depth=depth)


def _captures(pids=(1, 2, 3, 5, 8, 9)):
    return [_capture(p, s, f) for p in pids for s in ("still", "walking") for f in (0, 3)]


@pytest.fixture
def written(tmp_path):
    caps = _captures()
    index = openreid.write(tmp_path / "biwi", caps, train_ids=[1, 2, 3], val_ids=[5], test_ids=[8, 9])
    return tmp_path / "biwi", caps, index


def test_write_creates_colour_and_depth_copies_in_open_reid_format(written):
    root, caps, index = written
    depth_root = root.with_name("biwi_depth")
    meta = json.loads((root / "meta.json").read_text())
    assert meta["shot"] == "multiple" and meta["num_cameras"] == 2 and len(meta["identities"]) == 10
    assert meta["identities"][0] == [[], []]
    assert meta["identities"][5][1] == ["00000005_01_0000.jpg", "00000005_01_0001.jpg"]
    dmeta = json.loads((depth_root / "meta.json").read_text())
    assert dmeta["identities"][5][1] == ["00000005_01_0000.png", "00000005_01_0001.png"]
    (split,) = json.loads((root / "splits.json").read_text())
    assert split == {"trainval": [1, 2, 3, 5], "train": [1, 2, 3], "val": [5], "query": [8, 9], "gallery": [8, 9]}
    assert sorted(p.name for p in (root / "images").iterdir())[:2] == ["00000001_00_0000.jpg", "00000001_00_0001.jpg"]
    assert (depth_root / "images" / "00000009_01_0001.png").is_file()
    assert index.identities("train") == {1, 2, 3} and index.identities("val") == {5}
    assert index.identities("test") == {8, 9} and index.dropped == ()


def test_read_pairs_colour_and_depth_and_decodes_them(written):
    root, caps, _ = written
    index = openreid.read(root)
    assert index.name == "openreid" and index.modalities == (Modality.RGB, Modality.DEPTH)
    assert len(index) == len(caps) and all(r.paired for s in index.splits.values() for r in s)
    by_key = {(c.identity, c.sequence, c.frame): c for c in caps}
    for r in index.records("test"):
        assert r.paths[Modality.RGB].stem == r.paths[Modality.DEPTH].stem
        assert r.sequence == ("still", "walking")[r.camid]
        c = by_key[(r.pid, r.sequence, (0, 3)[r.frame])]
        np.testing.assert_array_equal(load_image(r, "depth"), c.depth)
        assert np.abs(load_image(r, "rgb").astype(int) - c.rgb).mean() < 3
    assert index.meta["depth_formats"] == [".png"] and index.meta["missing"] == {"rgb": 0, "depth": 0}
    via_depth = openreid.read(root.with_name("biwi_depth"))
    assert via_depth.root == root and len(via_depth) == len(index)


def test_unpaired_and_unlisted_files_are_dropped(written):
    root, caps, _ = written
    lone = root / "images" / "00000002_00_0001.jpg"
    (root.with_name("biwi_depth") / "images" / "00000002_00_0001.png").unlink()
    stray = root / "images" / "notes.txt"
    stray.write_text("x")
    index = openreid.read(root)
    assert len(index) == len(caps) - 1
    assert set(index.dropped) == {lone, stray}
    assert index.meta["missing"] == {"rgb": 0, "depth": 1}


def test_split_file_may_live_in_the_depth_copy_and_meta_in_either(written):
    root, _, _ = written
    depth_root = root.with_name("biwi_depth")
    (root / "splits.json").unlink()
    (root / "meta.json").unlink()
    index = openreid.read(root)
    assert index.meta["split_file"] == str(depth_root / "splits.json")
    assert index.identities("test") == {8, 9}
    (depth_root / "splits.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"splits\.json"):
        openreid.read(root)
    (depth_root / "meta.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"meta\.json"):
        openreid.read(root)


def test_missing_folders_raise_file_not_found_naming_them(written, tmp_path):
    root, _, _ = written
    with pytest.raises(FileNotFoundError, match="nowhere"):
        openreid.read(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="other_depth"):
        openreid.read(root, depth_root=tmp_path / "other_depth")
    (root.with_name("biwi_depth") / "images").rename(tmp_path / "moved")
    with pytest.raises(FileNotFoundError, match="images"):
        openreid.read(root)


def test_malformed_files_raise_value_error_naming_them(written):
    root, _, _ = written
    meta_path = root / "meta.json"
    good = meta_path.read_text()
    meta_path.write_text("{not json")
    with pytest.raises(ValueError, match=re.escape(str(meta_path))):
        openreid.read(root)
    meta = json.loads(good)
    meta["identities"][2][0][0] = "00000003_00_0000.jpg"  # listed under pid 2
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"00000003_00_0000\.jpg.*identities\[2\]\[0\]"):
        openreid.read(root)
    meta_path.write_text(json.dumps({"identities": "oops"}))
    with pytest.raises(ValueError, match="malformed meta.json"):
        openreid.read(root)
    meta_path.write_text(good)
    with pytest.raises(ValueError, match="split_id 4 out of range"):
        openreid.read(root, split_id=4)
    (root / "splits.json").write_text(json.dumps([{"train": [1]}]))
    with pytest.raises(ValueError, match=r"splits\.json: malformed split 0"):
        openreid.read(root)
    (root / "splits.json").write_text(json.dumps([{"train": [1, 2, 3, 4], "query": [8], "gallery": [9]}]))
    with pytest.raises(ValueError, match=r"identities \[4\]"):
        openreid.read(root)


def test_reads_a_copy_shaped_like_the_public_one_with_8_bit_depth(tmp_path):
    """Same .jpg names in both copies, splits.json only in the depth copy, 3-channel 8-bit depth renderings."""
    color, depth = tmp_path / "pku", tmp_path / "pku_depth"
    identities = [[[f"{p:08d}_{c:02d}_{i:04d}.jpg" for i in range(2)] for c in range(2)] for p in range(4)]
    for folder in (color, depth):
        (folder / "images").mkdir(parents=True)
        (folder / "meta.json").write_text(json.dumps({"name": folder.name, "shot": "multiple", "num_cameras": 2,
                                                      "identities": identities}))
        for names in (n for per in identities for n in per):
            for n in names:
                cv2.imwrite(str(folder / "images" / n), np.full((H, W, 3), 128, np.uint8))
    split = {"trainval": [0, 1], "train": [0], "val": [1], "query": [2, 3], "gallery": [2, 3]}
    (depth / "splits.json").write_text(json.dumps([split]))
    index = openreid.read(color)
    assert index.count("train") == index.count("val") == 4 and index.count("test") == 8
    assert index.meta["depth_formats"] == [".jpg"]
    r = index.records("train")[0]
    assert load_image(r, "rgb").shape == (H, W, 3)
    with pytest.raises(ValueError, match=re.escape(str(r.path("depth")))):
        load_image(r, "depth")


def test_write_needs_both_modalities_and_distinct_frames(tmp_path):
    rgb_only = CropCapture(1, rgb=np.zeros((H, W, 3), np.uint8))
    with pytest.raises(ValueError, match="needs both rgb and depth"):
        openreid.write(tmp_path / "a", [rgb_only, _capture(2, "still", 0)], train_ids=[1], test_ids=[2])
    twice = [_capture(1, "still", 0), _capture(1, "still", 0), _capture(2, "still", 0)]
    with pytest.raises(ValueError, match="frame is given twice"):
        openreid.write(tmp_path / "b", twice, train_ids=[1], test_ids=[2])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b_depth").exists()
