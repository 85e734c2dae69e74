"""Relabelling: a pending track's earlier frames reach the MOT file and the event log with its decided identity."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from reidstream.pipeline.result import Event
from reidstream.pipeline.sinks.fanout import FanOut
from reidstream.pipeline.sinks.jsonl import EventLogSink
from reidstream.pipeline.sinks.mot import MotSink
from reidstream.pipeline.sinks.relabel import Relabel
from reidstream.pipeline.types import Match, Modality


def _pending(result, track: int, first: bool):
    """``result`` with ``track`` pending (no identity); a ``pending`` event on the track's first frame."""
    ids = tuple("" if t == track else i for i, t in zip(result.identities, result.detections.track_ids))
    matches = tuple(Match(m.track_id, "", 0.0, Modality.RGB, "", frame_index=m.frame_index, pending=True)
                    if m.track_id == track else m for m in result.matches)
    if not any(m.track_id == track for m in result.matches):
        matches += (Match(track, "", 0.0, Modality.RGB, "", frame_index=result.index, pending=True),)
    events = tuple(e for e in result.events if e.track != track)
    if first:
        events += (Event("pending", result.index, result.frame.timestamp, "cam0", "", track, since=result.index),)
    return dataclasses.replace(result, identities=ids, matches=matches, events=events)


def test_pending_frames_are_relabelled_in_mot_and_events(tmp_path, make_result):
    mot, events = MotSink(tmp_path / "tracks.txt"), EventLogSink(tmp_path / "events.jsonl")
    relabel = Relabel(FanOut([mot, events]))
    for i in range(3):  # track 9 pending for 3 frames, then decided as id-0002
        relabel(_pending(make_result(i), 9, first=i == 0))
    assert (tmp_path / "tracks.txt").read_text() == ""  # held back while track 9 is undecided
    for i in range(3, 5):
        relabel(make_result(i))
    relabel.close()
    rows = [line.split(",") for line in (tmp_path / "tracks.txt").read_text().splitlines()]
    ids = json.loads((tmp_path / "tracks.txt.ids.json").read_text())["ids"]
    frames_of = {}
    for r in rows:
        frames_of.setdefault(int(r[1]), []).append(int(r[0]))
    assert frames_of[ids["id-0002"]] == [1, 2, 3, 4, 5]  # the pending frames carry the decided identity
    assert frames_of[ids["id-0001"]] == [1, 2, 3, 4, 5]
    logged = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    pending = [e for e in logged if e["kind"] == "pending"]
    assert pending == [dict(pending[0], identity="id-0002", track=9, since=0)]


def test_track_decided_after_it_left_and_dropped_tracks(tmp_path, make_result):
    mot = MotSink(tmp_path / "tracks.txt")
    relabel = Relabel(mot)
    relabel(_pending(make_result(0), 9, first=True))
    relabel(_pending(make_result(1), 9, first=False))
    gone = make_result(2, identities=("id-0001",), tracks=(5,))
    relabel(dataclasses.replace(gone, resolved={9: "id-0007"}))
    relabel.close()
    ids = json.loads((tmp_path / "tracks.txt.ids.json").read_text())["ids"]
    assert set(ids) == {"id-0001", "id-0007"}
    # a track dropped undecided ("" resolution) is released as it is, and nothing waits forever
    out = []
    r2 = Relabel(out.append, max_delay=2)
    for i in range(4):
        r2(_pending(make_result(i), 9, first=i == 0))
    assert [r.index for r in out] == [0, 1]
    r2(dataclasses.replace(make_result(4, identities=("id-0001",), tracks=(5,)), resolved={9: ""}))
    assert [r.index for r in out] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="max_delay"):
        Relabel(out.append, max_delay=-1)
    assert np.all([r.identities[1] == "" for r in out[:4]])


def test_tracks_pending_at_the_end_are_resolved_before_close(tmp_path, make_result):
    mot = MotSink(tmp_path / "tracks.txt")
    fan = FanOut([Relabel(mot)])
    for i in range(3):
        fan(_pending(make_result(i), 9, first=i == 0))
    fan.resolve("cam0", {9: "id-0042"})
    fan.close()
    ids = json.loads((tmp_path / "tracks.txt.ids.json").read_text())["ids"]
    rows = (tmp_path / "tracks.txt").read_text().splitlines()
    assert set(ids) == {"id-0001", "id-0042"} and len(rows) == 6


def test_cut_track_keeps_its_first_identity_and_relabels_only_the_pending_stretch(tmp_path, make_result):
    """Track 9 is id-0002, then (the gallery cut it: another person) pending for 2 frames, then id-0003."""
    mot = MotSink(tmp_path / "tracks.txt")
    relabel = Relabel(mot)
    for i in range(3):
        relabel(make_result(i))
    for i in range(3, 5):
        relabel(_pending(make_result(i), 9, first=i == 3))
    for i in range(5, 7):
        relabel(make_result(i, identities=("id-0001", "id-0003")))
    relabel.close()
    ids = json.loads((tmp_path / "tracks.txt.ids.json").read_text())["ids"]
    frames_of = {}
    for r in (line.split(",") for line in (tmp_path / "tracks.txt").read_text().splitlines()):
        frames_of.setdefault(int(r[1]), []).append(int(r[0]))
    assert frames_of[ids["id-0002"]] == [1, 2, 3] and frames_of[ids["id-0003"]] == [4, 5, 6, 7]


def _rows_by_identity(path):
    ids = {v: k for k, v in json.loads((path.parent / (path.name + ".ids.json")).read_text())["ids"].items()}
    frames_of = {}
    for r in (line.split(",") for line in path.read_text().splitlines()):
        frames_of.setdefault(ids[int(r[1])], []).append(int(r[0]) - 1)
    return frames_of


def test_switch_soon_after_the_decision_relabels_the_whole_track(tmp_path, make_result):
    """Track 9 pending (frames 0-2), taken for someone new (id-0005, frames 3-5), then switched by the
    gallery's re-checks to a returning person (id-0002) at frame 6, within revise_s: the logs say id-0002
    from the track's first frame, and the first decision's identity never reaches them."""
    mot, events = MotSink(tmp_path / "tracks.txt"), EventLogSink(tmp_path / "events.jsonl")
    relabel = Relabel(FanOut([mot, events]), revise_s=1.0)  # frames are 1/15 s apart
    for i in range(3):
        relabel(_pending(make_result(i), 9, first=i == 0))
    for i in range(3, 6):
        relabel(make_result(i, identities=("id-0001", "id-0005")))
    assert (tmp_path / "tracks.txt").read_text() == ""  # held: within revise_s of the decision
    for i in range(6, 12):
        relabel(make_result(i))
    assert (tmp_path / "tracks.txt").read_text() == ""  # frame 11 is 0.53 s after the decision
    for i in range(12, 30):
        relabel(make_result(i))
    assert len((tmp_path / "tracks.txt").read_text().splitlines()) == 2 * 30  # all out once revise_s has passed
    relabel.close()
    frames_of = _rows_by_identity(tmp_path / "tracks.txt")
    assert set(frames_of) == {"id-0001", "id-0002"} and frames_of["id-0002"] == list(range(30))
    logged = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["identity"] for e in logged if e["kind"] == "pending"] == ["id-0002"]
    assert {e["identity"] for e in logged if e["kind"] == "matched" and e["frame"] in (3, 4, 5)} >= {"id-0005"}


@pytest.mark.parametrize("revise_s,late", [(0.0, 6), (1.0, 25)])
def test_a_later_switch_or_no_revision_keeps_the_first_identity(tmp_path, make_result, revise_s, late):
    """Without revise_s, or when the switch comes after it (frame 25: 1.4 s after the decision), the frames
    before the switch keep the identity they were given."""
    mot = MotSink(tmp_path / "tracks.txt")
    relabel = Relabel(mot, revise_s=revise_s)
    for i in range(late):
        relabel(make_result(i, identities=("id-0001", "id-0005")))
    for i in range(late, late + 3):
        relabel(make_result(i))
    relabel.close()
    frames_of = _rows_by_identity(tmp_path / "tracks.txt")
    assert frames_of["id-0005"] == list(range(late)) and frames_of["id-0002"] == list(range(late, late + 3))
    with pytest.raises(ValueError, match="revise_s"):
        Relabel(mot, revise_s=-1.0)


def test_cut_within_revise_s_keeps_the_first_stretch(tmp_path, make_result):
    """A switch before a cut relabels only the stretch before the cut; the new stretch keeps its own identity."""
    mot = MotSink(tmp_path / "tracks.txt")
    relabel = Relabel(mot, revise_s=5.0)
    for i in range(2):
        relabel(make_result(i, identities=("id-0001", "id-0005")))
    relabel(make_result(2))  # switched to id-0002
    for i in range(3, 5):
        relabel(_pending(make_result(i), 9, first=i == 3))  # cut: another person
    for i in range(5, 7):
        relabel(make_result(i, identities=("id-0001", "id-0005")))  # decided: id-0005 (not a switch)
    relabel.close()
    frames_of = _rows_by_identity(tmp_path / "tracks.txt")
    assert frames_of["id-0002"] == [0, 1, 2] and frames_of["id-0005"] == [3, 4, 5, 6]


def _cut_run(tmp_path, make_result, hold_s: float, revise_s: float = 0.2):
    """Track 9 is id-0002 (frames 0-9). At frame 10 the gallery cuts it: from the start of its first contrary
    window (after frame 5, t = 10 + 5/15 s) it was someone else; the rest continues as track 50000000,
    pending for frames 10-11, then id-0003."""
    mot, events = MotSink(tmp_path / "tracks.txt"), EventLogSink(tmp_path / "events.jsonl")
    relabel = Relabel(FanOut([mot, events]), revise_s=revise_s, hold_s=hold_s)
    for i in range(10):
        relabel(make_result(i, events=()))
    new = 50_000_000
    for i in (10, 11):
        r = _pending(make_result(i, tracks=(5, new), events=()), new, first=i == 10)
        relabel(dataclasses.replace(r, cuts={new: (9, 10.0 + 5 / 15)}) if i == 10 else r)
    for i in range(12, 60):
        relabel(make_result(i, identities=("id-0001", "id-0003"), tracks=(5, new), events=()))
    relabel.close()
    rows = [[int(v) for v in line.split(",")[:2]] for line in (tmp_path / "tracks.txt").read_text().splitlines()]
    names = {v: k for k, v in json.loads((tmp_path / "tracks.txt.ids.json").read_text())["ids"].items()}
    frames_of = {}
    for frame, ident in rows:
        frames_of.setdefault(names[ident], []).append(frame - 1)
    logged = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    return frames_of, [e for e in logged if e["kind"] == "pending"]


def test_a_cut_moves_the_frames_since_its_first_contrary_window_to_the_new_track(tmp_path, make_result):
    frames_of, pending = _cut_run(tmp_path, make_result, hold_s=3.0)
    assert frames_of["id-0002"] == list(range(6))  # frames up to the window's start keep the first person
    assert frames_of["id-0003"] == list(range(6, 60))  # the frames the tracker carried onto the other person
    assert frames_of["id-0001"] == list(range(60))
    assert [(e["track"], e["identity"], e["since"]) for e in pending] == [(50_000_000, "id-0003", 6)]


def test_without_hold_a_cut_moves_only_what_is_still_held(tmp_path, make_result):
    """hold_s 0: track 9's frames are written once revise_s (0.2 s) has passed since its decision, before the
    cut comes; they keep the identity they were written with."""
    frames_of, pending = _cut_run(tmp_path, make_result, hold_s=0.0)
    assert frames_of["id-0002"] == list(range(10)) and frames_of["id-0003"] == list(range(10, 60))
    assert [(e["track"], e["since"]) for e in pending] == [(50_000_000, 10)]
    with pytest.raises(ValueError, match="hold_s"):
        Relabel(MotSink(tmp_path / "x.txt"), hold_s=-1.0)


def test_a_tail_cut_off_when_the_track_ended_gets_the_identity_it_was_given(tmp_path, make_result):
    """Track 9 (id-0002) ends at frame 9; its last frames (after t = 10 + 5/15 s) were someone else: the gallery
    cuts that tail off when the track ends (frame 20) and decides it (id-0003 in one run, nobody in the other)."""
    for tail_identity, expect in (("id-0003", {"id-0002": list(range(6)), "id-0003": [6, 7, 8, 9]}),
                                  ("", {"id-0002": list(range(6))})):
        path = tmp_path / f"tracks{tail_identity}.txt"
        relabel = Relabel(MotSink(path), revise_s=0.2, hold_s=4.5)
        for i in range(10):
            relabel(make_result(i, events=()))
        for i in range(10, 20):
            relabel(make_result(i, identities=("id-0001",), tracks=(5,), events=()))
        relabel(dataclasses.replace(make_result(20, identities=("id-0001",), tracks=(5,), events=()),
                                    cuts={50_000_000: (9, 10.0 + 5 / 15)}, resolved={50_000_000: tail_identity}))
        relabel.close()
        frames_of = _rows_by_identity(path)
        assert frames_of.pop("id-0001") == list(range(21)) and frames_of == expect


def test_results_are_held_without_their_pixels_and_the_logs_stay_the_same(tmp_path, make_result):
    """strip_pixels: what the log sinks receive has a 1 x 1 stand-in image, the same time, index, camera,
    tracks, identities and light; the MOT file is byte for byte the one written from full frames."""
    got = {}
    for strip in (False, True):
        out, mot = [], MotSink(tmp_path / f"tracks-{strip}.txt")
        relabel = Relabel(FanOut([out.append, mot]), revise_s=1.0, hold_s=2.0, strip_pixels=strip)
        for i in range(3):
            relabel(dataclasses.replace(_pending(make_result(i), 9, first=i == 0), lit=True))
        for i in range(3, 40):
            relabel(dataclasses.replace(make_result(i), lit=i % 2 == 0 or None))
        relabel.close()
        got[strip] = (out, (tmp_path / f"tracks-{strip}.txt").read_text())
    (full, mot_full), (light, mot_light) = got[False], got[True]
    assert mot_light == mot_full and len(light) == len(full) == 40
    for a, b in zip(full, light):
        assert (b.frame.timestamp, b.index, b.frame.camera_id, b.lit) == (a.frame.timestamp, a.index,
                                                                         a.frame.camera_id, a.lit)
        assert b.identities == a.identities and np.array_equal(b.detections.track_ids, a.detections.track_ids)
        if a.lit is None:  # the light test of reid-score reads the colour image
            assert np.array_equal(b.frame.rgb, a.frame.rgb)
        else:
            assert sum(getattr(b.frame, m.value).size for m in b.frame.modalities) <= 3
