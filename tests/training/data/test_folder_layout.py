"""Generic paired-folder layout: round trip, pairing by stem, unpaired records, stem parsing, errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from reidstream.pipeline.types import Modality
from reidstream.training.data import CropCapture, folder, load_image

H, W = 20, 10


def _capture(pid: int, camera: int, sequence: str, frame: int, mods=("rgb", "depth", "ir", "thermal")) -> CropCapture:
    rng = np.random.default_rng([pid, camera, frame])
    kw = {}
    for m in mods:
        if m == "rgb":
            kw[m] = np.full((H, W, 3), 30 + 20 * pid, np.uint8)
        elif m == "depth":
            kw[m] = rng.integers(0, 9000, (H, W)).astype(np.uint16)
        else:
            kw[m] = rng.integers(0, 256, (H, W)).astype(np.uint8)
    return CropCapture(pid, camera, sequence, frame, **kw)


@pytest.fixture
def captures():
    caps = [_capture(p, c, s, f) for p in (1, 2, 3, 4) for c, s in ((0, ""), (1, "walk")) for f in (0, 7)]
    caps.append(_capture(1, 2, "", 9, ("rgb",)))      # unpaired colour-only capture
    caps.append(_capture(4, 3, "", 5, ("thermal",)))  # unpaired thermal-only capture
    return caps


def test_round_trip_pairs_by_stem_and_keeps_camera_sequence_frame(tmp_path, captures):
    index = folder.write(tmp_path, captures, train_ids=[1, 2], val_ids=[3], test_ids=[4])
    assert index.split_names == ("train", "val", "test")
    assert index.modalities == tuple(Modality) and len(index) == len(captures)
    assert (tmp_path / "train" / "1" / "depth" / "c01_walk_000007.png").is_file()
    assert (tmp_path / "test" / "4" / "rgb" / "c00_000000.jpg").is_file()
    by_key = {(c.identity, c.camera, c.sequence, c.frame): c for c in captures}
    for split in index.split_names:
        for r in index.records(split):
            c = by_key[(r.pid, r.camid, r.sequence, r.frame)]
            assert r.modalities == c.modalities
            if Modality.DEPTH in r.paths:
                np.testing.assert_array_equal(load_image(r, "depth"), c.depth)
            for m in ("ir", "thermal"):
                if m in c.modalities:
                    np.testing.assert_array_equal(load_image(r, m), c.image(m))
    assert index.count("train", "rgb") == 9 and index.count("test", "thermal") == 5
    assert index.meta["paired"] == 16


def test_read_selected_modalities(tmp_path, captures):
    folder.write(tmp_path, captures, train_ids=[1, 2], val_ids=[3], test_ids=[4])
    index = folder.read(tmp_path, modalities=["rgb", "depth"])
    assert index.modalities == (Modality.RGB, Modality.DEPTH)
    assert all(set(r.modalities) <= {Modality.RGB, Modality.DEPTH} for s in index.splits.values() for r in s)
    assert index.count("test") == 4  # the thermal-only capture has neither
    with pytest.raises(ValueError, match="must be among"):
        folder.read(tmp_path, modalities=["sonar"])


def test_no_val_folder_without_val_ids_and_user_named_files(tmp_path):
    caps = [_capture(p, 0, "", 0, ("rgb",)) for p in (5, 6)]
    index = folder.write(tmp_path, caps, train_ids=[5], test_ids=[6])
    assert index.split_names == ("train", "test") and not (tmp_path / "val").exists()
    assert index.modalities == (Modality.RGB,)
    own = tmp_path / "train" / "5" / "rgb" / "IMG_0042.png"
    cv2.imwrite(str(own), np.zeros((H, W, 3), np.uint8))
    r = [r for r in folder.read(tmp_path).records("train") if r.paths[Modality.RGB] == own][0]
    assert (r.camid, r.sequence, r.frame) == (0, "", 42)
    assert folder.parse_stem("c03_indoor-2_000011") == (3, "indoor-2", 11)


def test_files_that_do_not_fit_are_dropped(tmp_path):
    caps = [_capture(p, 0, "", 0, ("rgb", "depth")) for p in (1, 2)]
    folder.write(tmp_path, caps, train_ids=[1], test_ids=[2])
    person = tmp_path / "train" / "1"
    strays = [tmp_path / "README.txt", tmp_path / "train" / "bob", person / "color", person / "rgb" / "x.txt",
              person / "depth" / "empty.png"]
    strays[0].write_text("hi")
    strays[1].mkdir()
    strays[2].mkdir()
    strays[3].write_text("x")
    strays[4].write_bytes(b"")
    index = folder.read(tmp_path)
    assert set(index.dropped) == set(strays)
    assert len(index) == 2


def test_errors_name_the_path_and_the_expectation(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        folder.read(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="expected split folders"):
        folder.read(tmp_path / "empty")
    (tmp_path / "empty" / "train").mkdir()
    with pytest.raises(ValueError, match="no images under train/"):
        folder.read(tmp_path / "empty")
    caps = [_capture(p, 0, "", 0, ("rgb",)) for p in (1, 2)]
    folder.write(tmp_path / "a", caps, train_ids=[1], test_ids=[2])
    with pytest.raises(FileNotFoundError, match=r"\['depth'\] files"):
        folder.read(tmp_path / "a", modalities=["rgb", "depth"])
    bad = [CropCapture(1, 0, "in_door", 0, rgb=np.zeros((H, W, 3), np.uint8)), caps[1]]
    with pytest.raises(ValueError, match="sequence 'in_door'"):
        folder.write(tmp_path / "b", bad, train_ids=[1], test_ids=[2])
    with pytest.raises(ValueError, match="given twice"):
        folder.write(tmp_path / "c", [caps[0], caps[0], caps[1]], train_ids=[1], test_ids=[2])
