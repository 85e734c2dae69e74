"""The event log (JSON lines) and the MOT-challenge files."""

from __future__ import annotations

import json

import pytest

from reidstream.pipeline.result import Event
from reidstream.pipeline.sinks import EventLogSink, GroundTruthMotSink, MotSink
from reidstream.pipeline.sinks.mot import ids_path


def read_lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def test_event_lines_parse_back_equal_to_the_events(tmp_path, make_result):
    path = tmp_path / "logs" / "run1" / "events.jsonl"  # parent folders are created
    expired = Event("expired", 2, 10.2, "cam0", "id-0009")
    results = [make_result(0), make_result(1, events=()), make_result(2, events=(expired,))]
    sink = EventLogSink(path)
    sent = []
    for r in results:
        sink(r)
        sent += [e.to_dict() for e in r.events]
        assert [json.loads(s) for s in read_lines(path)] == sent  # flushed per frame, before close
    sink.close()
    sink.close()
    assert len(sent) == 3 and sent[-1]["kind"] == "expired" and sink.events_written == 3


def test_event_log_refuses_to_overwrite_unless_asked(tmp_path, make_result):
    path = tmp_path / "events.jsonl"
    path.write_text('{"kind": "old"}\n')
    with pytest.raises(FileExistsError, match="events.jsonl.*append=True.*overwrite=True"):
        EventLogSink(path)
    with EventLogSink(path, append=True) as sink:
        sink(make_result(0))
    assert len(read_lines(path)) == 3 and json.loads(read_lines(path)[0]) == {"kind": "old"}
    with EventLogSink(path, overwrite=True) as sink:
        sink(make_result(1))
    assert [json.loads(s)["frame"] for s in read_lines(path)] == [1, 1]
    with pytest.raises(ValueError, match="at most one"):
        EventLogSink(path, append=True, overwrite=True)
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    EventLogSink(empty).close()  # an empty file is not "existing output"


def test_mot_lines_are_one_based_with_stable_positive_ids(tmp_path, make_result):
    path = tmp_path / "mot" / "hyp.txt"
    sink = MotSink(path, ids_every=2)
    sink(make_result(0, identities=("id-0001", "id-0002")))
    sink(make_result(1, identities=("id-0002", "id-0001")))  # order swapped: ids follow the identity
    assert json.loads(ids_path(path).read_text())["ids"] == {"id-0001": 1, "id-0002": 2}  # written periodically
    sink(make_result(2, identities=("id-0007", "")))  # undecided detection: no line
    sink.close()
    lines = read_lines(path)
    assert lines[0] == "1,1,4.00,6.00,16.00,34.00,0.9000,-1,-1,-1"
    assert lines[1] == "1,2,30.50,2.25,19.50,43.75,0.7500,-1,-1,-1"
    assert [tuple(s.split(",")[:2]) for s in lines] == [("1", "1"), ("1", "2"), ("2", "2"), ("2", "1"), ("3", "3")]
    assert all(len(s.split(",")) == 10 and s.endswith(",-1,-1,-1") for s in lines)
    doc = json.loads(ids_path(path).read_text())
    assert doc["id_source"] == "identity" and doc["ids"] == {"id-0001": 1, "id-0002": 2, "id-0007": 3}


def test_mot_track_ids_and_resumed_runs_keep_the_mapping(tmp_path, make_result):
    path = tmp_path / "tracks.txt"
    with MotSink(path, id_source="track") as sink:
        sink(make_result(0, tracks=(5, 9)))
        sink(make_result(1, tracks=(9, 5)))
    assert [s.split(",")[1] for s in read_lines(path)] == ["1", "2", "2", "1"]
    with pytest.raises(FileExistsError):
        MotSink(path, id_source="track")
    with pytest.raises(ValueError, match="id_source"):
        MotSink(path, id_source="identity", append=True)  # the side file says "track"
    with MotSink(path, id_source="track", append=True) as sink:
        sink(make_result(2, tracks=(9, 11)))
    assert [s.split(",")[:2] for s in read_lines(path)[4:]] == [["3", "2"], ["3", "3"]]
    with pytest.raises(ValueError, match="id_source"):
        MotSink(tmp_path / "x.txt", id_source="name")


def test_ground_truth_mot_file(tmp_path, make_result):
    path = tmp_path / "gt.txt"
    with GroundTruthMotSink(path, min_visible=0.25) as sink:
        sink(make_result(0))
        sink(make_result(1, has_ground_truth=False))
        sink(make_result(2, identities=("id-0001",)))
    assert read_lines(path) == ["1,1,4.00,6.00,16.00,34.00,1.0000,-1,-1,-1",
                                "1,8,30.50,2.25,19.50,43.75,1.0000,-1,-1,-1",
                                "3,1,4.00,6.00,16.00,34.00,1.0000,-1,-1,-1"]
    assert sink.frames_without_ground_truth == 1
    assert json.loads(ids_path(path).read_text())["ids"] == {"0": 1, "7": 8}
    with GroundTruthMotSink(tmp_path / "gt2.txt", min_visible=0.6) as sink:
        sink(make_result(0))
    assert len(read_lines(tmp_path / "gt2.txt")) == 1  # the half-visible person is left out
