"""Track-level identity decisions: pending window, open set, co-visibility, re-checks, switches, bounds."""

from __future__ import annotations

import numpy as np
import pytest

from reidstream.pipeline.gallery import Gallery
from reidstream.pipeline.gallery.cues import TrackCues
from reidstream.pipeline.types import Embeddings, Match, Modality


def run(g: Gallery, frames, t0: float = 0.0, dt: float = 0.1) -> list[list[Match]]:
    """``frames``: list of [(track, vector)] per frame, one colour embedding per track in space rgbd."""
    out = []
    for k, items in enumerate(frames):
        obs = [Embeddings(np.stack([v for _, v in items]).astype(np.float32), Modality.RGB, "rgbd",
                          np.array([t for t, _ in items]))] if items else []
        out.append(g.match(obs, t0 + k * dt))
    return out


def test_pending_until_enough_evidence_then_new(people, make_gallery):
    g = make_gallery(pending_s=0.3, min_frames=2)
    out = run(g, [[(1, people[0])]] * 5)
    assert [m[0].pending for m in out] == [True, True, True, False, False]
    assert out[3][0].identity == "id-0001" and out[3][0].is_new and not out[4][0].is_new
    with pytest.raises(ValueError, match="identity"):
        Match(1, "id-0001", 0.0, "rgb", "", pending=True)


def test_return_joins_and_stranger_is_new(people, make_gallery):
    g = make_gallery()
    run(g, [[(1, people[0]), (2, people[1])]] * 4)
    out = run(g, [[(3, people[0]), (4, people[2])]] * 4, t0=10.0)
    last = {m.track_id: m for m in out[-1]}
    assert last[3].identity == "id-0001" and last[3].evidence > g.threshold
    assert last[4].identity == "id-0003" and not last[4].evidence > g.threshold


def test_co_visible_tracks_never_share_an_identity(people, make_gallery):
    g = make_gallery()
    run(g, [[(1, people[0])]] * 4)
    same = people[0]
    out = run(g, [[(2, same), (3, same)]] * 6, t0=10.0)
    ids = {m.track_id: m.identity for m in out[-1]}
    assert ids[2] != ids[3] and "id-0001" in ids.values()
    # a track seen while id-0001's track is still in view cannot be id-0001 either
    g2 = make_gallery()
    out = run(g2, [[(1, people[0])]] * 4 + [[(1, people[0]), (2, people[0])]] * 6)
    ids = {m.track_id: m.identity for m in out[-1]}
    assert ids == {1: "id-0001", 2: "id-0002"}


def test_handover_is_not_a_second_person(people, make_gallery):
    """The tracker starts a new track on a person while the old one lingers for a few frames (drifting onto
    someone nearby): the old track, gone by the decision, does not bar the person's identity from the new one.
    Seen together for longer than ``handover_s``, or still in view, it does."""
    def scene(g, overlap_frames):
        run(g, [[(1, people[0])]] * 10)  # the person's first visit
        lingering = [[(2, people[0]), (3, people[1])]] * 10  # t 10.0-10.9: track 2 on the person, 3 elsewhere
        handover = [[(2, people[1]), (4, people[0])]] * overlap_frames  # 2 drifts onto the other, 4 starts
        return run(g, lingering + handover + [[(3, people[1]), (4, people[0])]] * 12, t0=10.0)

    g = make_gallery(handover_s=1.0, cut_after=0)
    last = {m.track_id: m.identity for m in scene(g, 3)[-1]}
    assert 2 not in last and last[4] == "id-0001"  # 0.3 s together, then gone: a handover
    for handover_s, frames in ((0.0, 3), (1.0, 12)):  # no tolerance, or 1.2 s together: two people
        g = make_gallery(handover_s=handover_s, cut_after=0)
        out = scene(g, frames)
        ids = {m.track_id: m.identity for m in out[-1]}
        assert ids[4] != "id-0001"
    g = make_gallery(handover_s=5.0, cut_after=0)  # however long the tolerance: never while both are in view
    out = run(g, [[(1, people[0])]] * 10 + [[(1, people[0]), (2, people[0])]] * 10)
    assert {m.track_id: m.identity for m in out[-1]} == {1: "id-0001", 2: "id-0002"}


@pytest.mark.parametrize("cut_after", [0, 2])
def test_a_handover_cuts_the_old_track_where_the_new_one_began(people, make_gallery, cut_after):
    """When the new track takes the person's identity through a handover, the old track was on someone else
    from the moment the new one began: it is cut there (its visit ends there; the logs move its frames since
    then off the identity), and the cut-off part, with no evidence of its own, keeps no identity. No two
    visits of one identity then overlap in time."""
    g = make_gallery(handover_s=1.0, cut_after=cut_after)
    run(g, [[(1, people[0])]] * 10)
    frames = [[(2, people[0]), (3, people[1])]] * 10 + [[(2, people[1]), (4, people[0])]] * 3 + \
        [[(3, people[1]), (4, people[0])]] * 12 + [[]] * 10
    cuts, resolved = [], {}
    for i, items in enumerate(frames):
        run(g, [items], t0=10.0 + 0.1 * i)
        cuts += [(t, g.last_cut_from[t]) for t in g.last_cut]
        resolved.update(g.last_resolved)
    assert g.identity_of(4) == "id-0001"
    assert cuts == [(2, pytest.approx(11.0))] and resolved.get(2) == ""
    rows = g.visit_rows("id-0001")
    spans = sorted((float(g.visits.start[r]), float(g.visits.end[r])) for r in rows)
    assert len(spans) == 3 and all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    # a track still in view is no handover: nothing is cut and the identities stay apart
    g = make_gallery(handover_s=5.0, cut_after=cut_after)
    out = run(g, [[(1, people[0])]] * 10 + [[(1, people[0]), (2, people[0])]] * 10)
    assert not g.last_cut and {m.track_id: m.identity for m in out[-1]} == {1: "id-0001", 2: "id-0002"}


def test_decided_early_when_decisive_and_late_track_ends_pending(people, make_gallery):
    g = make_gallery(pending_s=5.0, min_frames=2, decisive_margin=2.0)
    run(g, [[(1, people[0])]] * 3 + [[]] * 2, t0=0.0)  # ends pending, decided when lost
    assert g.identities() == [] and g.stats()["pending"] == 1
    g.match([], 3.0)  # lost_s 2 passed: the track is decided although it left
    assert g.identities() == ["id-0001"] and g.last_resolved == {1: "id-0001"}
    out = run(g, [[(2, people[0])]] * 3, t0=10.0)
    assert out[1][0].identity == "id-0001"  # 2 frames, far above the threshold: no need to wait 5 s


def test_recheck_moves_a_wrong_first_decision(people, make_gallery, unit):
    g = make_gallery(pending_s=0.2, recheck_s=0.3, switch_after=2, min_frames=2, undecided_margin=0.0)
    run(g, [[(1, people[0])]] * 4)
    mixed = unit(people[0] + people[1])[0]  # ambiguous start: new identity
    out = run(g, [[(2, mixed)]] * 4 + [[(2, people[0])]] * 40, t0=10.0)
    assert out[3][0].identity == "id-0002"
    assert out[-1][0].identity == "id-0001"
    assert "id-0002" not in g  # merged away


def test_undecided_track_waits_for_more_evidence(people, make_gallery, unit):
    g = make_gallery(pending_s=0.2, max_pending_s=1.0, min_frames=2, undecided_margin=3.0)
    run(g, [[(1, people[0])]] * 4)
    mixed = unit(people[0] + 0.9 * people[1])[0]  # just below the threshold: neither clearly known nor new
    out = run(g, [[(2, mixed)]] * 5 + [[(2, people[0])]] * 6, t0=10.0)
    assert [m[0].pending for m in out[:5]] == [True] * 5
    assert out[-1][0].identity == "id-0001" and len(g) == 1
    # still ambiguous at max_pending_s: decided then (a new identity)
    g = make_gallery(pending_s=0.2, max_pending_s=1.0, min_frames=2, undecided_margin=3.0)
    run(g, [[(1, people[0])]] * 4)
    out = run(g, [[(3, mixed)]] * 12, t0=20.0)
    assert out[9][0].pending and out[11][0].identity == "id-0002"


def test_height_alone_separates_in_the_dark(make_gallery):
    g = make_gallery(threshold=1.0)  # one cue: a height match alone is worth about 1.3 nats here

    def frames(track, height, t0):
        for k in range(5):
            cues = TrackCues([track], [1.0], [height], [0.02], [np.nan], [np.inf], None, lit=False)
            g.match([], t0 + 0.1 * k, cues)

    frames(1, 1.62, 0.0)
    frames(2, 1.90, 10.0)
    frames(3, 1.63, 20.0)
    frames(4, 1.76, 30.0)
    names = g.identities()
    assert len(names) == 3  # 1 and 3 one person; 2 and 4 strangers
    assert g.visits_of(names[0]) == 2


def test_visit_bound_and_expiry(people, make_gallery):
    g = make_gallery(max_visits_per_identity=2, max_age_s=100.0)
    for k in range(4):
        run(g, [[(k + 1, people[0])]] * 4, t0=10.0 * k)
    assert g.identities() == ["id-0001"] and g.visits_of("id-0001") == 2
    g.match([], 200.0)
    assert g.identities() == [] and g.last_expired == ["id-0001"]


def test_enrolled_identity_is_matched_and_pinned(people, make_gallery, emb):
    g = make_gallery(max_age_s=10.0)
    g.enrol("alice", [emb(people[0], [0])], 0.0)
    with pytest.raises(ValueError, match="already"):
        g.enrol("alice", [emb(people[0], [0])], 0.0)
    with pytest.raises(ValueError, match="at least one"):
        g.enrol("bob", [], 0.0)
    out = run(g, [[(1, people[0])]] * 4, t0=100.0)
    assert out[-1][0].identity == "alice" and g.is_pinned("alice")


def test_return_found_among_many_visits(people, make_gallery, unit):
    """The right identity among 2000 stored strangers (speed: reid-stream-bench, not timed here)."""
    g = make_gallery(max_age_s=1e9, max_identities=5000, undecided_margin=0.0)
    rng = np.random.default_rng(0)
    for k in range(2000):
        v = unit(rng.normal(size=(1, people.shape[1])))[0]
        run(g, [[(10 + k, v)]] * 3, t0=5.0 * k, dt=0.1)
    assert len(g.visits) == 2000
    run(g, [[(1, people[0])]] * 4, t0=5.0 * 2001)
    out = run(g, [[(2, people[0])]] * 4, t0=5.0 * 2002)
    assert out[-1][0].identity == g.identity_of(2) == "id-2001" and len(g) == 2001


def test_track_carried_onto_another_person_is_cut(people, make_gallery):
    """The tracker moves track 3 from person 0 onto person 1 after 2 s: after two contrary re-check windows
    the track is cut, its first part stays person 0's visit, and the rest, pending again, joins person 1."""
    g = make_gallery(recheck_s=0.5, cut_after=2, min_frames=2)
    run(g, [[(1, people[0])]] * 4 + [[]] * 25 + [[(2, people[1])]] * 4)
    out, cuts = [], []
    for i, items in enumerate([[(3, people[0])]] * 20 + [[(3, people[1])]] * 30):
        out += run(g, [items], t0=10.0 + 0.1 * i)
        if g.last_cut:
            cuts.append((i, g.last_cut, dict(g.last_cut_from)))
    ids = [m[0].identity for m in out]
    assert ids[19] == "id-0001"
    k = next(i for i, m in enumerate(out) if m[0].pending and i > 19)  # cut: pending again
    assert 20 < k <= 20 + 15 and ids[-1] == "id-0002"
    # the cut says from when the frames were the other person's: the start of the first contrary window,
    # within one re-check window of the change (t = 12.0)
    assert [(i, c) for i, c, _ in cuts] == [(k, [3])] and 11.5 <= cuts[0][2][3] <= 12.5
    assert g.visits_of("id-0001") == 2 and g.visits_of("id-0002") == 2 and len(g) == 2
    row = g.visit_rows("id-0001")[-1]  # the cut visit holds person 0 only and ends where the change began
    assert float(g.visits.vectors["rgbd/rgb"][row] @ people[0]) > 0.99 and g.visits.end[row] <= 12.0 + 0.5
    # without cuts the whole track goes on as one visit (moved, at best, with person 0's frames in it)
    g = make_gallery(recheck_s=0.5, cut_after=0, min_frames=2)
    run(g, [[(1, people[0])]] * 4 + [[]] * 25 + [[(2, people[1])]] * 4)
    out = run(g, [[(3, people[0])]] * 20 + [[(3, people[1])]] * 30, t0=10.0)
    assert not any(m[0].pending for m in out[19:]) and g.visits_of("id-0001") + g.visits_of("id-0002") == 3


@pytest.mark.parametrize("doubt", [0.0, None])
def test_a_doubtful_window_is_not_folded_into_its_track(people, make_gallery, unit, doubt):
    """Track 3 follows person 0 for 2 s, then for 1 s someone it half resembles (fused LLR about -1.8 against
    the track: doubtful, not contrary), then person 1. With ``cut_doubt`` the doubtful second stays out of the
    track: the cut starts where it began and person 0's visit ends there. Without it that second is folded
    into the track and the cut starts only at person 1."""
    g = make_gallery(recheck_s=1.0, cut_after=2, min_frames=2, cut_doubt=doubt)
    run(g, [[(1, people[0])]] * 4 + [[]] * 25 + [[(2, people[1])]] * 4)
    half = unit(people[0] + 1.3 * people[1])[0]
    cuts = []
    for i, items in enumerate([[(3, people[0])]] * 20 + [[(3, half)]] * 10 + [[(3, people[1])]] * 40):
        run(g, [items], t0=10.0 + 0.1 * i)
        cuts += [(t, g.last_cut_from[t]) for t in g.last_cut]
    assert [t for t, _ in cuts] == [3]
    since = cuts[0][1]
    end = float(g.visits.end[g.visit_rows("id-0001")[-1]])
    if doubt is None:
        assert 12.9 <= since <= 13.6 and end >= 12.9  # from person 1 on; the doubtful second stays in
    else:
        assert 11.9 <= since <= 12.6 and end <= 12.6  # from the doubtful second on
    assert g.identity_of(3) == "id-0002"


def test_a_wrong_cut_goes_back_to_its_identity_through_its_other_visits(people, make_gallery):
    """Person 0 has two looks (people[0] lit, people[6] at range in the dark), both visits of id-0001. Track 3
    follows them in one look, then the other: the track is cut (its windows contradict its start), and the
    piece, one track with the visit it was cut from and not a second person seen at once, joins id-0001 again
    through its other visit rather than founding a second identity."""
    g = make_gallery(recheck_s=0.5, cut_after=2, min_frames=2)
    run(g, [[(1, people[0])]] * 4 + [[]] * 25 + [[(2, people[6])]] * 4 + [[]] * 25)
    assert g.identities() == ["id-0001", "id-0002"]
    g.merge("id-0001", "id-0002")  # an operator says they are one person
    out, cut = [], False
    for i, items in enumerate([[(3, people[0])]] * 20 + [[(3, people[6])]] * 30):
        out += run(g, [items], t0=10.0 + 0.1 * i)
        cut = cut or 3 in g.last_cut
    assert cut and out[-1][0].identity == "id-0001" and g.identities() == ["id-0001"]
    assert g.visits_of("id-0001") == 4  # the two looks, the track's first part, and the piece


def test_tracks_deciding_together_share_an_identity_only_if_never_seen_at_once(people, make_gallery):
    """Two tracks of person 0, the second begun after the first was lost, both still pending when the stream
    ends, are decided together: the later one joins the identity the earlier one founds (the one-to-one
    assignment holds among tracks seen at the same time only). Two tracks of one look seen at once stay two."""
    g = make_gallery(pending_s=5.0, max_pending_s=5.0, min_frames=2, min_new_s=0.0)
    run(g, [[(1, people[0])]] * 5 + [[]] * 2 + [[(2, people[0])]] * 5)
    assert g.finish(1.2) == {1: "id-0001", 2: "id-0001"} and g.visits_of("id-0001") == 2
    g = make_gallery(pending_s=5.0, max_pending_s=5.0, min_frames=2, min_new_s=0.0)
    run(g, [[(1, people[0]), (2, people[0])]] * 5)
    assert g.finish(0.5) == {1: "id-0001", 2: "id-0002"}


def _ended_run(g, frames, t0: float):
    """``run`` one frame at a time, keeping each frame's cuts (track, from, identity of the cut-off part)."""
    cuts = []
    for i, items in enumerate(frames):
        run(g, [items], t0=t0 + 0.1 * i)
        cuts += [(i, t, g.last_cut_from[t], g.last_resolved.get(t)) for t in g.last_cut]
    return cuts


def test_a_track_that_jumps_to_someone_else_before_it_ends_loses_that_tail(people, make_gallery):
    """Track 3 follows person 0 for 2 s, then for its last 0.6 s person 1 (known as id-0002), then ends: the
    tail is cut off when the track ends (lost_s later) and joins id-0002; id-0001's visit ends before it."""
    g = make_gallery(recheck_s=0.5, cut_after=2, min_frames=2)
    run(g, [[(1, people[0])]] * 4 + [[]] * 25 + [[(2, people[1])]] * 4)
    cuts = _ended_run(g, [[(3, people[0])]] * 20 + [[(3, people[1])]] * 6 + [[]] * 25, t0=10.0)
    assert len(cuts) == 1
    i, track, since, identity = cuts[0]
    assert track == 3 and identity == "id-0002" and 11.5 <= since <= 12.0 and i > 26
    assert g.visits.end[g.visit_rows("id-0001")[-1]] <= 12.0 and g.visits_of("id-0002") == 2 and len(g) == 2
    # a tail that matches nobody founds no identity: its frames keep none
    cuts = _ended_run(g, [[(4, people[0])]] * 20 + [[(4, people[5])]] * 6 + [[]] * 25, t0=20.0)
    assert [(t, identity) for _, t, _, identity in cuts] == [(4, "")] and len(g) == 2
    # a track that stays one person to its end keeps its tail
    g = make_gallery(recheck_s=0.5, cut_after=2, min_frames=2)
    run(g, [[(1, people[0])]] * 4 + [[]] * 25 + [[(2, people[1])]] * 4)
    assert _ended_run(g, [[(3, people[0])]] * 26 + [[]] * 25, t0=10.0) == [] and g.visits_of("id-0001") == 2
    # without cuts (cut_after 0) no tail is cut either
    g = make_gallery(recheck_s=0.5, cut_after=0, min_frames=2)
    run(g, [[(1, people[0])]] * 4 + [[]] * 25 + [[(2, people[1])]] * 4)
    assert _ended_run(g, [[(3, people[0])]] * 20 + [[(3, people[1])]] * 6 + [[]] * 25, t0=10.0) == []


def test_a_founding_track_whose_tail_was_someone_else_is_checked_without_that_tail(people, make_gallery):
    """Track 3 founds an identity for person 5 on its first 0.4 s, then follows person 1 (id-0002) to its end
    (its whole evidence is then mostly person 1's): the tail is cut off and joins id-0002, and person 5 keeps
    the identity it founded (the last check scores what is left of the track; id-0002, now seen at the same
    time through the tail, is out of its reach as well)."""
    g = make_gallery(recheck_s=0.5, cut_after=2, min_frames=2, pending_s=0.3)
    run(g, [[(1, people[0])]] * 4 + [[]] * 25 + [[(2, people[1])]] * 4)
    cuts = _ended_run(g, [[(3, people[5])]] * 4 + [[(3, people[1])]] * 8 + [[]] * 25, t0=10.0)
    assert [(t, identity) for _, t, _, identity in cuts] == [(3, "id-0002")]
    assert len(g) == 3 and g.visits_of("id-0002") == 2  # person 5 keeps the identity it founded


def test_a_track_seen_in_flashes_joins_but_never_founds_an_identity(people, make_gallery):
    """A stranger detected in one frame of four for 3 s (at the far end of the depth range) founds nothing,
    in view or when it ends; detected in every frame it founds one; seen in flashes, a known person still joins."""
    g = make_gallery(pending_s=0.5, min_frames=3, min_coverage=0.5)
    run(g, [[(1, people[0])]] * 10 + [[]] * 25)  # id-0001, then gone
    flashes = [[(2, people[3])] if k % 4 == 0 else [] for k in range(30)] + [[]] * 25
    out = run(g, flashes, t0=10.0)
    assert all(m[0].pending for m in out if m) and g.identities() == ["id-0001"]
    out = run(g, [[(3, people[0])] if k % 4 == 0 else [] for k in range(30)] + [[]] * 25, t0=20.0)
    assert {m[0].identity for m in out[12:] if m} == {"id-0001"}  # a known person joins from flashes
    out = run(g, [[(4, people[3])]] * 30, t0=30.0)
    assert out[-1][0].identity == "id-0002" and g.identities() == ["id-0001", "id-0002"]
    g = make_gallery(pending_s=0.5, min_frames=3, min_coverage=0.0)  # the rule off: flashes found one
    run(g, flashes)
    assert len(g.identities()) == 1


def test_one_contrary_window_does_not_cut(people, make_gallery, unit):
    g = make_gallery(recheck_s=0.5, cut_after=2, min_frames=2)
    frames = [[(1, people[0])]] * 20 + [[(1, people[1])]] * 5 + [[(1, people[0])]] * 20  # half a second of B
    out = run(g, frames)
    assert not any(m[0].pending for m in out[3:]) and {m[0].identity for m in out[3:]} == {"id-0001"}


def test_a_glimpse_joins_but_never_founds_an_identity(people, make_gallery):
    """A track that leaves while pending after less than min_new_s joins a known identity it passes the
    threshold for, but a stranger's glimpse stays without identity; seen long enough, it founds one."""
    g = make_gallery(pending_s=1.0, min_new_s=1.0, min_frames=3)
    run(g, [[(1, people[0])]] * 15)  # 1.4 s: founds id-0001 (decided when it leaves)
    g.match([], 4.0)
    assert g.identities() == ["id-0001"]
    run(g, [[(2, people[0])]] * 5 + [[(3, people[1])]] * 5, t0=10.0)  # glimpses of 0.4 s each
    g.match([], 14.0)
    assert g.identities() == ["id-0001"] and g.visits_of("id-0001") == 2
    assert g.last_resolved.get(3, "") == "" and 3 not in g._tracks
    g2 = make_gallery(pending_s=1.0, min_new_s=0.0, min_frames=3)  # without the rule the glimpse founds one
    run(g2, [[(3, people[1])]] * 5)
    g2.match([], 4.0)
    assert g2.identities() == ["id-0001"]


def test_lit_track_meets_an_identity_seen_only_in_the_dark_on_the_dark_threshold(hand_calibration):
    """A lit track against an identity without a lit visit has only the light-independent cues (here height,
    worth about 1.3 nats): it is decided on the dark threshold (0.5), not the lit one (2.0), which needs the
    colour cues both sides of a lit pair carry."""
    from reidstream.pipeline.gallery import GalleryConfig

    cal = hand_calibration(threshold=2.0)
    cal.dark_threshold = 0.5
    g = Gallery(cal, GalleryConfig(pending_s=0.2, min_new_s=0.0, undecided_margin=0.0))

    def frames(track, height, t0, lit):
        for k in range(5):
            g.match([], t0 + 0.1 * k, TrackCues([track], [1.0], [height], [0.02], [np.nan], [np.inf], None, lit=lit))

    frames(1, 1.62, 0.0, lit=False)  # id-0001: seen only in the dark
    frames(2, 1.90, 10.0, lit=True)  # id-0002: seen lit
    assert g.pair_thresholds([True, False]).tolist() == [[0.5, 2.0], [0.5, 0.5]]
    frames(3, 1.63, 20.0, lit=True)  # the dark person, now lit: joins on the dark threshold
    frames(4, 1.91, 30.0, lit=True)  # height alone is not enough against a lit identity: a new one
    assert g.identities() == ["id-0001", "id-0002", "id-0003"] and g.visits_of("id-0001") == 2
    assert g.visits_of("id-0002") == 1
    g2 = Gallery(cal, GalleryConfig(pending_s=0.2, min_new_s=0.0, threshold=1.0))  # a set threshold: every pair
    assert g2.pair_thresholds([True]).shape == (1, 0)


def test_a_track_that_founded_an_identity_on_a_poor_start_joins_the_right_one_when_it_ends(people, make_gallery,
                                                                                           unit):
    """Track 3 starts on crops halfway between person 0 and someone else (too poor to join id-0001: new id-0002),
    then shows person 0 clearly. Re-checks are off (recheck_s 100): when it ends, its whole evidence joins
    id-0001 and id-0002, left empty, is merged away."""
    g = make_gallery(recheck_s=100.0, cut_after=0, min_frames=2)
    run(g, [[(1, people[0])]] * 4 + [[]] * 25)
    poor = unit(0.5 * people[0] + people[6])[0]
    out = run(g, [[(3, poor)]] * 6 + [[(3, people[0])]] * 24, t0=10.0)
    assert out[-1][0].identity == "id-0002" and len(g) == 2
    run(g, [[]] * 25, t0=13.0)
    assert len(g) == 1 and g.visits_of("id-0001") == 2 and g.identity_of(3) in (None, "id-0001")
    # a founded identity whose track never shows anyone known stays
    run(g, [[(4, people[5])]] * 20 + [[]] * 25, t0=20.0)
    assert len(g) == 2
