"""Matching rules of the gallery: open set, cross-modal bridging, optimal assignment, sticky tracks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from reidstream.pipeline.gallery import Gallery
from reidstream.pipeline.gallery.matcher import assign, decide
from reidstream.pipeline.types import Embeddings, Modality

D = 64


def unit(x) -> np.ndarray:
    x = np.atleast_2d(np.asarray(x, np.float64))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def emb(vectors, tracks, space="rgbd", modality=Modality.RGB, frame=0) -> Embeddings:
    return Embeddings(unit(vectors), modality, space, np.asarray(tracks, np.int64), frame_index=frame)


def noisy(v, rng, scale=0.02) -> np.ndarray:
    return unit(v + scale * rng.normal(size=np.shape(v)))


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_new_person_then_same_person(rng):
    g = Gallery()
    p = unit(rng.normal(size=D))
    [m] = g.match([emb(p, [1])], 0.0)
    assert m.is_new and m.identity == "id-0001" and m.distance == 0.0 and len(g) == 1
    [m] = g.match([emb(noisy(p, rng), [2])], 1.0)
    assert not m.is_new and m.identity == "id-0001" and 0 < m.distance < 0.05
    assert g.entries("rgbd") == {"id-0001": 2}


def test_stranger_gets_new_identity_with_nearest_rejected_distance(rng):
    g = Gallery(threshold=0.35)
    g.match([emb(rng.normal(size=D), [1])], 0.0)
    [m] = g.match([emb(rng.normal(size=D), [2])], 1.0)
    assert m.is_new and m.identity == "id-0002"
    assert m.distance > 0.35  # distance to the nearest (rejected) identity


def test_colour_bridges_depth_and_ir(rng):
    g = Gallery()
    in_rgbd, in_rgbir = unit(rng.normal(size=D)), unit(rng.normal(size=D))
    first = g.match([emb(in_rgbd, [1], "rgbd"), emb(in_rgbir, [1], "rgbir")], 0.0)
    assert [m.identity for m in first] == ["id-0001"]
    assert g.entries("rgbd") == {"id-0001": 1} and g.entries("rgbir") == {"id-0001": 1}
    [depth] = g.match([emb(noisy(in_rgbd, rng), [2], "rgbd", Modality.DEPTH)], 1.0)
    assert (depth.identity, depth.space, depth.modality, depth.is_new) == ("id-0001", "rgbd", Modality.DEPTH, False)
    [ir] = g.match([emb(noisy(in_rgbir, rng), [3], "rgbir", Modality.IR)], 2.0)
    assert (ir.identity, ir.space, ir.modality, ir.is_new) == ("id-0001", "rgbir", Modality.IR, False)


def test_identity_not_reachable_through_a_space_it_has_no_entries_in(rng):
    g = Gallery()
    v = unit(rng.normal(size=D))
    g.match([emb(v, [1], "rgbd")], 0.0)
    [m] = g.match([emb(v, [2], "rgbir", Modality.IR)], 1.0)  # same numbers, other space
    assert m.is_new and m.identity == "id-0002" and m.distance == 0.0


def test_best_space_and_modality_are_reported(rng):
    g = Gallery()
    a, b = unit(rng.normal(size=D)), unit(rng.normal(size=D))
    g.match([emb(a, [1], "rgbd"), emb(b, [1], "rgbir")], 0.0)
    [m] = g.match([emb(noisy(a, rng, 0.2), [2], "rgbd", Modality.DEPTH),
                   emb(noisy(b, rng, 0.01), [2], "rgbir", Modality.IR)], 1.0)
    assert (m.space, m.modality) == ("rgbir", Modality.IR) and m.distance < 0.01


def _greedy(cost: np.ndarray, threshold: float) -> dict[int, int]:
    """Nearest pair first (the baseline the gallery must not be)."""
    pairs, used_r, used_c = {}, set(), set()
    for r, c in sorted(np.ndindex(cost.shape), key=lambda rc: cost[rc]):
        if cost[r, c] <= threshold and r not in used_r and c not in used_c:
            pairs[r] = c
            used_r.add(r)
            used_c.add(c)
    return pairs


def test_assignment_not_greedy():
    # Gram matrix of unit vectors X, Y (identities) and A, B (queries):
    # d(A,X)=0.10 d(A,Y)=0.30 d(B,X)=0.12 d(B,Y)=0.50 d(X,Y)=0.40 (> threshold: two identities).
    gram = np.array([[1, .6, .9, .88], [.6, 1, .7, .5], [.9, .7, 1, .8], [.88, .5, .8, 1]])
    vecs = np.zeros((4, D))
    vecs[:, :4] = np.linalg.cholesky(gram)
    x, y, a, b = unit(vecs)
    g = Gallery(threshold=0.35)
    assert [m.identity for m in g.match([emb(np.stack([x, y]), [1, 2])], 0.0)] == ["id-0001", "id-0002"]
    cost = 1 - np.stack([a, b]) @ np.stack([x, y]).T
    assert _greedy(cost, 0.35) == {0: 0}  # greedy: A takes X, B is left alone -> a wrong new identity
    ma, mb = g.match([emb(np.stack([a, b]), [10, 11])], 1.0)
    assert (ma.identity, mb.identity) == ("id-0002", "id-0001")  # optimal: A-Y, B-X
    assert not ma.is_new and not mb.is_new
    assert ma.distance == pytest.approx(0.30, abs=1e-5) and mb.distance == pytest.approx(0.12, abs=1e-5)


def test_one_track_per_identity_in_a_frame(rng):
    g = Gallery()
    p = unit(rng.normal(size=D))
    g.match([emb(p, [1])], 0.0)
    m1, m2 = g.match([emb(np.concatenate([noisy(p, rng, 0.01), noisy(p, rng, 0.05)]), [5, 6])], 1.0)
    assert m1.identity == "id-0001" and not m1.is_new
    assert m2.identity == "id-0002" and m2.is_new


def test_assign_matches_brute_force_optimum(rng):
    for _ in range(20):
        cost = rng.uniform(0, 0.6, size=(4, 5))
        pairs = assign(cost, 0.35)
        total = sum(cost[r, c] for r, c in pairs) + 0.35 * (4 - len(pairs))
        padded = np.concatenate([np.where(cost <= 0.35, cost, 9.0), np.full((4, 4), 9.0)], axis=1)
        np.fill_diagonal(padded[:, 5:], 0.35)
        r, c = linear_sum_assignment(padded)
        assert total == pytest.approx(padded[r, c].sum())
        assert all(cost[r, c] <= 0.35 for r, c in pairs)


def test_sticky_track_keeps_identity_while_within_threshold(rng):
    gram = np.array([[1, .4, .7], [.4, 1, .9], [.7, .9, 1]])  # X, Y, Q: d(Q,X)=0.30 d(Q,Y)=0.10
    vecs = np.zeros((3, D))
    vecs[:, :3] = np.linalg.cholesky(gram)
    x, y, q = unit(vecs)
    g = Gallery(threshold=0.35)
    g.match([emb(x, [1])], 0.0)
    g.match([emb(y, [2])], 1.0)
    [m] = g.match([emb(q, [1])], 2.0)  # track 1 is closer to Y now, but still within threshold of X
    assert m.identity == "id-0001" and m.distance == pytest.approx(0.30, abs=1e-5)
    assert g.entries("rgbd") == {"id-0001": 2, "id-0002": 1}  # the observation went to the kept identity
    far = unit(rng.normal(size=D))
    [m] = g.match([emb(far, [1])], 4.0)  # track 1 drifted beyond threshold: re-decided
    assert m.is_new and m.identity == "id-0003"


def test_decide_two_sticky_tracks_on_one_identity():
    inf = np.inf
    matrix = np.array([[0.20, 0.30, inf], [0.10, inf, inf], [0.50, 0.25, 0.40]])
    # Rows 0 and 1 both had identity 0: the closer (row 1) keeps it. Rows 0 and 2 compete for
    # identity 1: row0->1 + row2 new = 0.30 + 0.35 > row0 new + row2->1 = 0.35 + 0.25.
    assert decide(matrix, {0: 0, 1: 0}, 0.35) == {1: 0, 2: 1}
    # Row 2 is beyond threshold of its old identity 2, so it competes like a new track.
    assert decide(matrix, {2: 2}, 0.35) == {1: 0, 2: 1}
    # Sticky row 0 keeps identity 0 although row 1 is closer to it; row 1 then starts a new identity.
    assert decide(matrix, {0: 0}, 0.35) == {0: 0, 2: 1}


def test_rejects_untracked_rows_and_wrong_sizes(rng):
    g = Gallery()
    with pytest.raises(ValueError, match="track ids >= 0"):
        g.match([emb(rng.normal(size=D), [-1])], 0.0)
    g.match([emb(rng.normal(size=D), [1])], 0.0)
    with pytest.raises(ValueError, match="64-D vectors in space 'rgbd'"):
        g.match([emb(rng.normal(size=8), [2])], 1.0)


def test_unnormalised_input_is_normalised(rng):
    g = Gallery()
    v = rng.normal(size=(1, D)).astype(np.float32) * 5
    g.match([Embeddings(v, Modality.RGB, "rgbd", np.array([1]), normalized=False)], 0.0)
    [m] = g.match([emb(v, [2])], 1.0)
    assert m.identity == "id-0001" and m.distance < 1e-5


def test_empty_frame(rng):
    g = Gallery()
    assert g.match([], 0.0) == []
    assert g.match([emb(np.zeros((0, D)) + 1, [])], 0.0) == []
