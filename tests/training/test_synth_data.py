"""reid-synth datasets read back through the real-layout readers with the right counts and splits."""

from __future__ import annotations

import pytest

from reidstream.pipeline.sim.config import SimConfig
from reidstream.pipeline.types import Modality
from reidstream.training.data import LAYOUTS, load_image
from reidstream.training.synth_data import PLANS, write_dataset


@pytest.mark.parametrize("layout", sorted(PLANS))
def test_dataset_reads_back_with_counts_and_disjoint_splits(tmp_path, layout):
    ids, per = 6, 2
    counts = write_dataset(layout, tmp_path / layout, SimConfig(), identities=ids, images_per_camera=per,
                           seed=3, progress=False)
    index = LAYOUTS[layout].read(tmp_path / layout)
    train, test = index.identities("train"), index.identities("test")
    assert len(train) == len(test) == ids // 2
    assert not set(train) & set(test)
    _, sessions = PLANS[layout]
    per_capture = 2 if layout == "regdb" else 1  # RegDB indexes visible and thermal images separately
    for split, people in (("train", train), ("test", test)):
        n_sessions = sum(s.for_train if split == "train" else s.for_test for s in sessions)
        records = index.records(split)
        assert len(records) == counts[split] == len(people) * n_sessions * per * per_capture
        for pid in people:
            assert sum(r.pid == pid for r in records) == n_sessions * per * per_capture
    expected = {"biwi": {Modality.RGB, Modality.DEPTH}, "robotpku": {Modality.RGB, Modality.DEPTH},
                "sysu": {Modality.RGB, Modality.IR}, "regdb": {Modality.RGB, Modality.THERMAL},
                "openreid": {Modality.RGB, Modality.DEPTH}, "folder": set(Modality)}[layout]
    seen = {m for r in index.records("test") for m in r.modalities}
    assert seen == expected
    record = index.records("test")[0]
    for m in record.modalities:
        img = load_image(record, m)
        assert img.shape[0] > img.shape[1] > 20  # a standing person: taller than wide
        if m is Modality.DEPTH:
            valid = img[img > 0]
            assert 3000 < float(valid.mean()) < 7500  # people stand 4-6.5 m from the camera


def test_same_seed_same_split(tmp_path):
    a = write_dataset("regdb", tmp_path / "a", SimConfig(), identities=4, images_per_camera=1, seed=9, progress=False)
    b = write_dataset("regdb", tmp_path / "b", SimConfig(), identities=4, images_per_camera=1, seed=9, progress=False)
    assert a == b
    ra, rb = LAYOUTS["regdb"].read(tmp_path / "a"), LAYOUTS["regdb"].read(tmp_path / "b")
    assert ra.identities("train") == rb.identities("train")


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown layout 'market'"):
        write_dataset("market", tmp_path, SimConfig())
    with pytest.raises(ValueError, match="identities"):
        write_dataset("biwi", tmp_path, SimConfig(), identities=1)
    with pytest.raises(ValueError, match="train_fraction"):
        write_dataset("biwi", tmp_path, SimConfig(), train_fraction=1.0)
