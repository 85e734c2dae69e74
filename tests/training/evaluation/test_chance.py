"""Chance levels of the VI protocols: exact formulas against every permutation, and in the protocols' results."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from reidstream.training.evaluation.chance import chance_cmc_identities, chance_cmc_images, chance_map
from reidstream.training.evaluation.metrics import average_precision
from reidstream.training.evaluation.protocols import FeatureSet
from reidstream.training.evaluation.vi_protocols import regdb_evaluation, sysu_evaluation


def _every_order(g_pids, query_pid):
    """All orders of the gallery, as hit lists of ``query_pid``."""
    for order in itertools.permutations(range(len(g_pids))):
        yield np.array([g_pids[i] == query_pid for i in order])


@pytest.mark.parametrize("g_pids", [[0, 1, 2, 3, 4], [0, 0, 1, 2, 3, 4], [0, 0, 0, 1, 1, 2]])
def test_chance_map_and_image_cmc_equal_the_mean_over_every_order(g_pids):
    hits = list(_every_order(g_pids, 0))
    expected_ap = np.mean([average_precision(h) for h in hits])
    first = np.array([np.flatnonzero(h)[0] + 1 for h in hits])
    expected_cmc = [(first <= k).mean() for k in range(1, len(g_pids) + 1)]
    assert chance_map([0], g_pids) == pytest.approx(expected_ap, abs=1e-12)
    assert chance_cmc_images([0], g_pids, max_rank=len(g_pids)) == pytest.approx(expected_cmc, abs=1e-12)


def test_exclusions_shrink_the_gallery_and_queries_without_a_match_are_skipped():
    g = [0, 1, 2, 3]
    exclude = np.array([[False, True, True, False], [False, False, False, False], [True, True, True, True]])
    # query 0 sees {0, 3}: AP = (1 + 1/2) / 2; query 1 (pid 9) and query 2 (sees nothing) have no match
    assert chance_map([0, 9, 0], g, exclude) == pytest.approx(0.75)
    assert chance_cmc_images([0, 9, 0], g, exclude, max_rank=3) == pytest.approx([0.5, 1.0, 1.0])
    with pytest.raises(ValueError, match="no query has an admissible true match"):
        chance_map([9], g)
    with pytest.raises(ValueError, match=r"exclude: expected shape \(1, 4\)"):
        chance_map([0], g, np.zeros((2, 4), bool))


def test_identity_cmc_counts_identities_with_more_images_first_more_often():
    # query 0 with one image against identity 1 with three: random distances put 1 first 3 times in 4
    curve = chance_cmc_identities([0], [0, 1, 1, 1], max_rank=2, draws=4000, rng=np.random.default_rng(1))
    assert curve[0] == pytest.approx(0.25, abs=0.03) and curve[1] == 1.0
    # equal image counts: rank k is k / n
    g = np.repeat(np.arange(8), 2)
    curve = chance_cmc_identities(np.arange(8), g, max_rank=8, draws=200)
    assert curve == pytest.approx(np.arange(1, 9) / 8, abs=0.03)
    with pytest.raises(ValueError, match="draws: expected a positive integer"):
        chance_cmc_identities([0], [0], draws=0)


def _random_sysu(ids=12, seed=0):
    rng = np.random.default_rng(seed)

    def make(cams, mod, per_cam):
        pids = np.repeat(np.arange(ids), len(cams) * per_cam)
        camids = np.tile(np.repeat(cams, per_cam), ids)
        keys = np.arange(len(pids)) + (0 if mod == "rgb" else 10**6)
        return FeatureSet(rng.normal(size=(len(pids), 16)), pids, camids, keys, mod)

    return {"rgb": make((1, 2, 4, 5), "rgb", 3), "ir": make((3, 6), "ir", 3)}


@pytest.mark.parametrize("mode, shots", [("all", 1), ("indoor", 10)])
def test_sysu_results_carry_the_chance_that_random_embeddings_score(mode, shots):
    """Random embeddings, over many seeds, score the chance level the protocol reports beside them."""
    runs = [sysu_evaluation(_random_sysu(seed=s), mode=mode, shots=shots, trials=2, seed=s) for s in range(40)]
    for key in ("Q:ir G:rgb", "Q:rgb G:ir"):
        chance = runs[0][key]["chance"]
        assert set(chance) == {"mAP", "rank-1", "cmc"} and len(chance["cmc"]) == 20
        assert chance["rank-1"] == chance["cmc"][0] and chance["cmc"][-1] == pytest.approx(100.0)
        measured_map = np.mean([r[key]["mAP"]["mean"] for r in runs])
        measured_r1 = np.mean([r[key]["rank-1"]["mean"] for r in runs])
        assert measured_map == pytest.approx(chance["mAP"], abs=2.0), key
        assert measured_r1 == pytest.approx(chance["rank-1"], abs=3.0), key
        # 12 identities with equal image counts: about 1 in 12 at rank 1, all pairs of a 12-identity gallery
        assert chance["rank-1"] == pytest.approx(100 / 12, abs=2.0)


def test_regdb_chance_by_hand():
    trial = {"rgb": FeatureSet(np.array([[0.1], [0.2], [0.5]]), np.array([7, 7, 3]), np.zeros(3, int),
                               np.arange(3), "rgb"),
             "thermal": FeatureSet(np.array([[0.0]]), np.array([3]), np.ones(1, int), np.array([9]), "thermal")}
    r = regdb_evaluation([trial, trial], ranks=(1, 2, 3))
    q_thermal = r["Q:thermal G:rgb"]["chance"]
    # one true match among three gallery images: rank-1 1/3, rank-2 2/3, AP = H_3 / 3
    assert q_thermal["rank-1"] == pytest.approx(100 / 3) and q_thermal["cmc"][:3] == pytest.approx([100 / 3, 200 / 3,
                                                                                                    100.0])
    assert q_thermal["mAP"] == pytest.approx(100 * (1 + 1 / 2 + 1 / 3) / 3)
    # visible queries: only the pid-3 query has a match (one thermal image): certain at rank 1
    q_rgb = r["Q:rgb G:thermal"]["chance"]
    assert q_rgb["rank-1"] == 100.0 and q_rgb["mAP"] == 100.0
