"""Round trips and error cases of the dataset layouts (reidstream.training.data)."""

from __future__ import annotations

import json
import re
import shutil
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from reidstream.pipeline.types import Modality
from reidstream.training.data import (LAYOUT_MODALITIES, LAYOUTS, CropCapture, DatasetIndex, Record, biwi,
                                      load_image, regdb, robotpku, sysu)

H, W = 32, 16


def _seed(key: tuple) -> int:
    return zlib.crc32(repr(key).encode())


def _smooth(key: tuple, channels: int) -> np.ndarray:
    """A smooth image whose base level is unique to ``key`` (JPEG keeps it within a few levels)."""
    rng = np.random.default_rng(_seed(key))
    base = rng.integers(40, 200, size=channels)
    ramp = np.linspace(0, 30, W)[None, :, None] + np.linspace(0, 20, H)[:, None, None]
    img = np.clip(base[None, None, :] + ramp, 0, 255).astype(np.uint8)
    return img if channels == 3 else img[..., 0]


def _capture(pid: int, camera: int, sequence: str, frame: int, modalities: tuple[str, ...]) -> CropCapture:
    key = (pid, camera, sequence, frame)
    kw = {}
    for m in modalities:
        if m == "rgb":
            kw[m] = _smooth(key + ("rgb",), 3)
        elif m == "depth":
            kw[m] = np.random.default_rng(_seed(key)).integers(0, 8000, (H, W)).astype(np.uint16)
        else:
            kw[m] = _smooth(key + (m,), 1)
    return CropCapture(pid, camera, sequence, frame, **kw)


def _close(a: np.ndarray, b: np.ndarray, tol: float = 4.0) -> bool:
    return a.shape == b.shape and float(np.abs(a.astype(float) - b.astype(float)).mean()) < tol


# ---------------------------------------------------------------- registry and types

def test_registry_lists_the_layouts_with_their_modalities():
    assert set(LAYOUTS) == {"biwi", "robotpku", "sysu", "regdb", "openreid", "folder"}
    for name, module in LAYOUTS.items():
        assert module.NAME == name and callable(module.write) and callable(module.read)
    assert LAYOUT_MODALITIES["biwi"] == LAYOUT_MODALITIES["robotpku"] == (Modality.RGB, Modality.DEPTH)
    assert LAYOUT_MODALITIES["sysu"] == (Modality.RGB, Modality.IR)
    assert LAYOUT_MODALITIES["regdb"] == (Modality.RGB, Modality.THERMAL)
    assert LAYOUT_MODALITIES["openreid"] == (Modality.RGB, Modality.DEPTH)
    assert LAYOUT_MODALITIES["folder"] == tuple(Modality)


def test_crop_capture_validates_fields():
    with pytest.raises(ValueError, match="depth"):
        CropCapture(1, depth=np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="rgb"):
        CropCapture(1, rgb=np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="at least one"):
        CropCapture(1)
    with pytest.raises(ValueError, match="identity"):
        CropCapture(-1, ir=np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="mask"):
        CropCapture(1, depth=np.ones((4, 4), np.uint16), mask=np.ones((3, 3), np.uint8))
    c = CropCapture(2, 1, "Still", 5, rgb=np.zeros((4, 2, 3), np.uint8), depth=np.ones((4, 2), np.uint16))
    assert c.modalities == (Modality.RGB, Modality.DEPTH)
    with pytest.raises(KeyError, match="thermal"):
        c.image("thermal")


def test_dataset_index_rejects_foreign_modalities_and_unknown_splits(tmp_path):
    rec = Record({Modality.IR: tmp_path / "a.jpg"}, 1, 3)
    with pytest.raises(ValueError, match="ir"):
        DatasetIndex("biwi", tmp_path, (Modality.RGB, Modality.DEPTH), {"train": (rec,)})
    index = DatasetIndex("sysu", tmp_path, (Modality.RGB, Modality.IR), {"train": (rec,)})
    assert index.identities("train") == {1} and index.count("train", "rgb") == 0
    with pytest.raises(KeyError, match="no split 'test'"):
        index.records("test")


# ---------------------------------------------------------------- BIWI RGBD-ID

BIWI_SESSIONS = ("Training", "Still", "Walking")


def _biwi_captures():
    return [_capture(p, 0, s, f, ("rgb", "depth")) for p in (1, 2, 3, 4, 5, 6) for s in BIWI_SESSIONS for f in range(3)]


def test_biwi_round_trip_pairs_colour_and_depth(tmp_path):
    caps = _biwi_captures()
    by_key = {(c.identity, c.sequence, c.frame): c for c in caps}
    written = biwi.write(tmp_path / "biwi", caps, train_ids=[1, 2, 3], val_ids=[4], test_ids=[5, 6])
    index = biwi.read(tmp_path / "biwi")
    assert written.counts() == index.counts()
    assert index.identities("train") == {1, 2, 3} and index.identities("val") == {4}
    assert index.identities("test") == {5, 6}
    assert not index.identities("train") & index.identities("test")
    assert len(index) == len(caps) and index.dropped == ()
    for split in index.split_names:
        for rec in index.records(split):
            assert rec.paired and rec.modalities == (Modality.RGB, Modality.DEPTH)
            src = by_key[(rec.pid, rec.sequence, rec.frame)]
            assert rec.camid == BIWI_SESSIONS.index(rec.sequence)
            assert np.array_equal(load_image(rec, "depth"), src.depth)      # lossless 16-bit PGM
            assert _close(load_image(rec, "rgb"), src.rgb)                  # JPEG, same capture
            user = cv2.imread(str(rec.aux["userMap"]), cv2.IMREAD_UNCHANGED)
            assert user.dtype == np.uint8 and np.array_equal(user, (src.depth > 0).astype(np.uint8))
    per = {}
    for rec in index.records("train") + index.records("val") + index.records("test"):
        per[(rec.pid, rec.sequence)] = per.get((rec.pid, rec.sequence), 0) + 1
    assert set(per.values()) == {3} and len(per) == 6 * 3


def test_biwi_files_follow_the_real_naming(tmp_path):
    caps = [c for c in _biwi_captures() if c.identity in (1, 2)]
    biwi.write(tmp_path, caps, train_ids=[1], test_ids=[2])
    folder = tmp_path / "Testing" / "Walking" / "002"
    names = sorted(p.name for p in folder.iterdir())
    pattern = re.compile(r"^002_00000[0-2]-([a-e])_\d+_(rgb\.jpg|depth\.pgm|userMap\.pgm|skel\.txt|groundCoeff\.txt)$")
    assert len(names) == 3 * 5 and all(pattern.match(n) for n in names)
    depth_file = next(folder.glob("*_depth.pgm"))
    header = depth_file.read_bytes()[:20].split(b"\n")
    assert header[0] == b"P5" and header[1] == f"{W} {H}".encode() and header[2] == b"65535"
    doc = json.loads((tmp_path / "splits.json").read_text())
    assert doc["train"] == [1] and doc["test"] == [2] and doc["val"] == []
    assert (tmp_path / "Training" / "001").is_dir() and (tmp_path / "Testing" / "Still" / "001").is_dir()


def test_biwi_read_with_explicit_split_without_split_and_with_missing_depth(tmp_path):
    caps = [c for c in _biwi_captures() if c.identity in (1, 2, 3)]
    biwi.write(tmp_path, caps, train_ids=[1, 2], test_ids=[3])
    explicit = biwi.read(tmp_path, split={"train": [3], "test": [1]})
    assert explicit.identities("train") == {3} and explicit.identities("test") == {1}
    (tmp_path / "splits.json").unlink()
    assert biwi.read(tmp_path).split_names == ("all",)
    victim = next((tmp_path / "Training" / "001").glob("001_000000-b_*_depth.pgm"))
    victim.unlink()
    index = biwi.read(tmp_path)
    assert index.count("all") == len(caps) - 1
    assert any(p.name.startswith("001_000000-a_") for p in index.dropped)
    with pytest.raises(ValueError, match="no paired"):
        biwi.read(tmp_path, split={"train": [9]})


def test_biwi_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="Training"):
        biwi.read(tmp_path)
    (tmp_path / "splits.json").write_text("{not json")
    (tmp_path / "Training" / "001").mkdir(parents=True)
    caps = [_capture(p, 0, "Training", 0, ("rgb", "depth")) for p in (1, 2)]
    with pytest.raises(FileExistsError, match="not empty"):
        biwi.write(tmp_path, caps, train_ids=[1], test_ids=[2])
    with pytest.raises(ValueError, match="no paired BIWI frames"):
        biwi.read(tmp_path)
    biwi.write(tmp_path, caps, train_ids=[1], test_ids=[2], overwrite=True)
    (tmp_path / "splits.json").write_text('{"format": "other", "train": [1]}')
    with pytest.raises(ValueError, match="malformed splits.json"):
        biwi.read(tmp_path)
    with pytest.raises(ValueError, match="sequence 'lobby'"):
        biwi.write(tmp_path / "x", caps + [_capture(1, 0, "lobby", 0, ("rgb", "depth"))], train_ids=[1], test_ids=[2])
    with pytest.raises(ValueError, match="needs both rgb and depth"):
        biwi.write(tmp_path / "x", caps + [_capture(1, 0, "Still", 0, ("rgb",))], train_ids=[1], test_ids=[2])
    with pytest.raises(ValueError, match="given twice"):
        biwi.write(tmp_path / "x", caps + [_capture(1, 3, "Training", 0, ("rgb", "depth"))], train_ids=[1],
                   test_ids=[2])
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------- RobotPKU RGBD-ID

def test_robotpku_round_trip_and_formats(tmp_path):
    caps = [_capture(p, 0, s, f, ("rgb", "depth")) for p in (1, 2, 3, 4) for s in ("still", "walking") for f in range(4)]
    by_key = {(c.identity, c.sequence, c.frame): c for c in caps}
    robotpku.write(tmp_path, caps, train_ids=[1, 2], test_ids=[3, 4])
    index = robotpku.read(tmp_path)
    assert index.identities("train") == {1, 2} and index.identities("test") == {3, 4}
    assert index.count("train", "depth") == 2 * 2 * 4 and index.count("test", "rgb") == 2 * 2 * 4
    for rec in index.records("train") + index.records("test"):
        src = by_key[(rec.pid, rec.sequence, rec.frame)]
        assert rec.camid == ("still", "walking").index(rec.sequence)
        assert rec.path("rgb").parent.name == "color" and rec.path("depth").parent.name == "depth"
        assert rec.path("rgb").stem == rec.path("depth").stem == f"{rec.frame:05d}"
        raw = cv2.imread(str(rec.path("depth")), cv2.IMREAD_UNCHANGED)
        assert raw.dtype == np.uint16 and np.array_equal(raw, src.depth)
        assert _close(load_image(rec, "rgb"), src.rgb)
    (tmp_path / "001" / "still" / "depth" / "00002.png").unlink()
    assert robotpku.read(tmp_path).count("train") == 2 * 2 * 4 - 1
    shutil.rmtree(tmp_path / "002" / "walking" / "depth")
    with pytest.raises(FileNotFoundError, match="depth"):
        robotpku.read(tmp_path)


# ---------------------------------------------------------------- SYSU-MM01

def _sysu_captures():
    return [_capture(p, cam, "", f, ("rgb", "ir")) for p in (1, 2, 3, 7, 11) for cam in range(4) for f in range(2)]


def test_sysu_round_trip_cameras_and_id_files(tmp_path):
    caps = _sysu_captures()
    index = sysu.write(tmp_path, caps, train_ids=[1, 2], val_ids=[3], test_ids=[7, 11])
    assert [(tmp_path / "exp" / f).read_text() for f in ("train_id.txt", "val_id.txt", "test_id.txt")] == \
        ["1,2", "3", "7,11"]
    assert (tmp_path / "exp" / "available_id.txt").read_text() == "1,2,3,7,11"
    assert sysu.read_ids(tmp_path / "exp" / "test_id.txt") == [7, 11]
    assert index.identities("train") == {1, 2} and index.identities("val") == {3}
    assert index.identities("test") == {7, 11}
    for split in index.split_names:
        for rec in index.records(split):
            (m,) = rec.modalities
            cam_folder, pid_folder = rec.path(m).parent.parent.name, rec.path(m).parent.name
            assert cam_folder == f"cam{rec.camid}" and pid_folder == f"{rec.pid:04d}"
            assert re.fullmatch(r"\d{4}\.jpg", rec.path(m).name)
            assert rec.camid in ((3, 6) if m is Modality.IR else (1, 2, 4, 5))
            assert rec.sequence == ("indoor" if rec.camid in (1, 2, 3) else "outdoor")
    # default mapping: capture cameras 0..3 -> rgb cam1,2,4,5 (2 frames each), ir cam3,6 (2 cameras x 2 frames)
    for cam, n in ((1, 2), (2, 2), (4, 2), (5, 2), (3, 4), (6, 4)):
        assert len(list((tmp_path / f"cam{cam}" / "0007").glob("*.jpg"))) == n
    rec = index.records("test", "ir")[0]
    assert cv2.imread(str(rec.path("ir")), cv2.IMREAD_UNCHANGED).shape == (H, W, 3)   # 3-channel like SYSU
    # numbering is in (sequence, frame, camera) order: cam3 of pid 7 holds cameras 0, 2 for frame 0 then 1
    src = {(c.identity, c.camera, c.frame): c for c in caps}
    order = [(7, 0, 0), (7, 2, 0), (7, 0, 1), (7, 2, 1)]
    for n, key in enumerate(order, start=1):
        got = load_image(Record({Modality.IR: tmp_path / "cam3" / "0007" / f"{n:04d}.jpg"}, 7, 3), "ir")
        assert _close(got, src[key].ir)
    got = load_image(Record({Modality.RGB: tmp_path / "cam4" / "0011" / "0002.jpg"}, 11, 4), "rgb")
    assert _close(got, src[(11, 2, 1)].rgb)


def test_sysu_custom_camera_maps_and_rejects_rgb_in_ir_camera(tmp_path):
    caps = [_capture(p, 0, "", 0, ("rgb", "ir")) for p in (1, 2)]
    index = sysu.write(tmp_path / "a", caps, train_ids=[1], test_ids=[2], rgb_cameras={0: 5}, ir_cameras={0: 6})
    assert {r.camid for r in index.records("train")} == {5, 6}
    with pytest.raises(ValueError, match="ir images must go to"):
        sysu.write(tmp_path / "b", caps, train_ids=[1], test_ids=[2], ir_cameras={0: 1})
    assert not (tmp_path / "b").exists()


def test_sysu_errors(tmp_path):
    caps = _sysu_captures()
    sysu.write(tmp_path, caps, train_ids=[1, 2], test_ids=[3, 7, 11])
    (tmp_path / "exp" / "val_id.txt").write_text("1,two")
    with pytest.raises(ValueError, match="val_id.txt"):
        sysu.read(tmp_path)
    (tmp_path / "exp" / "val_id.txt").write_text("")
    (tmp_path / "exp" / "test_id.txt").unlink()
    with pytest.raises(FileNotFoundError, match="test_id.txt"):
        sysu.read(tmp_path)
    (tmp_path / "exp" / "test_id.txt").write_text("2,3")
    with pytest.raises(ValueError, match="share ids"):
        sysu.read(tmp_path)
    (tmp_path / "exp" / "test_id.txt").write_text("3,99")
    with pytest.raises(ValueError, match="id 99"):
        sysu.read(tmp_path)
    (tmp_path / "cam3").rename(tmp_path / "cam3_moved")
    with pytest.raises(FileNotFoundError, match="cam3"):
        sysu.read(tmp_path)
    with pytest.raises(ValueError, match="neither rgb nor ir"):
        sysu.write(tmp_path / "d", caps + [_capture(1, 0, "", 0, ("depth",))], train_ids=[1, 2, 3],
                   test_ids=[7, 11])


# ---------------------------------------------------------------- RegDB

IDX_LINE = re.compile(r"^(Visible|Thermal)/(\d+)/(male|female)_(front|back)_([vt])_(\d{5})_(\d+)\.bmp (\d+)$")


def _regdb_captures():
    return [_capture(p, 0, "back" if f % 2 else "front", f, ("rgb", "thermal")) for p in range(1, 7) for f in range(4)]


def test_regdb_round_trip_idx_files_and_pairing(tmp_path):
    caps = _regdb_captures()
    src = {(c.identity, c.frame): c for c in caps}
    regdb.write(tmp_path, caps, train_ids=[1, 3, 5], test_ids=[2, 4, 6], genders={2: "female"})
    for trial in range(1, 11):
        for split in ("train", "test"):
            for word in ("visible", "thermal"):
                assert (tmp_path / "idx" / f"{split}_{word}_{trial}.txt").is_file()
    lines = (tmp_path / "idx" / "test_thermal_1.txt").read_text().splitlines()
    parsed = [IDX_LINE.match(line) for line in lines]
    assert len(lines) == 3 * 4 and all(parsed)
    assert {int(m[8]) for m in parsed} == {0, 1, 2}                         # labels 0..N-1 per split
    assert all(m[1] == "Thermal" and m[5] == "t" and m[2] == m[7] for m in parsed)
    assert any(m[3] == "female" for m in parsed if m[2] == "2")
    index = regdb.read(tmp_path, trial=1)
    assert index.meta == {"trial": 1}
    assert index.identities("train") == {1, 3, 5} and index.identities("test") == {2, 4, 6}
    assert index.count("train", "rgb") == index.count("train", "thermal") == 12
    by_number = {}
    for rec in index.records("train") + index.records("test"):
        (m,) = rec.modalities
        assert rec.camid == (0 if m is Modality.RGB else 1) and rec.label is not None
        by_number.setdefault(rec.frame, {})[m] = rec
    assert len(by_number) == len(caps) and all(len(v) == 2 for v in by_number.values())
    for pair in by_number.values():
        vis, th = pair[Modality.RGB], pair[Modality.THERMAL]
        assert vis.pid == th.pid and vis.label == th.label and vis.sequence == th.sequence
        matches = [c for c in caps if c.identity == vis.pid and np.array_equal(load_image(vis, "rgb"), c.rgb)]
        assert len(matches) == 1                                               # BMP is lossless
        assert np.array_equal(load_image(th, "thermal"), matches[0].thermal)   # same capture
        assert vis.sequence == ("back" if matches[0].frame % 2 else "front")
        assert src[(matches[0].identity, matches[0].frame)] is matches[0]
    assert cv2.imread(str(th.path("thermal")), cv2.IMREAD_UNCHANGED).shape == (H, W, 3)
    for trial in (2, 10):
        assert regdb.read(tmp_path, trial=trial).identities("test") == {2, 4, 6}


def test_regdb_resplit_trials_keep_sizes_and_disjointness(tmp_path):
    regdb.write(tmp_path, _regdb_captures(), train_ids=[1, 2, 3], test_ids=[4, 5, 6], resplit_trials=True, seed=3)
    assert regdb.read(tmp_path, trial=1).identities("train") == {1, 2, 3}
    trains = []
    for trial in range(2, 11):
        index = regdb.read(tmp_path, trial=trial)
        train, test = index.identities("train"), index.identities("test")
        assert len(train) == len(test) == 3 and not train & test and train | test == set(range(1, 7))
        trains.append(train)
    assert any(t != {1, 2, 3} for t in trains)


def test_regdb_errors(tmp_path):
    caps = _regdb_captures()
    with pytest.raises(ValueError, match="no validation split"):
        regdb.write(tmp_path / "v", caps, train_ids=[1, 2, 3], val_ids=[4], test_ids=[5, 6])
    regdb.write(tmp_path, caps, train_ids=[1, 2, 3], test_ids=[4, 5, 6], trials=2)
    with pytest.raises(FileNotFoundError, match="train_visible_3.txt"):
        regdb.read(tmp_path, trial=3)
    idx = tmp_path / "idx" / "train_thermal_1.txt"
    good = idx.read_text()
    idx.write_text(good + "Thermal/1/broken_line\n")
    with pytest.raises(ValueError, match=r"train_thermal_1.txt:13"):
        regdb.read(tmp_path)
    idx.write_text(good.replace(" 0\n", " 1\n", 1))
    with pytest.raises(ValueError, match="label 1"):
        regdb.read(tmp_path)
    idx.write_text(good)
    first = good.split()[0]
    (tmp_path / first).unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(Path(first).name)):
        regdb.read(tmp_path)


# ---------------------------------------------------------------- shared writer/reader rules

@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_missing_root_raises_file_not_found_naming_it(tmp_path, name):
    with pytest.raises(FileNotFoundError, match="does_not_exist"):
        LAYOUTS[name].read(tmp_path / "does_not_exist")


def _robotpku_captures():
    return [_capture(p, 0, "still", 0, ("rgb", "depth")) for p in (1, 2, 3, 7)]


@pytest.mark.parametrize("name,captures", [("biwi", _biwi_captures), ("robotpku", _robotpku_captures),
                                           ("sysu", _sysu_captures), ("regdb", _regdb_captures)])
def test_writers_refuse_non_empty_target_unless_overwrite(tmp_path, name, captures):
    caps = [c for c in captures() if c.identity in (1, 2, 3, 7)]
    ids = sorted({c.identity for c in caps})
    (tmp_path / "stale.txt").write_text("old")
    with pytest.raises(FileExistsError, match="not empty"):
        LAYOUTS[name].write(tmp_path, caps, train_ids=ids[:2], test_ids=ids[2:])
    assert (tmp_path / "stale.txt").read_text() == "old"
    index = LAYOUTS[name].write(tmp_path, caps, train_ids=ids[:2], test_ids=ids[2:], overwrite=True)
    assert not (tmp_path / "stale.txt").exists()
    assert index.identities("train") == set(ids[:2]) and index.identities("test") == set(ids[2:])


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_writers_validate_identity_sets(tmp_path, name):
    mods = tuple(m.value for m in LAYOUT_MODALITIES[name])
    seq = {"biwi": "Training", "robotpku": "still"}.get(name, "")
    caps = [_capture(p, 0, seq, 0, mods) for p in (1, 2, 3)]
    with pytest.raises(ValueError, match="disjoint"):
        LAYOUTS[name].write(tmp_path / "a", caps, train_ids=[1, 2], test_ids=[2, 3])
    with pytest.raises(ValueError, match=r"identities \[3\].*none of"):
        LAYOUTS[name].write(tmp_path / "b", caps, train_ids=[1], test_ids=[2])
    with pytest.raises(ValueError, match=r"\[9\].*no captures"):
        LAYOUTS[name].write(tmp_path / "c", caps, train_ids=[1, 2], test_ids=[3, 9])
    assert not any((tmp_path / d).exists() for d in "abc")
