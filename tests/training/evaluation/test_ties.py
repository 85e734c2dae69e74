"""Tie-breaking of the ranking metrics: pessimistic (default) and stable gallery order (open-reid / AGW argsort)."""

from __future__ import annotations

import numpy as np
import pytest

from reidstream.training.cli import eval_main
from reidstream.training.eval_run import evaluate_checkpoint, run_vi_eval
from reidstream.training.evaluation import metrics as m
from reidstream.training.evaluation.protocols import FeatureSet, hafner_protocol
from reidstream.training.evaluation.vi_protocols import identity_cmc, regdb_evaluation, sysu_evaluation

# q0 (pid 0): its match g0 ties with the wrong g1 and comes first in gallery order.
# q1 (pid 1): its match g1 ties with the wrong g0, which comes first in gallery order.
DIST = np.array([[1.0, 1.0, 2.0], [1.0, 1.0, 2.0]])
Q, G = np.array([0, 1]), np.array([0, 1, 2])


def reference(dist, q_pids, g_pids):
    """Ranks, APs and INPs of the common codebases: ``np.argsort(kind="stable")`` then walk the list."""
    ranks, aps, inps, id_ranks = [], [], [], []
    for d, q in zip(dist, q_pids):
        order = np.argsort(d, kind="stable")
        hits = g_pids[order] == q
        pos = np.flatnonzero(hits)
        ranks.append(pos[0] + 1)
        aps.append(np.mean(np.arange(1, len(pos) + 1) / (pos + 1)))
        inps.append(len(pos) / (pos[-1] + 1))
        labels = g_pids[order]
        first = np.sort(np.unique(labels, return_index=True)[1])  # AGW eval_sysu: distinct identities
        id_ranks.append(np.flatnonzero(labels[first] == q)[0] + 1)
    return np.array(ranks), np.array(aps), np.array(inps), np.array(id_ranks)


def curve(ranks, max_rank):
    return np.array([(ranks <= k).mean() for k in range(1, max_rank + 1)])


def test_constructed_tie_case_both_modes():
    assert m.cmc_all(DIST, Q, G, max_rank=2).tolist() == [0.0, 1.0]          # both matches behind a tied wrong one
    assert m.cmc_all(DIST, Q, G, max_rank=2, ties="stable").tolist() == [0.5, 1.0]
    assert m.mean_average_precision(DIST, Q, G, max_per_identity=None)[0] == pytest.approx(0.5)
    assert m.mean_average_precision(DIST, Q, G, max_per_identity=None, ties="stable")[0] == pytest.approx(0.75)
    assert m.mean_inverse_negative_penalty(DIST, Q, G) == pytest.approx(0.5)
    assert m.mean_inverse_negative_penalty(DIST, Q, G, ties="stable") == pytest.approx(0.75)
    # one image per identity: the single-gallery-shot draw is fixed, so ranks are exact
    assert m.single_gallery_shot_ranks(DIST, Q, G, repeats=2, rng=0).tolist() == [[2, 2], [2, 2]]
    assert m.single_gallery_shot_ranks(DIST, Q, G, repeats=2, rng=0, ties="stable").tolist() == [[1, 2], [1, 2]]


def test_stable_equals_the_common_codebases_on_random_ties():
    rng = np.random.default_rng(3)
    dist = rng.integers(0, 4, size=(30, 40)).astype(float)  # many ties
    q, g = rng.integers(0, 6, 30), rng.integers(0, 6, 40)
    keep = np.isin(q, g)
    dist, q = dist[keep], q[keep]
    ranks, aps, inps, id_ranks = reference(dist, q, g)
    np.testing.assert_allclose(m.cmc_all(dist, q, g, max_rank=10, ties="stable"), curve(ranks, 10))
    assert m.mean_average_precision(dist, q, g, max_per_identity=None, ties="stable")[0] == pytest.approx(aps.mean())
    assert m.mean_inverse_negative_penalty(dist, q, g, ties="stable") == pytest.approx(inps.mean())
    cmc, skipped = identity_cmc(dist, q, g, max_rank=6, ties="stable")
    np.testing.assert_allclose(cmc, curve(id_ranks, 6))
    assert skipped == 0
    # pessimistic never scores higher than stable
    assert (m.cmc_all(dist, q, g, max_rank=10) <= curve(ranks, 10) + 1e-12).all()
    assert identity_cmc(dist, q, g, max_rank=6)[0][0] <= cmc[0]


def test_stable_capped_map_follows_gallery_order_within_the_draw():
    dist = np.zeros((1, 4))
    q, g = np.array([1]), np.array([1, 0, 1, 0])  # everything tied: hits at gallery columns 0 and 2
    assert m.mean_average_precision(dist, q, g, max_per_identity=5, repeats=3, rng=0, ties="stable") \
        == pytest.approx([(1 + 2 / 3) / 2] * 3)
    assert m.mean_average_precision(dist, q, g, max_per_identity=5, repeats=1, rng=0)[0] == pytest.approx(
        (1 / 3 + 2 / 4) / 2)


def _fs(modality, emb, pids, cams=None):
    n = len(pids)
    return FeatureSet(modality=modality, embeddings=np.asarray(emb, float), pids=np.asarray(pids),
                      camids=np.asarray(cams if cams is not None else [1] * n), keys=np.arange(n) + 1000 * len(modality))


def test_protocols_plumb_ties():
    emb = np.zeros((4, 2))  # collapsed embeddings: every distance ties
    q, g = _fs("rgb", emb, [0, 1, 2, 3]), _fs("depth", emb, [0, 1, 2, 3])
    pess = hafner_protocol(q, g, repeats=2)
    stab = hafner_protocol(q, g, repeats=2, ties="stable")
    assert (pess["ties"], stab["ties"]) == ("pessimistic", "stable")
    assert pess["rank-1"]["mean"] == 0.0 and stab["rank-1"]["mean"] == pytest.approx(25.0)
    reg = regdb_evaluation([{"rgb": q, "thermal": _fs("thermal", emb, [0, 1, 2, 3])}], ties="stable")
    assert all(r["ties"] == "stable" and r["rank-1"]["mean"] == pytest.approx(25.0) for r in reg.values())
    feats = {"rgb": _fs("rgb", emb, [0, 1, 2, 3], [1, 1, 1, 1]), "ir": _fs("ir", emb, [0, 1, 2, 3], [3, 3, 3, 3])}
    sysu = sysu_evaluation(feats, trials=1, ties="stable")
    assert all(r["ties"] == "stable" for r in sysu.values())
    assert sysu_evaluation(feats, trials=1)["Q:ir G:rgb"]["rank-1"]["mean"] == 0.0


@pytest.mark.parametrize("call", [
    lambda: m.cmc_all(DIST, Q, G, ties="optimistic"),
    lambda: m.mean_average_precision(DIST, Q, G, ties="random"),
    lambda: m.mean_inverse_negative_penalty(DIST, Q, G, ties=None),
    lambda: m.single_gallery_shot_ranks(DIST, Q, G, ties="Stable"),
    lambda: identity_cmc(DIST, Q, G, ties="first"),
    lambda: hafner_protocol(_fs("rgb", np.zeros((2, 2)), [0, 1]), _fs("rgb", np.zeros((2, 2)), [0, 1]), ties="x"),
    lambda: evaluate_checkpoint("missing.pt", ties="best"),
    lambda: run_vi_eval(["missing.pt"], protocol="sysu", ties="best"),
])
def test_unknown_ties_are_rejected(call):
    with pytest.raises(ValueError, match="ties"):
        call()


def test_tie_order_contract_and_cli_choice():
    with pytest.raises(ValueError, match="tie_order"):
        m.cmc_all(DIST, Q, G, ties="stable", tie_order=np.arange(4))
    with pytest.raises(SystemExit):
        eval_main(["missing.pt", "--ties", "optimistic"])
