"""Metrics on hand-made distance matrices whose answers are known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from reidstream.training.evaluation import metrics as m


def test_pairwise_distances_euclidean_and_cosine_match_brute_force():
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(5, 7)) + 3.0, rng.normal(size=(4, 7)) + 3.0
    d = m.pairwise_distances(q, g)
    assert d.shape == (5, 4) and d.dtype == np.float64
    np.testing.assert_allclose(d, np.linalg.norm(q[:, None] - g[None], axis=2), atol=1e-9)
    assert np.allclose(np.diag(m.pairwise_distances(g, g)), 0.0, atol=1e-6)
    c = m.pairwise_distances(q, g, "cosine")
    ref = 1 - (q @ g.T) / np.outer(np.linalg.norm(q, axis=1), np.linalg.norm(g, axis=1))
    np.testing.assert_allclose(c, ref, atol=1e-12)


@pytest.mark.parametrize("args, name", [
    ((np.zeros((2, 3)), np.zeros((2, 4))), "gallery"),
    ((np.zeros(3), np.zeros((2, 3))), "query"),
    ((np.full((1, 2), np.nan), np.zeros((2, 2))), "query"),
])
def test_pairwise_distances_errors_name_the_argument(args, name):
    with pytest.raises(ValueError, match=name):
        m.pairwise_distances(*args)
    with pytest.raises(ValueError, match="metric"):
        m.pairwise_distances(np.zeros((1, 2)), np.zeros((1, 2)), "manhattan")


def test_average_precision_and_inp_of_known_rankings():
    assert m.average_precision(np.array([True, False, True])) == pytest.approx((1 + 2 / 3) / 2)
    assert m.average_precision([False, True]) == pytest.approx(0.5)
    assert m.inverse_negative_penalty([True, False, True, False]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="scores_sorted_matches"):
        m.average_precision([False, False])


def test_single_gallery_shot_rank1_is_two_thirds():
    # one gallery image per identity: the draw is fixed, query 2 is closest to the wrong person
    dist = np.array([[0.1, 0.5, 0.9],
                     [0.5, 0.1, 0.9],
                     [0.9, 0.2, 0.5]])
    cmc = m.cmc_single_gallery_shot(dist, [0, 1, 2], [0, 1, 2], repeats=4, max_rank=3, rng=0)
    assert cmc.shape == (4, 3)
    np.testing.assert_allclose(cmc, [[2 / 3, 1.0, 1.0]] * 4)


def test_ties_count_against_the_query():
    dist = np.array([[0.5, 0.5, 0.7]])
    ranks = m.single_gallery_shot_ranks(dist, [0], [0, 1, 2], repeats=1, rng=0)
    assert ranks.tolist() == [[2]]
    np.testing.assert_allclose(m.cmc_all(np.zeros((1, 3)), [0], [0, 1, 2], max_rank=3), [0, 0, 1])


def test_exclusion_replaces_the_paired_image():
    # gallery: 0 = the query's paired image (distance 0), 1 = same person far away, 2 = other person
    dist = np.array([[0.0, 5.0, 1.0]])
    g_pids = [0, 0, 1]
    exclude = np.array([[True, False, False]])
    cmc = m.cmc_single_gallery_shot(dist, [0], g_pids, exclude=exclude, repeats=20, max_rank=2, rng=0)
    np.testing.assert_allclose(cmc, [[0.0, 1.0]] * 20)  # never rank 1, never skipped
    free = m.cmc_single_gallery_shot(dist, [0], g_pids, repeats=20, max_rank=2, rng=0)
    assert 0 < free[:, 0].mean() < 1  # without exclusion the paired image is drawn in some repeats


def test_queries_without_admissible_match_are_skipped():
    dist = np.array([[0.0, 1.0], [0.3, 0.2], [0.1, 0.2]])
    exclude = np.array([[True, False], [False, False], [False, False]])
    ranks = m.single_gallery_shot_ranks(dist, [0, 1, 7], [0, 1], exclude=exclude, repeats=2, rng=0)
    assert ranks.tolist() == [[0, 1, 0], [0, 1, 0]]
    np.testing.assert_allclose(m.cmc_from_ranks(ranks, 2), [[1, 1], [1, 1]])
    with pytest.raises(ValueError, match="q_pids"):
        m.cmc_single_gallery_shot(dist[:1], [0], [0, 1], exclude=exclude[:1], rng=0)
    with pytest.raises(ValueError, match="q_pids"):
        m.mean_average_precision(dist[:1], [0], [0, 1], exclude=exclude[:1], rng=0)


def test_map_exclusion_removes_the_paired_image():
    dist = np.array([[0.0, 2.0, 1.0]])
    exclude = np.array([[True, False, False]])
    assert m.mean_average_precision(dist, [0], [0, 0, 1], exclude=exclude, max_per_identity=None)[0] == 0.5
    full = m.mean_average_precision(dist, [0], [0, 0, 1], max_per_identity=None)
    assert full.shape == (1,) and full[0] == pytest.approx((1 + 2 / 3) / 2)


def test_max_per_identity_caps_the_sampled_gallery():
    # 10 wrong images at 0.5 then 10 right ones at 1.0: with a cap of 2 the hits are at ranks 3 and 4
    dist = np.array([[1.0] * 10 + [0.5] * 10])
    g_pids = [0] * 10 + [1] * 10
    capped = m.mean_average_precision(dist, [0], g_pids, max_per_identity=2, repeats=5, rng=1)
    np.testing.assert_allclose(capped, [(1 / 3 + 2 / 4) / 2] * 5)
    full = m.mean_average_precision(dist, [0], g_pids, max_per_identity=None)
    assert full[0] == pytest.approx(np.mean([k / (10 + k) for k in range(1, 11)]))


def _loop_reference(dist, q_pids, g_pids, exclude, keys, cap):
    """Per-query loops over the same random keys: (rank of the drawn true image, AP with ``cap`` per id)."""
    ranks, aps = [], []
    for i in range(len(q_pids)):
        chosen = {}
        for k in np.unique(g_pids):
            cols = [c for c in np.argsort(keys) if g_pids[c] == k and not exclude[i, c]]
            chosen[k] = cols[:cap]
        firsts = {k: dist[i, c[0]] for k, c in chosen.items() if c}
        if q_pids[i] not in firsts:
            ranks.append(0)
            continue
        t = firsts[q_pids[i]]
        ranks.append(1 + sum(v <= t for k, v in firsts.items() if k != q_pids[i]))
        sel = np.array([c for cols in chosen.values() for c in cols])
        match = g_pids[sel] == q_pids[i]
        aps.append(m.average_precision(match[np.lexsort((match, dist[i, sel]))]))
    return ranks, np.mean(aps)


def test_vectorised_sampling_matches_a_loop_reference(monkeypatch):
    rng = np.random.default_rng(3)
    q_pids, g_pids = rng.integers(0, 6, 25), rng.integers(0, 6, 50)
    dist = rng.random((25, 50)).round(1)  # plenty of ties
    exclude = rng.random((25, 50)) < 0.3
    monkeypatch.setattr(m, "_BLOCK", 64)  # force processing in blocks of queries
    ranks = m.single_gallery_shot_ranks(dist, q_pids, g_pids, exclude=exclude, repeats=3, rng=5)
    maps = m.mean_average_precision(dist, q_pids, g_pids, exclude=exclude, max_per_identity=3, repeats=3, rng=5)
    keys = np.random.default_rng(5)
    for r in range(3):
        ref_ranks, ref_map = _loop_reference(dist, q_pids, g_pids, exclude, keys.random(50), 3)
        assert ranks[r].tolist() == ref_ranks
        assert maps[r] == pytest.approx(ref_map)


def test_deterministic_for_a_seed():
    rng = np.random.default_rng(0)
    dist, q, g = rng.random((40, 80)), rng.integers(0, 8, 40), rng.integers(0, 8, 80)
    a = m.cmc_single_gallery_shot(dist, q, g, rng=7)
    np.testing.assert_array_equal(a, m.cmc_single_gallery_shot(dist, q, g, rng=np.random.default_rng(7)))
    assert not np.array_equal(a, m.cmc_single_gallery_shot(dist, q, g, rng=8))
    np.testing.assert_array_equal(m.mean_average_precision(dist, q, g, max_per_identity=3, rng=7),
                                  m.mean_average_precision(dist, q, g, max_per_identity=3, rng=7))


def test_perfect_embeddings_score_one():
    pids = np.repeat(np.arange(10), 5)
    emb = np.eye(10)[pids] * 10
    dist = m.pairwise_distances(emb, emb)
    exclude = np.eye(len(pids), dtype=bool)
    assert (m.cmc_single_gallery_shot(dist, pids, pids, exclude=exclude, rng=0) == 1).all()
    assert (m.mean_average_precision(dist, pids, pids, exclude=exclude, rng=0) == 1).all()
    assert (m.cmc_all(dist, pids, pids, exclude=exclude) == 1).all()
    assert m.minp(dist, pids, pids, exclude=exclude) == 1


def test_random_embeddings_score_at_chance():
    rng = np.random.default_rng(0)
    ids = 50
    q_pids, g_pids = np.repeat(np.arange(ids), 4), np.repeat(np.arange(ids), 4)
    dist = m.pairwise_distances(rng.normal(size=(200, 32)), rng.normal(size=(200, 32)))
    cmc = m.cmc_single_gallery_shot(dist, q_pids, g_pids, repeats=20, rng=1)
    assert cmc[:, 0].mean() == pytest.approx(1 / ids, abs=0.01)
    assert cmc[:, 9].mean() == pytest.approx(10 / ids, abs=0.04)


def test_cmc_all_uses_the_first_correct_match():
    dist = np.array([[0.3, 0.1, 0.2, 0.9],
                     [0.4, 0.1, 0.3, 0.2]])
    # query 0: the closest entry is the wrong person, its match is second; query 1 hits at once
    np.testing.assert_allclose(m.cmc_all(dist, [0, 1], [0, 1, 0, 1], max_rank=3), [0.5, 1.0, 1.0])


@pytest.mark.parametrize("kwargs, name", [
    ({"q_pids": [0]}, "q_pids"),
    ({"g_pids": [0, 1, 2]}, "g_pids"),
    ({"exclude": np.zeros((2, 3), dtype=bool)}, "exclude"),
    ({"exclude": np.zeros((2, 2))}, "exclude"),
    ({"repeats": 0}, "repeats"),
    ({"dist": np.array([[0.0, np.inf], [0.0, 0.0]])}, "dist"),
])
def test_input_errors_name_the_argument(kwargs, name):
    args = {"dist": np.zeros((2, 2)), "q_pids": [0, 1], "g_pids": [0, 1], **kwargs}
    with pytest.raises(ValueError, match=name):
        m.cmc_single_gallery_shot(args.pop("dist"), args.pop("q_pids"), args.pop("g_pids"), rng=0, **args)
    with pytest.raises(ValueError, match="max_per_identity"):
        m.mean_average_precision(np.zeros((1, 1)), [0], [0], max_per_identity=0)
