"""Shipped Hafner et al. splits and resolving an index's records into train / val / test."""

from __future__ import annotations

from pathlib import Path

import pytest

from reidstream.pipeline.types import Modality
from reidstream.training.data import DatasetIndex, Record
from reidstream.training.data.splits import (SPLITS, carve_val, identity_folds, load_split, resolve_split,
                                             split_file, split_identities)


def _index(splits: dict[str, list[int]], per_pid: int = 2) -> DatasetIndex:
    recs = {name: [Record({Modality.RGB: Path(f"/data/{p}_{i}.jpg"), Modality.DEPTH: Path(f"/data/{p}_{i}.png")},
                          p, i % 2, frame=i) for p in pids for i in range(per_pid)]
            for name, pids in splits.items()}
    return DatasetIndex("openreid", "/data/copy", (Modality.RGB, Modality.DEPTH), recs)


@pytest.mark.parametrize("name,sizes,dataset", [("hafner-biwi", (32, 8, 38), "biwi"),
                                                ("hafner-robotpku", (40, 10, 40), "robotpku")])
def test_shipped_splits_have_the_papers_sizes(name, sizes, dataset):
    assert SPLITS[name].is_file() and split_file(name)["dataset"] == dataset
    folds = [load_split(name, f) for f in range(3)]
    for s in folds:
        assert (len(s["train"]), len(s["val"]), len(s["test"])) == sizes
        assert not (s["train"] & s["val"] or s["train"] & s["test"] or s["val"] & s["test"])
        assert s["train"] | s["val"] == folds[0]["train"] | folds[0]["val"]  # the same design set
        assert s["test"] == folds[0]["test"]
    assert len({s["val"] for s in folds}) == 3


def test_biwi_fold_0_matches_the_published_splits_json():
    s = load_split("hafner-biwi")
    assert s["val"] == {1, 4, 11, 26, 59, 69, 73, 76}
    assert {2, 3, 75} <= s["test"] and 0 in s["train"]


def test_bad_name_or_fold_lists_the_allowed_values():
    with pytest.raises(ValueError, match=r"unknown split 'market'.*hafner-biwi.*hafner-robotpku"):
        load_split("market")
    with pytest.raises(ValueError, match=r"fold 3 not available; expected one of \[0, 1, 2\]"):
        load_split("hafner-biwi", 3)
    with pytest.raises(ValueError, match="fold"):
        load_split("hafner-biwi", -1)


def test_resolve_uses_the_index_splits_and_carves_val_reproducibly():
    index = _index({"train": list(range(10)), "test": [20, 21]})
    plain = resolve_split(index)
    assert split_identities(plain) == {"train": set(range(10)), "val": set(), "test": {20, 21}}
    carved = {f: resolve_split(index, val_identities=3, fold=f, seed=1) for f in range(4)}
    for out in carved.values():
        ids = split_identities(out)
        assert len(ids["val"]) == 3 and ids["train"] | ids["val"] == set(range(10)) and not ids["train"] & ids["val"]
        assert len(out["val"]) == 6 and len(out["train"]) == 14
    assert split_identities(resolve_split(index, val_identities=3, fold=2, seed=1)) == split_identities(carved[2])
    assert len({split_identities(out)["val"] for out in carved.values()}) > 1
    other_seeds = {split_identities(resolve_split(index, val_identities=3, seed=s))["val"] for s in range(2, 6)}
    assert other_seeds - {split_identities(carved[0])["val"]}
    with_val = _index({"train": [1, 2, 3], "val": [4], "test": [5]})
    assert split_identities(resolve_split(with_val, val_identities=2))["val"] == {4}  # not carved: val exists
    with pytest.raises(ValueError, match="val_identities: expected 1 .. 9"):
        resolve_split(index, val_identities=10)


def test_named_split_repartitions_all_records_by_pid():
    index = _index({"train": list(range(0, 40)), "test": list(range(40, 78))}, per_pid=1)
    out = resolve_split(index, split="hafner-biwi", fold=1)
    ids = split_identities(out)
    assert ids == dict(load_split("hafner-biwi", 1))
    assert sum(len(v) for v in out.values()) == 78
    partial = _index({"train": list(range(0, 40)), "test": [41, 42]})
    with pytest.raises(ValueError, match=r"lists identities \[40, 43, .*\(36 in all\) that openreid at /data/copy"):
        resolve_split(partial, split="hafner-biwi")
    with pytest.raises(ValueError, match="unknown split"):
        resolve_split(index, split="nope")


def test_index_without_train_split_needs_a_named_split():
    index = _index({"all": [1, 2]})
    with pytest.raises(ValueError, match=r"no 'train' split.*hafner-biwi"):
        resolve_split(index)


def test_identity_folds_and_carve_val():
    folds = identity_folds(range(10), 3, seed=4)
    assert sorted(len(f) for f in folds) == [3, 3, 4] and frozenset().union(*folds) == set(range(10))
    assert folds == identity_folds(reversed(range(10)), 3, seed=4)
    with pytest.raises(ValueError, match="folds"):
        identity_folds([1, 2], 3)
    assert carve_val([5, 6, 7, 8], 2, seed=0, fold=0) == carve_val([8, 7, 6, 5], 2, seed=0, fold=0)
