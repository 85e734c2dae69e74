"""Hand-built FrameResults for the sink tests: 64 x 48 frames with rgb, depth and IR."""

from __future__ import annotations

import numpy as np
import pytest

from reidstream.pipeline.result import Event, FrameResult
from reidstream.pipeline.types import Detections, Frame, Intrinsics, Match, Modality, PersonAnnotation

W, H = 64, 48
K = Intrinsics(W, H, 60.0, 60.0, 31.5, 23.5)
BOXES = ((4.0, 6.0, 20.0, 40.0), (30.5, 2.25, 50.0, 46.0))


def build_frame(i: int, modalities=("rgb", "depth", "ir"), rgb: str = "random") -> Frame:
    rng = np.random.default_rng(i)
    images = {}
    if "rgb" in modalities:
        if rgb == "red":
            images["rgb"] = np.zeros((H, W, 3), np.uint8)
            images["rgb"][..., 0] = 255
        else:
            images["rgb"] = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    if "depth" in modalities:
        images["depth"] = rng.integers(500, 5000, (H, W)).astype(np.uint16)
    if "ir" in modalities:
        images["ir"] = rng.integers(0, 256, (H, W), dtype=np.uint8)
    if "thermal" in modalities:
        images["thermal"] = rng.integers(0, 256, (H, W), dtype=np.uint8)
    return Frame(**images, intrinsics=K, timestamp=10.0 + i / 15, index=i, camera_id="cam0")


def build_result(i: int, *, identities=("id-0001", "id-0002"), tracks=(5, 9), modalities=("rgb", "depth", "ir"),
                 rgb: str = "random", events=None, latency=None, detector: str = "yolo",
                 annotations=None, has_ground_truth: bool = True) -> FrameResult:
    """Frame ``i`` with len(identities) tracked people; ``events=None`` gives one 'matched' event each."""
    n = len(identities)
    det = Detections(np.array(BOXES[:n], np.float32).reshape(n, 4), np.array([0.9, 0.75][:n], np.float32),
                     np.array(tracks[:n], np.int64), Modality.RGB, i)
    matches = tuple(Match(int(t), ident, 0.2, Modality.RGB, "rgbd", frame_index=i)
                    for t, ident in zip(tracks, identities) if ident)
    if events is None:
        events = tuple(Event("matched", i, 10.0 + i / 15, "cam0", ident, int(t), "rgb", "rgbd", b, 0.2)
                       for ident, t, b in zip(identities, tracks, BOXES) if ident)
    if annotations is None:
        annotations = (PersonAnnotation(0, BOXES[0], 1.0, 3.0), PersonAnnotation(7, BOXES[1], 0.5, 4.0))[:n]
    return FrameResult(build_frame(i, modalities, rgb), det, tuple(identities), matches, tuple(events), detector,
                       latency if latency is not None else {"detect": 10.0 + i, "embed": 2.0},
                       tuple(annotations), has_ground_truth)


@pytest.fixture
def make_result():
    """``make_result(i, **options)``: see :func:`build_result`."""
    return build_result


@pytest.fixture
def make_frame():
    """``make_frame(i, modalities, rgb)``: see :func:`build_frame`."""
    return build_frame
