"""The detector-recall command on a real simulated recording: what it counts, and its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reidstream.pipeline.detect.depth_people import DepthPeopleConfig
from reidstream.pipeline.eval.detector import evaluate, main, match_frame


def test_every_ground_truth_box_is_counted_and_near_people_are_found(make_sim_recording, capsys):
    rec = make_sim_recording(40, 3, 3)
    boxes = sum(len(json.loads(line)["annotations"]) for line in (rec / "frames.jsonl").read_text().splitlines())
    r = evaluate(str(rec), DepthPeopleConfig())
    found, total = r.recall()
    assert total == boxes and 0 < found <= total and 0 <= r.false <= r.detections
    assert 0 <= r.duplicates <= r.detections - r.false  # a duplicate overlaps someone: it is not false
    near_found, near = r.recall(0.0, 5.0)
    assert near and near_found / near >= 0.6, f"{near_found}/{near} people below 5 m found"
    assert main([str(rec)]) == 0  # the command prints the same count
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:4] == ["all", str(found), "/", str(total)]
    assert out[-1].endswith(f"false (IoU < 0.3 with every person) {r.false}, duplicates (a person found twice) "
                            f"{r.duplicates}")
    off = evaluate(str(rec), DepthPeopleConfig(background_s=0.0))  # settings reach the detector
    assert main([str(rec), "background_s=0"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:4] == ["all", str(off.recall()[0]), "/", str(total)]


@pytest.mark.parametrize("argv, message", [(["{rec}", "bogus=1"], "bogus"), (["{missing}"], "recording.json")])
def test_bad_input_is_a_clear_error(make_sim_recording, tmp_path, capsys, argv, message):
    rec = make_sim_recording(3, 0, 1)
    argv = [a.format(rec=rec, missing=tmp_path / "none") for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_one_frame_is_matched_as_the_module_says():
    """Person 0 found twice (IoU 0.82 and 0.67: the second box is a duplicate), person 1 missed (IoU 0.4 only),
    a box on nobody is false; an empty frame makes every box false."""
    gt = np.array([[0, 0, 10, 10], [40, 0, 50, 10]], np.float64)
    boxes = np.array([[1, 0, 11, 10], [0, 0, 10, 15], [100, 0, 110, 10], [40, 0, 44, 10]], np.float64)
    found, false, duplicates = match_frame(gt, boxes)
    assert found.tolist() == [True, False] and false == 1 and duplicates == 1
    found, false, duplicates = match_frame(gt[:0], boxes)
    assert found.tolist() == [] and false == 4 and duplicates == 0
    found, false, duplicates = match_frame(gt, boxes[:0])
    assert found.tolist() == [False, False] and false == 0 and duplicates == 0
