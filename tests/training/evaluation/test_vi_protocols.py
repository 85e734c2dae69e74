"""SYSU-MM01 and RegDB protocols on hand-made features; expected values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from reidstream.training.evaluation.protocols import FeatureSet
from reidstream.training.evaluation.vi_protocols import (
    draw_gallery,
    identity_cmc,
    regdb_evaluation,
    sysu_evaluation,
)


def fs(points, pids, camids, modality: str) -> FeatureSet:
    """1-D (or N-D) embeddings at ``points``."""
    e = np.asarray(points, dtype=float)
    e = e[:, None] if e.ndim == 1 else e
    n = len(e)
    return FeatureSet(e, np.asarray(pids), np.asarray(camids), np.arange(n) + (0 if modality == "rgb" else 1000),
                      modality)


def perfect(ids=4, vis_cams=(1, 2, 4, 5), ir_cams=(3, 6), per_cam=3, dim=8, seed=0):
    """Every image of identity i at centre i plus tiny noise: any correct protocol gives 100 %."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(ids, dim)) * 10

    def make(cams, mod):
        pids = np.repeat(np.arange(ids), len(cams) * per_cam)
        camids = np.tile(np.repeat(cams, per_cam), ids)
        return fs(centres[pids] + 0.01 * rng.normal(size=(len(pids), dim)), pids, camids, mod)

    return {"rgb": make(vis_cams, "rgb"), "ir": make(ir_cams, "ir")}


@pytest.mark.parametrize("mode, shots", [("all", 1), ("all", 10), ("indoor", 1), ("indoor", 10)])
def test_perfect_embeddings_score_100_in_every_setting(mode, shots):
    res = sysu_evaluation(perfect(), mode=mode, shots=shots, trials=3)
    assert set(res) == {"Q:ir G:rgb", "Q:rgb G:ir"}
    for r in res.values():
        for m in ("rank-1", "rank-10", "rank-20", "mAP", "mINP"):
            assert r[m]["mean"] == pytest.approx(100.0) and len(r[m]["values"]) == 3 and r[m]["std"] == 0
        assert len(r["cmc"]) == 20 and r["trials"] == 3 and r["mode"] == mode and r["shots"] == shots
        assert r["num_identities"] == 4 and r["num_skipped_queries"] == 0


def test_same_location_exclusion_both_directions():
    # visible gallery: A@cam2 x=0, B@cam1 x=10, B@cam2 x=1; infrared: A@cam3 x=0, A@cam6 x=0.9, B@cam3 x=0.2
    A, B = 0, 1
    feats = {"rgb": fs([0.0, 10.0, 1.0], [A, B, B], [2, 1, 2], "rgb"),
             "ir": fs([0.0, 0.9, 0.2], [A, A, B], [3, 6, 3], "ir")}
    r = sysu_evaluation(feats, trials=2)["Q:ir G:rgb"]
    # A@cam3: its only true match is in cam2 -> skipped. A@cam6: B@cam2 (0.1) before A (0.9): rank 2,
    # AP = INP = 1/2. B@cam3 sees only B@cam1 (all of cam2 ignored): rank 1, AP = INP = 1.
    # (Without the exclusion, A@cam2 at 0.2 would come first.)
    assert r["num_skipped_queries"] == 1 and r["num_query"] == 3 and r["num_gallery"] == 3
    assert r["rank-1"]["values"] == [50.0, 50.0] and r["rank-10"]["mean"] == 100.0
    assert r["mAP"]["mean"] == pytest.approx(75.0) and r["mINP"]["mean"] == pytest.approx(75.0)
    v = sysu_evaluation(feats, trials=1)["Q:rgb G:ir"]
    # A@cam2 ignores cam3: sees A@cam6 only -> rank 1. B@cam2 sees only A@cam6 -> skipped.
    # B@cam1 sees A@cam6 9.1, B@cam3 9.8, A@cam3 10: rank 2, AP = INP = 1/2.
    assert v["num_skipped_queries"] == 1
    assert v["rank-1"]["mean"] == 50.0 and v["mAP"]["mean"] == pytest.approx(75.0)
    assert v["mINP"]["mean"] == pytest.approx(75.0)


def test_cmc_counts_identities_not_images():
    # IR query of identity 3; gallery: wrong identity 7 three times (cams 1, 4, 5) ahead of the true 3 (cam 2)
    feats = {"rgb": fs([0.1, 0.2, 0.3, 0.5], [7, 7, 7, 3], [1, 4, 5, 2], "rgb"), "ir": fs([0.0], [3], [6], "ir")}
    r = sysu_evaluation(feats, trials=1, ranks=(1, 2, 3), directions=[("ir", "rgb")])["Q:ir G:rgb"]
    assert r["rank-1"]["mean"] == 0.0 and r["rank-2"]["mean"] == 100.0  # 2nd identity, 4th image
    assert r["mAP"]["mean"] == pytest.approx(25.0) and r["mINP"]["mean"] == pytest.approx(25.0)  # image-level
    cmc, skipped = identity_cmc(np.array([[0.1, 0.2, 0.5]]), [3], [7, 7, 3], max_rank=3)
    assert cmc.tolist() == [0.0, 1.0, 1.0] and skipped == 0


def test_indoor_search_uses_only_visible_cameras_1_and_2():
    feats = perfect(ids=3, per_cam=2)
    # a wrong identity right next to every IR query, but only in the outdoor cameras 4 and 5
    ir = feats["ir"]
    decoys = fs(ir.embeddings + 1e-4, (ir.pids + 1) % 3, np.where(ir.camids == 3, 4, 5), "rgb")
    rgb = feats["rgb"]
    feats["rgb"] = FeatureSet(np.concatenate([rgb.embeddings, decoys.embeddings]),
                              np.concatenate([rgb.pids, decoys.pids]), np.concatenate([rgb.camids, decoys.camids]),
                              np.arange(len(rgb) + len(decoys)), "rgb")
    indoor = sysu_evaluation(feats, mode="indoor", trials=2)
    full = sysu_evaluation(feats, mode="all", trials=2)
    assert indoor["Q:ir G:rgb"]["rank-1"]["mean"] == 100.0 and full["Q:ir G:rgb"]["rank-1"]["mean"] < 100.0
    assert indoor["Q:ir G:rgb"]["num_gallery"] == 3 * 2  # one image per identity and camera 1, 2
    assert full["Q:ir G:rgb"]["num_gallery"] == 3 * 4
    assert indoor["Q:rgb G:ir"]["num_query"] == 3 * 2 * 2  # visible queries of cameras 1, 2 only
    assert full["Q:rgb G:ir"]["num_query"] == len(feats["rgb"])


def test_multi_shot_gallery_draws_ten_per_identity_camera():
    feats = perfect(ids=3, per_cam=12)
    few = perfect(ids=3, per_cam=4)
    assert sysu_evaluation(feats, shots=10, trials=1)["Q:ir G:rgb"]["num_gallery"] == 3 * 4 * 10
    assert sysu_evaluation(few, shots=10, trials=1)["Q:ir G:rgb"]["num_gallery"] == 3 * 4 * 4
    assert sysu_evaluation(feats, shots=1, trials=1)["Q:ir G:rgb"]["num_gallery"] == 3 * 4
    pool = feats["rgb"]
    draws = [draw_gallery(pool, 10, np.random.default_rng(t)) for t in range(8)]
    for d in draws:
        groups = {(int(p), int(c)) for p, c in zip(pool.pids[d], pool.camids[d])}
        assert len(d) == len(set(d.tolist())) == 120 and len(groups) == 12
    assert len({tuple(d) for d in draws}) > 1 and set(np.concatenate(draws).tolist()) == set(range(len(pool)))


def test_trials_are_random_but_repeatable():
    rng = np.random.default_rng(1)
    feats = {m: fs(rng.normal(size=(len(f), 4)), f.pids, f.camids, m) for m, f in perfect(ids=6, per_cam=5).items()}
    a = sysu_evaluation(feats, shots=1, trials=5, seed=3)
    assert a == sysu_evaluation(feats, shots=1, trials=5, seed=3)
    assert a["Q:ir G:rgb"]["mAP"]["values"] != sysu_evaluation(feats, trials=5, seed=4)["Q:ir G:rgb"]["mAP"]["values"]
    assert a["Q:ir G:rgb"]["mAP"]["std"] > 0
    vals = a["Q:ir G:rgb"]["rank-1"]["values"]
    assert a["Q:ir G:rgb"]["rank-1"]["mean"] == pytest.approx(np.mean(vals))
    assert a["Q:ir G:rgb"]["rank-1"]["std"] == pytest.approx(np.std(vals))


def test_regdb_both_directions_mean_and_std_over_trials():
    good = {"rgb": fs([0.0, 5.0], [0, 1], [0, 0], "rgb"), "thermal": fs([0.1, 5.1], [0, 1], [1, 1], "thermal")}
    # visible A=0, B=1; thermal A=0.9, B=0.2: every query's wrong identity comes first (rank 2, AP 1/2)
    bad = {"rgb": fs([0.0, 1.0], [0, 1], [0, 0], "rgb"), "thermal": fs([0.9, 0.2], [0, 1], [1, 1], "thermal")}
    res = regdb_evaluation([good, bad])
    assert set(res) == {"Q:rgb G:thermal", "Q:thermal G:rgb"}
    for r in res.values():
        assert r["rank-1"]["values"] == [100.0, 0.0] and r["rank-1"]["mean"] == 50.0 and r["rank-1"]["std"] == 50.0
        assert r["mAP"]["values"] == pytest.approx([100.0, 50.0]) and r["mINP"]["mean"] == pytest.approx(75.0)
        assert r["rank-10"]["mean"] == 100.0 and r["trials"] == 2 and r["num_query"] == 2
    single = regdb_evaluation([bad])["Q:thermal G:rgb"]
    assert single["mAP"]["mean"] == pytest.approx(50.0) and single["mAP"]["std"] == 0.0


def test_regdb_ranks_count_gallery_images():
    trial = {"rgb": fs([0.1, 0.2, 0.5], [7, 7, 3], [0, 0, 0], "rgb"), "thermal": fs([0.0], [3], [1], "thermal")}
    r = regdb_evaluation([trial], ranks=(1, 2, 3))["Q:thermal G:rgb"]
    assert [r[f"rank-{k}"]["mean"] for k in (1, 2, 3)] == [0.0, 0.0, 100.0]  # the standard eval_regdb CMC
    assert r["mAP"]["mean"] == pytest.approx(100 / 3)


def test_bad_arguments_name_themselves():
    feats = perfect(ids=2, per_cam=1)
    with pytest.raises(ValueError, match="mode: expected 'all' or 'indoor'"):
        sysu_evaluation(feats, mode="outdoor")
    with pytest.raises(ValueError, match="shots: expected a positive integer"):
        sysu_evaluation(feats, shots=0)
    with pytest.raises(ValueError, match="trials: expected a positive integer"):
        sysu_evaluation(feats, trials=0)
    with pytest.raises(ValueError, match=r"feats\['ir'\]: expected a FeatureSet with modality 'ir', got nothing"):
        sysu_evaluation({"rgb": feats["rgb"]})
    with pytest.raises(ValueError, match=r"feats\['ir'\].*got 'rgb'"):
        sysu_evaluation({"rgb": feats["rgb"], "ir": feats["rgb"]})
    with pytest.raises(ValueError, match="directions"):
        sysu_evaluation(feats, directions=[("ir", "thermal")])
    wrong_cams = {"rgb": feats["rgb"], "ir": fs(feats["ir"].embeddings, feats["ir"].pids, feats["ir"].camids + 4, "ir")}
    with pytest.raises(ValueError, match=r"no images from cameras \(3, 6\)"):
        sysu_evaluation(wrong_cams)
    with pytest.raises(ValueError, match="metric"):
        sysu_evaluation(feats, metric="manhattan")
    with pytest.raises(ValueError, match="per_trial: expected a non-empty list"):
        regdb_evaluation([])
    with pytest.raises(ValueError, match=r"per_trial\[0\]\['thermal'\]"):
        regdb_evaluation([feats])
    no_match = {"rgb": fs([0.0], [1], [0], "rgb"), "thermal": fs([0.0], [2], [1], "thermal")}
    with pytest.raises(ValueError, match=r"per_trial\[0\]: Q:rgb G:thermal"):
        regdb_evaluation([no_match])
