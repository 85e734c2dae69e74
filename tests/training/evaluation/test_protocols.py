"""Hafner et al. (CVIU 2022, Sec. 4.3) protocol on synthetic feature sets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reidstream.training.evaluation.protocols import (
    FeatureSet,
    aggregate,
    aggregate_scenarios,
    cross_modal_evaluation,
    hafner_protocol,
    single_modal_evaluation,
)


def _features(modality, emb, pids, keys=None):
    n = len(pids)
    return FeatureSet(np.asarray(emb, dtype=np.float32), np.asarray(pids), np.zeros(n, dtype=int),
                      np.arange(n) if keys is None else np.asarray(keys), modality)


def _pair(noise=0.5, ids=12, per=6, seed=0):
    rng = np.random.default_rng(seed)
    pids = np.repeat(np.arange(ids), per)
    centres = rng.normal(size=(ids, 16))
    rgb = _features("rgb", centres[pids] + noise * rng.normal(size=(len(pids), 16)), pids)
    depth = _features("depth", centres[pids] + 2 * noise * rng.normal(size=(len(pids), 16)), pids)
    return rgb, depth


@pytest.mark.parametrize("field, change", [
    ("pids", lambda n: np.zeros(n - 1, dtype=int)),
    ("camids", lambda n: np.zeros(n, dtype=float)),
    ("keys", lambda n: np.zeros((n, 1), dtype=int)),
    ("embeddings", lambda n: np.full((n, 4), np.nan)),
    ("embeddings", lambda n: np.zeros((n, 4), dtype=int)),
    ("modality", lambda n: ""),
])
def test_feature_set_validates_fields(field, change):
    fields = {"embeddings": np.zeros((3, 4)), "pids": np.arange(3), "camids": np.zeros(3, dtype=int),
              "keys": np.arange(3), "modality": "rgb"}
    fields[field] = change(3)
    with pytest.raises(ValueError, match=f"FeatureSet.{field}"):
        FeatureSet(**fields)


def test_protocol_result_structure_is_json_serialisable():
    rgb, depth = _pair()
    res = hafner_protocol(rgb, depth, repeats=4)
    json.dumps(res)
    assert res["query"] == "rgb" and res["gallery"] == "depth"
    assert (res["num_query"], res["num_gallery"], res["num_identities"], res["repeats"]) == (72, 72, 12, 4)
    assert res["num_skipped_queries"] == 0
    for k in ("rank-1", "rank-5", "rank-10", "mAP"):
        # 6 images per person, at most 20 drawn: the mAP gallery is the same every time, one value
        assert set(res[k]) == {"mean", "std", "values"} and len(res[k]["values"]) == (1 if k == "mAP" else 4)
        assert 0 <= res[k]["mean"] <= 100
        assert res[k]["mean"] == pytest.approx(np.mean(res[k]["values"]))
    assert len(res["cmc"]) == 20 and np.all(np.diff(res["cmc"]) >= 0)
    assert len(hafner_protocol(rgb, depth, repeats=4, max_per_identity=2)["mAP"]["values"]) == 4  # drawn
    assert res["rank-1"]["mean"] <= res["rank-5"]["mean"] <= res["rank-10"]["mean"]
    assert len(hafner_protocol(rgb, depth, repeats=2, ranks=(1, 25))["cmc"]) == 25


def test_protocol_is_deterministic_for_a_seed():
    rgb, depth = _pair(noise=1.5)
    a, b = hafner_protocol(rgb, depth, seed=3), hafner_protocol(rgb, depth, seed=3)
    assert a == b
    assert hafner_protocol(rgb, depth, seed=4)["rank-1"]["values"] != a["rank-1"]["values"]


def test_perfect_embeddings_give_100():
    pids = np.repeat(np.arange(8), 4)
    fs = _features("rgb", np.eye(8)[pids], pids)
    for res in (single_modal_evaluation(fs), hafner_protocol(fs, fs, max_per_identity=None)):
        assert res["rank-1"]["mean"] == 100 and res["mAP"]["mean"] == 100


def test_identical_image_is_excluded_in_single_modal():
    rng = np.random.default_rng(0)
    pids = np.repeat(np.arange(40), 4)
    res = single_modal_evaluation(_features("depth", rng.normal(size=(160, 32)), pids), repeats=10)
    assert res["rank-1"]["mean"] < 10  # chance is 2.5 %; matching itself would give ~25 % (100 % for mAP)
    assert res["mAP"]["mean"] < 20


def test_paired_image_is_excluded_across_modalities():
    rng = np.random.default_rng(1)
    pids = np.repeat(np.arange(40), 4)
    emb = rng.normal(size=(160, 32))
    rgb, depth = _features("rgb", emb, pids), _features("depth", emb, pids)  # same key, same embedding
    paired = hafner_protocol(rgb, depth)
    unpaired = hafner_protocol(rgb, _features("depth", emb, pids, keys=np.arange(160) + 1000))
    assert paired["mAP"]["mean"] < 12 and paired["rank-1"]["mean"] < 6  # chance: rank-1 2.5 %
    assert unpaired["mAP"]["mean"] > 25 and unpaired["rank-1"]["mean"] > 20  # the pair sits at distance 0


def test_cross_modal_evaluation_runs_both_directions():
    rgb, depth = _pair()
    res = cross_modal_evaluation({"rgb": rgb, "depth": depth}, repeats=3)
    assert list(res) == ["Q:rgb G:depth", "Q:depth G:rgb"]
    assert res["Q:depth G:rgb"]["query"] == "depth"
    with pytest.raises(ValueError, match="features"):
        cross_modal_evaluation({"rgb": rgb})
    with pytest.raises(ValueError, match=r"features\['depth'\]"):
        cross_modal_evaluation({"rgb": rgb, "depth": rgb})


def test_aggregate_pools_repeats_across_folds():
    rgb, depth = _pair(noise=1.0)
    folds = [hafner_protocol(rgb, depth, repeats=3, seed=s) for s in (0, 1)]
    agg = aggregate(folds)
    json.dumps(agg)
    assert agg["folds"] == 2 and agg["num_query"] == 72 and agg["seed"] == [0, 1]
    for k in ("rank-1", "rank-5", "rank-10", "mAP"):
        pooled = folds[0][k]["values"] + folds[1][k]["values"]
        assert agg[k]["values"] == pooled
        assert agg[k]["mean"] == pytest.approx(np.mean(pooled))
        assert agg[k]["std"] == pytest.approx(np.std(pooled))
        assert agg[k]["fold_means"] == [folds[0][k]["mean"], folds[1][k]["mean"]]
    np.testing.assert_allclose(agg["cmc"], (np.array(folds[0]["cmc"]) + folds[1]["cmc"]) / 2)
    with pytest.raises(ValueError, match="results"):
        aggregate([folds[0], hafner_protocol(depth, rgb, repeats=3)])
    with pytest.raises(ValueError, match="results"):
        aggregate([])


def test_aggregate_scenarios():
    rgb, depth = _pair()
    runs = [cross_modal_evaluation({"rgb": rgb, "depth": depth}, repeats=2, seed=s) for s in range(3)]
    agg = aggregate_scenarios(runs)
    assert set(agg) == {"Q:rgb G:depth", "Q:depth G:rgb"}
    assert agg["Q:rgb G:depth"]["folds"] == 3 and len(agg["Q:rgb G:depth"]["rank-1"]["values"]) == 6
    assert len(agg["Q:rgb G:depth"]["mAP"]["values"]) == 3  # one per fold: nothing drawn at random
