"""Split by visit and the evidence behind a decision: the gallery methods on hand-made galleries, and the routes."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np
import pytest

from reidstream.pipeline.gallery import Gallery, GalleryConfig
from reidstream.pipeline.gallery.calibration import Calibration, CueModel
from reidstream.pipeline.gallery.cues import TrackCues
from reidstream.pipeline.gallery.evidence import TrackEvidence, VisitTable
from reidstream.pipeline.gallery.fusion import fused_llr, term_matrix
from reidstream.pipeline.gallery.journal import GalleryJournal, replay
from reidstream.pipeline.gallery.topology import Topology

_spec = importlib.util.spec_from_file_location(
    "gallery_helpers", Path(__file__).resolve().parents[1] / "gallery" / "conftest.py")
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)
PEOPLE = helpers._unit(np.random.default_rng(3).normal(size=(8, helpers.D)))
COLOUR = "rgbd/rgb~rgbd/rgb"


def gallery(**config) -> Gallery:
    config.setdefault("pending_s", 0.2)
    config.setdefault("min_new_s", 0.0)  # hand-made tracks of a few frames
    return Gallery(helpers.calibration(), GalleryConfig(**config))


def frames(g: Gallery, items, t0: float, n: int = 4, dt: float = 0.1, height: float | None = None,
           camera: str | None = None):
    """``n`` frames of tracks ``items`` = [(track, vector)] in space rgbd; optionally all ``height`` m tall."""
    out = []
    for k in range(n):
        tids = [t for t, _ in items]
        cues = None
        if height is not None:
            m = len(items)
            cues = TrackCues(tids, np.ones(m), np.full(m, height), np.full(m, 0.02), np.full(m, np.nan),
                             np.full(m, np.inf))
        out.append(g.match([helpers._emb(np.stack([v for _, v in items]), tids)], t0 + k * dt, cues, camera=camera))
    return out


def llr(d: float) -> float:
    """The hand-made colour cue of the conftest: 6 - 20 d, clipped to +-6."""
    return float(np.clip(6.0 - 20.0 * d, -6.0, 6.0))


# ---------------------------------------------------------------- split
def test_split_moves_the_visits_and_the_live_track_and_is_journalled(tmp_path):
    g = gallery()
    frames(g, [(1, PEOPLE[0])], 0.0)
    frames(g, [(2, PEOPLE[1])], 10.0)
    frames(g, [(3, PEOPLE[1])], 20.0)  # person 1 again: joins id-0002, still in view
    assert g.identity_of(3) == "id-0002"
    g.merge("id-0001", "id-0002")  # a wrong merge by an operator
    assert g.visits_of("id-0001") == 3 and g.identity_of(3) == "id-0001"
    journal = GalleryJournal(tmp_path / "gallery.journal")
    journal.append(g.drain_mutations())
    rows = g.visit_rows("id-0001")
    assert len(rows) == 3 and g.visits.start[rows[0]] == 0.0
    new = g.split("id-0001", rows[1:])  # person 1's two visits
    assert new == "id-0003" and new in g and g.visits_of(new) == 2 and g.visits_of("id-0001") == 1
    assert g.last_seen[g._slot["id-0001"]] == pytest.approx(0.3)
    out = frames(g, [(3, PEOPLE[1])], 20.4, n=1)
    assert out[0][0].identity == new and not out[0][0].is_new  # the person in view follows their visit
    journal.append(g.drain_mutations())
    journal.close()
    replica = Gallery(helpers.calibration(), GalleryConfig(pending_s=0.2, min_new_s=0.0))
    replay(replica, tmp_path / "gallery.journal")
    assert sorted(replica.identities()) == sorted(g.identities())
    assert replica.visit_rows(new) == g.visit_rows(new) and replica.visit_rows("id-0001") == rows[:1]
    # the split-off identity is decided on like any other: person 1 returns and joins it
    frames(g, [(4, PEOPLE[1])], 40.0)
    assert g.identity_of(4) == new


def test_split_contract():
    g = gallery()
    frames(g, [(1, PEOPLE[0])], 0.0)
    frames(g, [(2, PEOPLE[1])], 10.0)
    frames(g, [(3, PEOPLE[0])], 20.0)
    rows = g.visit_rows("id-0001")
    other = g.visit_rows("id-0002")
    assert len(rows) == 2 and len(other) == 1
    with pytest.raises(KeyError, match="no identity 'id-0042'"):
        g.split("id-0042", rows[:1])
    with pytest.raises(ValueError, match=rf"row\(s\) \[{other[0]}\] are not visits of 'id-0001'"):
        g.split("id-0001", [rows[0], other[0]])
    with pytest.raises(ValueError, match="all of its visits.*rename"):
        g.split("id-0001", rows)
    with pytest.raises(ValueError, match="at least one visit row"):
        g.split("id-0001", [])
    with pytest.raises(ValueError, match="integers"):
        g.split("id-0001", ["1"])
    assert g.identities() == ["id-0001", "id-0002"] and g.visit_rows("id-0001") == rows  # nothing changed


# ---------------------------------------------------------------- explanations
def test_explanation_of_a_return_and_of_a_stranger_per_cue():
    g = gallery()
    frames(g, [(1, PEOPLE[0]), (2, PEOPLE[1])], 0.0, height=1.80)
    frames(g, [(3, PEOPLE[0]), (4, PEOPLE[2])], 10.0, height=1.80)
    ex = g.explanation(3)
    assert (ex.track, ex.outcome, ex.identity, ex.runner_up) == (3, "joined", "id-0001", "id-0002")
    assert ex.lit and ex.threshold == g.threshold_for(True) == 2.0
    cues = {c.cue: c for c in ex.cues}
    assert set(cues) == {COLOUR, "height"}
    # the same vector: distance 0; the runner-up's distance from the two people's vectors
    assert cues[COLOUR].chosen == pytest.approx(6.0, abs=1e-4)
    assert cues[COLOUR].runner_up == pytest.approx(llr(1.0 - float(PEOPLE[0] @ PEOPLE[1])), abs=1e-4)
    assert cues["height"].chosen == pytest.approx(cues["height"].runner_up) and cues["height"].chosen > 0
    assert ex.chosen_total == pytest.approx(sum(c.chosen for c in ex.cues), abs=1e-4)
    assert ex.runner_up_total == pytest.approx(sum(c.runner_up for c in ex.cues), abs=1e-4)
    assert ex.chosen_total > ex.threshold > ex.runner_up_total
    assert g.explanation("id-0001") == ex  # the latest decision that gave id-0001 a track
    # a stranger: a new identity, its best existing one below the threshold as runner-up
    new = g.explanation(4)
    assert new.outcome == "new" and new.identity == "id-0003" and new.chosen_total is None
    assert new.runner_up in ("id-0001", "id-0002") and new.runner_up_total < new.threshold
    assert all(c.chosen is None for c in new.cues)
    # names are current; a pending or unknown track, an identity without a decision: none
    g.rename("id-0001", "alice")
    assert g.explanation(3).identity == "alice" and g.explanation(4).runner_up in ("alice", "id-0002")
    assert g.explanation(99) is None
    with pytest.raises(KeyError):
        g.explanation("id-0001")
    by_identity, by_track = g.explanations()
    assert set(by_track) == {3, 4} and {"alice", "id-0003"} <= set(by_identity)
    d = g.explanation(3).to_dict()
    assert d["identity"] == "alice" and {c["cue"] for c in d["cues"]} == {COLOUR, "height"}


def test_recheck_explanations_moves_and_memory_stays_bounded():
    g = gallery(recheck_s=0.3, switch_after=2, min_frames=2, undecided_margin=0.0)
    frames(g, [(1, PEOPLE[0])], 0.0)
    mixed = helpers._unit(PEOPLE[0] + PEOPLE[1])[0]  # ambiguous start: a new identity, then moved by re-checks
    seen = []
    for k in range(44):
        frames(g, [(2, mixed if k < 4 else PEOPLE[0])], 10.0 + 0.1 * k, n=1)
        ex = g.explanation(2)
        if ex is not None and (not seen or ex != seen[-1]):
            seen.append(ex)
    outcomes = [e.outcome for e in seen]
    assert outcomes[0] == "new" and "moved" in outcomes and outcomes[-1] == "kept"
    moved = seen[outcomes.index("moved")]
    # the identity it left (id-0002) held no visit but the track's own: nothing to compare, no runner-up
    assert moved.identity == "id-0001" and moved.runner_up is None and moved.runner_up_total is None
    assert moved.chosen_total > moved.threshold
    assert seen[-1].identity == "id-0001" and seen[-1].chosen_total == pytest.approx(
        sum(c.chosen for c in seen[-1].cues if c.chosen is not None), abs=1e-4)
    # many tracks come and go: only live tracks and live identities keep an explanation
    g2 = gallery(max_identities=20)
    for k in range(80):
        frames(g2, [(100 + k, PEOPLE[k % 8])], 100.0 + 3.0 * k, n=3)
    assert len(g2._explained_tracks) <= 2 * len(g2._tracks) + 16
    assert len(g2._explained_slots) <= 2 * len(g2) + 16
    assert set(g2.explanations()[1]) <= set(g2._tracks)


def test_the_topology_prior_is_a_term_of_its_own():
    g = gallery()
    g.topology = Topology({("room", "corridor"): (3.0, 8.0)})
    frames(g, [(1, PEOPLE[0])], 0.0, camera="room")
    frames(g, [(2, PEOPLE[1])], 0.0, camera="hall")
    g.match([], 3.0)
    frames(g, [(3, PEOPLE[0])], 5.0, camera="corridor")
    ex = g.explanation(3)
    cues = {c.cue: c for c in ex.cues}
    assert ex.identity == "id-0001" and ex.camera == "corridor"
    assert cues["topology"].chosen == 3.0 and cues["topology"].runner_up == 0.0
    assert ex.chosen_total == pytest.approx(sum(c.chosen for c in ex.cues), abs=1e-4)


def test_fused_llr_explain_terms_sum_to_the_fused_llr_both_directions_of_a_cross_modal_cue():
    cal = Calibration({COLOUR + "|any": CueModel("logistic", (6.0, -20.0), 0.99, 100, 100, weight=0.5),
                       "rgbir/ir~rgbir/rgb|any": CueModel("logistic", (1.0, -4.0), 0.8, 9, 9),
                       "height|any": CueModel("gauss", (0.02, 0.1), 0.9, 100, 100)}, 2.0)
    rng = np.random.default_rng(0)
    features = [("rgbd/rgb", "rgbir/ir"), ("rgbd/rgb", "rgbir/rgb"), ("rgbir/ir",), ("rgbir/rgb", "rgbir/ir"),
                ("rgbd/rgb",), ("rgbir/rgb",)]
    summaries = []
    for i, keys in enumerate(features):
        ev = TrackEvidence(0.0)
        ev.add_frame(0.0, 1.0, True, 1.7 + 0.05 * i, 0.02, np.nan, np.inf, None)
        for key in keys:
            ev.add_vector(key, helpers._unit(rng.normal(size=8))[0], 1.0)
        summaries.append(ev.summary())
    queries, table = summaries[:2], VisitTable()
    for i, visit in enumerate(summaries[2:]):
        table.add(i, -1, visit, 0.0, 1.0)
    fused, parts = fused_llr(queries, table, cal, explain=True)
    terms = {cue: term_matrix(p) for cue, p in parts.items()}
    assert np.array_equal(fused, fused_llr(queries, table, cal))
    assert {COLOUR, "rgbir/ir~rgbir/rgb", "height"} <= set(terms)
    used = table.used
    total = np.nansum(np.stack([t[:, used] for t in terms.values()]), axis=0)
    assert np.allclose(total, fused[:, used], atol=1e-5)
    # visit 1 (rgbir/rgb and rgbir/ir) against query 0 (ir) and query 1 (rgb): ir~rgb one way, summed both ways
    cross = terms["rgbir/ir~rgbir/rgb"]
    m = cal.model("rgbir/ir~rgbir/rgb", "lit-lit")
    v, q0 = summaries[3], summaries[0]
    expect = m.llr(1.0 - float(q0.vectors["rgbir/ir"] @ v.vectors["rgbir/rgb"]))
    assert cross[0, 1] == pytest.approx(float(expect), abs=1e-5)
    assert np.isnan(cross[1, 2]) and np.isnan(terms[COLOUR][1, 0])  # pairs that lack the cue


# ---------------------------------------------------------------- the routes
def test_split_and_evidence_routes():
    from fastapi.testclient import TestClient

    from reidstream.pipeline.web.app import LiveView, create_app
    from reidstream.pipeline.web.state import WebState

    g = gallery()
    frames(g, [(1, PEOPLE[0])], 0.0)
    frames(g, [(2, PEOPLE[1])], 10.0)
    frames(g, [(3, PEOPLE[0])], 20.0)
    state = WebState()
    stop = threading.Event()

    def pipeline_thread():  # what loop.run does between frames
        while not stop.is_set():
            state.between_frames(g)
            stop.wait(0.01)

    worker = threading.Thread(target=pipeline_thread)
    worker.start()
    try:
        client = TestClient(create_app(LiveView(state)))
        listed = {r["identity"]: r for r in client.get("/api/identities").json()}
        rows = [v["row"] for v in listed["id-0001"]["visit_list"]]
        other = listed["id-0002"]["visit_list"][0]["row"]
        assert rows == g.visit_rows("id-0001") and len(rows) == 2
        # the evidence of the identity's latest decision (track 3 joined it) and of the live track
        ev = client.get("/api/evidence/id-0001").json()
        assert ev["track"] == 3 and ev["outcome"] == "joined" and ev["runner_up"] == "id-0002"
        assert ev["cues"][0]["cue"] == COLOUR and ev["threshold"] == 2.0
        assert client.get("/api/evidence?track=3").json() == ev
        assert client.get("/api/evidence?track=1").status_code == 404  # ended
        assert client.get("/api/evidence/id-0042").status_code == 404
        # the contract: bad bodies, unknown identity, foreign rows, all rows
        post = lambda ident, body: client.post(f"/api/identity/{ident}/split", json=body)  # noqa: E731
        assert post("id-0001", {"rows": []}).status_code == 400
        assert post("id-0001", {"row": rows[1]}).status_code == 400
        assert post("id-0001", {"rows": ["1"]}).status_code == 400
        res = post("id-0042", {"rows": rows[1:]})
        assert res.status_code == 404 and "id-0042" in res.json()["error"]
        res = post("id-0001", {"rows": [other]})
        assert res.status_code == 400 and "not visits of 'id-0001'" in res.json()["error"]
        res = post("id-0001", {"rows": rows})
        assert res.status_code == 400 and "all of its visits" in res.json()["error"]
        assert client.post("/api/identity/id-0001/split", content='{"rows": [1]}',
                           headers={"Content-Type": "text/plain"}).status_code == 415
        res = post("id-0001", {"rows": rows[1:]})
        assert res.status_code == 200, res.json()
        done = res.json()
        assert done == {"ok": True, "kind": "split", "identity": "id-0003", "previous": "id-0001", "rows": rows[1:]}
        listed = {r["identity"]: r for r in client.get("/api/identities").json()}
        assert [v["row"] for v in listed["id-0003"]["visit_list"]] == rows[1:]
        assert [v["row"] for v in listed["id-0001"]["visit_list"]] == rows[:1]
        assert any(e["kind"] == "split" and e["identity"] == "id-0003" for e in client.get("/api/events").json())
        # the live track followed its visit, but its explanation is the decision's (joined id-0001) until its
        # next re-check; the split-off identity has no decision of its own yet
        assert g.identity_of(3) == "id-0003" and client.get("/api/evidence?track=3").json() == ev
        assert client.get("/api/evidence/id-0003").status_code == 404
        # a token guards the new routes like the others
        locked = TestClient(create_app(LiveView(state), token="s3cret-token"))
        assert locked.post("/api/identity/id-0001/split", json={"rows": rows[:1]}).status_code == 401
        assert locked.get("/api/evidence/id-0001").status_code == 401
    finally:
        stop.set()
        worker.join()
