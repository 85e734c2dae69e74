"""Evidence calibration: known log-likelihood ratios from hand-made distributions, fusion, strict parsing."""

from __future__ import annotations

import numpy as np
import pytest

from reidstream.export.evidence import choose_threshold, fit_calibration
from reidstream.pipeline.eval.collect import TrackRecord
from reidstream.pipeline.gallery.calibration import Calibration, CueModel, auc, fit_gauss, fit_logistic
from reidstream.pipeline.gallery.evidence import Visit, VisitTable
from reidstream.pipeline.gallery.fusion import fused_llr


def test_logistic_fit_recovers_the_known_llr():
    """Same ~ N(0.2, 0.15), different ~ N(0.5, 0.15): LLR(d) = (0.21 - 0.6 d) / (2 * 0.15^2) = 4.667 - 13.333 d."""
    rng = np.random.default_rng(0)
    m = fit_logistic(rng.normal(0.2, 0.15, 40000), rng.normal(0.5, 0.15, 20000))
    a, b = m.params
    assert a == pytest.approx(0.21 / 0.045, abs=0.15) and b == pytest.approx(-0.6 / 0.045, abs=0.4)
    assert m.llr(0.35) == pytest.approx(0.0, abs=0.1)
    assert m.auc == pytest.approx(0.92, abs=0.01)  # Phi(0.3 / (0.15 * sqrt 2)) = 0.921
    assert m.llr(-10.0) == m.clip and m.llr(10.0) == -m.clip


def test_gauss_fit_recovers_spreads_outliers_and_uses_measurement_variance():
    """Same: 95 % N(0, 0.015^2 + v), 5 % outliers N(0, 0.1^2 + v); different: N(0, 0.1^2 + v)."""
    rng = np.random.default_rng(1)
    n = 40000
    var_s, var_d = rng.uniform(0, 0.02 ** 2, n), rng.uniform(0, 0.02 ** 2, n)
    spread = np.where(rng.random(n) < 0.05, 0.1, 0.015)
    same = rng.normal(0, np.sqrt(spread ** 2 + var_s))
    diff = rng.normal(0, np.sqrt(0.1 ** 2 + var_d))
    m = fit_gauss(same, var_s, diff, var_d)
    s_same, s_diff, e = m.params
    assert s_same == pytest.approx(0.015, rel=0.1) and s_diff == pytest.approx(0.1, rel=0.05)
    assert e == pytest.approx(0.05, abs=0.015)
    known = np.log((1 - e) * s_diff / s_same + e)  # (1 - e) N_same(0) / N_diff(0) + e
    assert m.llr(0.0) == pytest.approx(known, rel=1e-6)
    assert m.llr(0.3) == pytest.approx(np.log(e), abs=0.05)  # far apart: only the outlier term is left
    # a noisy measurement (large variance) gives weaker evidence either way
    assert abs(m.llr(0.0, 0.05 ** 2)) < abs(m.llr(0.0)) and abs(m.llr(0.06, 0.05 ** 2)) < abs(m.llr(0.06))


def test_auc_counts_ties_half():
    assert auc([1, 2, 3], [0, 0]) == 1.0 and auc([1], [1]) == 0.5 and auc([0], [1]) == 0.0


def _records(rng, people=24, visits=4, dim=16):
    """One sequence: each person visits ``visits`` times; cue a/x identifies, b/y is noise (no separability)."""
    protos = rng.normal(size=(people, dim))
    recs, t = [], 0.0
    order = rng.permutation(np.repeat(np.arange(people), visits))
    for k, p in enumerate(order):
        def visit():
            a = protos[p] + 0.5 * rng.normal(size=dim)
            b = rng.normal(size=dim)
            return Visit({"a/x": (a / np.linalg.norm(a)).astype(np.float32),
                          "b/y": (b / np.linalg.norm(b)).astype(np.float32)})
        recs.append(TrackRecord("seq", k, t, t + 5.0, visit(), visit(), int(p), 1.0, 50))
        t += 6.0
    return recs


def test_fusion_gives_no_weight_to_a_pair_without_separability():
    rng = np.random.default_rng(2)
    cal = fit_calibration(_records(rng), false_merge_rate=0.05, min_auc=0.6)
    assert cal.cues["a/x~a/x|lit-lit"].weight > 0 and cal.cues["a/x~a/x|lit-lit"].auc > 0.9
    noise = cal.cues["b/y~b/y|lit-lit"]
    assert noise.weight == 0.0 and abs(noise.auc - 0.5) < 0.1
    assert cal.model("b/y~b/y", "lit-lit") is None
    # the noise cue changes nothing in the fused evidence
    recs = _records(rng, people=6, visits=2)
    table = VisitTable()
    for r in recs:
        table.add(r.person, r.track, r.full, r.start, r.end)
    with_noise = fused_llr([r.early for r in recs], table, cal)
    without = [Visit({"a/x": r.early.vectors["a/x"]}) for r in recs]
    alone = fused_llr(without, table, cal)
    np.testing.assert_allclose(with_noise, alone)
    assert cal.figures["lit"]["strangers_merged"] <= 0.05 + 1e-9 and cal.figures["lit"]["returns_right"] > 0.8


def test_calibration_round_trip_and_strict_keys():
    cal = Calibration({"height|any": CueModel("gauss", (0.02, 0.08), 0.9, 10, 10)}, threshold=3.0, dark_threshold=1.5)
    again = Calibration.from_dict(cal.to_dict())
    assert again.to_dict() == cal.to_dict() and again.threshold_for(False) == 1.5 and again.threshold_for(True) == 3.0
    with pytest.raises(ValueError, match="unknown key"):
        Calibration.from_dict({**cal.to_dict(), "treshold": 1.0})
    with pytest.raises(ValueError, match="light"):
        Calibration.from_dict({"cues": {"height|dusk": cal.cues["height|any"].to_dict()}})
    with pytest.raises(ValueError, match="s_same < s_diff"):
        CueModel("gauss", (0.1, 0.05, 0.0), 0.9, 10, 10)
    with pytest.raises(ValueError, match="3 finite numbers"):
        CueModel("gauss", (0.01, 0.05, 0.1, 0.2), 0.9, 10, 10)


def _lit_then_dark(rng, people=30, strangers=3, dim=16):
    """Everyone is seen lit once, then twice in the dark; ``strangers`` more people come only in the dark."""
    protos = rng.normal(size=(people + strangers, dim))
    recs, t = [], 0.0

    def visit(p, lit):
        a = protos[p] + 0.4 * rng.normal(size=dim)
        return Visit({"a/x": (a / np.linalg.norm(a)).astype(np.float32)}, lit=lit)

    order = [(p, True) for p in range(people)]
    order += [(int(p), False) for p in rng.permutation(np.r_[np.repeat(np.arange(people), 2),
                                                            np.arange(people, people + strangers)])]
    for k, (p, lit) in enumerate(order):
        recs.append(TrackRecord("seq", k, t, t + 5.0, visit(p, lit), visit(p, lit), p, 1.0, 50))
        t += 6.0
    return recs


def test_dark_threshold_from_returns_scored_without_their_own_identity():
    """Three first-time visitors in the dark cannot set a 5 % threshold; the 60 dark returns, each scored
    against everyone but themselves, stand in for strangers, and the rate then holds on them."""
    recs = _lit_then_dark(np.random.default_rng(3))
    cal = fit_calibration(recs, false_merge_rate=0.05, min_auc=0.6)
    dark = cal.figures["dark"]
    assert dark["first_visits"] == 3 and dark["strangers"] == 3 + dark["returns"] and dark["returns"] >= 55
    assert cal.dark_threshold is not None and dark["strangers_merged"] <= 0.05 + 1e-9
    assert dark["returns_right"] > 0.8
    # without the stand-ins (min_first=0: first-time visitors only) three strangers are too few for a threshold
    import reidstream.export.evidence as evidence

    seqs = list(evidence._pairs(recs, 0.8))
    evidence._fit_threshold(cal, seqs, 0.05, lambda _m: None, min_first=0)
    assert cal.dark_threshold is None and cal.figures["dark"]["strangers"] == 3


def test_threshold_in_the_middle_of_the_best_interval_within_the_false_merge_rate():
    """20 strangers score 0..19: at most 5 % (one) may exceed, so the threshold is >= 18. Returns at 25 and 30:
    every threshold in [19, 25) takes both and merges nobody, and 22 is its middle. A third return at 18.5
    is worth more than the stranger at 19: the best interval is then [18, 18.5)."""
    strangers = np.arange(20.0)
    assert choose_threshold(strangers, [(25.0, 1.0), (30.0, 2.0)], 0.05) == pytest.approx(22.0)
    assert choose_threshold(strangers, [(25.0, 1.0), (30.0, 2.0), (18.5, 0.0)], 0.05) == pytest.approx(18.25)
    # a return whose own identity scores below another's joins the wrong one: it counts against a threshold
    assert choose_threshold(strangers, [(25.0, 1.0), (27.0, 30.0)], 0.05) == pytest.approx(22.0)
    assert choose_threshold([-5.0, -4.0], [], 0.05) == 0.0  # never below 0
