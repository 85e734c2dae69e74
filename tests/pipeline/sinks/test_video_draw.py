"""The annotated mosaic and the video sink, read back with real OpenCV video I/O."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from reidstream.pipeline.result import FrameResult
from reidstream.pipeline.sinks import AnnotatedVideoSink, identity_colour, render_mosaic
from reidstream.pipeline.sinks import video as video_mod
from reidstream.pipeline.types import Detections

W, H = 64, 48  # the size of the frames built in conftest.py


def read_video(path):
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    return frames


def red_dominant(img: np.ndarray) -> int:
    b, g, r = (img[..., c].astype(int) for c in range(3))
    return int(((r > g + 40) & (r > b + 40)).sum())


def test_mosaic_layout_boxes_and_placeholders(make_result):
    r = make_result(0, modalities=("rgb", "depth", "ir"))
    img = render_mosaic(r, ("rgb", "depth", "thermal"), fps=14.5)
    assert img.dtype == np.uint8 and img.shape[1] == 3 * W and img.shape[0] > H
    colour = identity_colour("id-0001")
    assert tuple(img[25, 4]) == colour and tuple(img[25, W + 4]) == colour  # aligned: boxes on every tile
    assert tuple(img[45, 2 * W + 60]) == (48, 48, 48)  # no thermal: flat dark grey
    assert identity_colour("id-0001") == colour != identity_colour("id-0002")
    assert render_mosaic(r, ("rgb", "depth", "thermal"), fps=14.5).shape == img.shape
    with pytest.raises(ValueError, match="tiles.*'colour'"):
        render_mosaic(r, ("colour",))


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_video_written_and_read_back(tmp_path, suffix, make_result):
    path = tmp_path / "out" / f"run{suffix}"
    results = [make_result(i) for i in range(6)]
    with AnnotatedVideoSink(path, fps=15) as sink:
        for r in results:
            sink(r)
    assert sink.frames_written == 6
    mh, mw = render_mosaic(results[0]).shape[:2]
    frames = read_video(path)
    assert len(frames) == 6
    assert frames[0].shape == (mh + mh % 2, mw + mw % 2, 3)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        AnnotatedVideoSink(path)


def test_video_size_is_fixed_by_the_first_frame(tmp_path, make_result, make_frame):
    small = make_frame(1)
    half = type(small)(rgb=small.rgb[::2, ::2].copy(), index=1)
    r1 = FrameResult(half, Detections.empty(frame_index=1), ())
    path = tmp_path / "v.avi"
    with AnnotatedVideoSink(path) as sink:
        sink(make_result(0))
        sink(r1)
    frames = read_video(path)
    assert len(frames) == 2 and frames[0].shape == frames[1].shape


def test_privacy_video_has_no_colour_pixels_in_the_rgb_tile(tmp_path, make_result):
    results = [make_result(i, rgb="red") for i in range(3)]
    shown, hidden = tmp_path / "shown.avi", tmp_path / "hidden.avi"
    for path, privacy in ((shown, False), (hidden, True)):
        with AnnotatedVideoSink(path, privacy=privacy) as sink:
            for r in results:
                sink(r)
    assert red_dominant(read_video(shown)[0][:H, :W]) > W * H // 2  # the control: red is visible
    for img in read_video(hidden):
        tile = img[:H, :W]
        assert red_dominant(tile) == 0
        assert int((tile.max(axis=2).astype(int) - tile.min(axis=2)).max()) < 24  # achromatic tile


def test_video_errors_name_path_and_codec(tmp_path, monkeypatch, make_result):
    with pytest.raises(ValueError, match=r"\.mkv.*mp4v .mp4 or MJPG .avi"):
        AnnotatedVideoSink(tmp_path / "x.mkv")
    with pytest.raises(ValueError, match="tiles"):
        AnnotatedVideoSink(tmp_path / "x.avi", tiles=("rgb", "x"))

    class Closed:
        def __init__(self, *args):
            pass

        def isOpened(self):
            return False

        def release(self):
            pass

    Closed.fourcc = staticmethod(cv2.VideoWriter.fourcc)
    monkeypatch.setattr(video_mod.cv2, "VideoWriter", Closed)
    sink = AnnotatedVideoSink(tmp_path / "x.mp4")
    with pytest.raises(RuntimeError, match=r"x\.mp4.*codec 'mp4v'"):
        sink(make_result(0))
    sink.close()
