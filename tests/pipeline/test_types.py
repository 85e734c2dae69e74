"""Core types validate themselves and name the offending field."""

from __future__ import annotations

import numpy as np
import pytest

from reidstream.pipeline.types import (Alignment, Crops, DepthUnit, Detections, Embeddings, Frame, Intrinsics, Match,
                                       Modality, PersonAnnotation)

K = Intrinsics(8, 6, 5.0, 5.0, 4.0, 3.0)


def rgb(h=6, w=8):
    return np.zeros((h, w, 3), np.uint8)


def test_frame_holds_any_subset_of_modalities():
    f = Frame(depth=np.ones((6, 8), np.uint16), ir=np.zeros((6, 8), np.uint16), intrinsics=K, index=3)
    assert f.modalities == (Modality.DEPTH, Modality.IR)
    assert f.size == (8, 6)
    d = f.depth_metres()
    assert d.dtype == np.float32 and d[0, 0] == pytest.approx(0.001)
    with pytest.raises(KeyError, match="frame 3 .* no rgb"):
        f.image("rgb")


def test_float_depth_in_metres():
    depth = np.full((6, 8), 2.5, np.float32)
    depth[0, 0] = 0
    f = Frame(depth=depth, depth_unit=DepthUnit.METRE)
    m = f.depth_metres()
    assert np.isnan(m[0, 0]) and m[1, 1] == pytest.approx(2.5)


@pytest.mark.parametrize("kwargs, field", [
    (dict(rgb=np.zeros((6, 8), np.uint8)), "Frame.rgb"),
    (dict(rgb=np.zeros((6, 8, 3), np.float32)), "Frame.rgb"),
    (dict(depth=np.zeros((6, 8), np.int32)), "Frame.depth"),
    (dict(depth=np.zeros((6, 8), np.float32)), "Frame.depth"),  # float depth declared as millimetres
    (dict(ir=np.zeros((6, 8), np.float32)), "Frame.ir"),
    (dict(thermal=np.zeros((6, 8, 3), np.uint8)), "Frame.thermal"),
    (dict(rgb=rgb(), depth=np.zeros((5, 8), np.uint16)), "Frame.alignment"),
    (dict(rgb=rgb(), intrinsics=Intrinsics(640, 480, 1, 1, 1, 1)), "Frame.intrinsics"),
    (dict(rgb=rgb(), timestamp=float("nan")), "Frame.timestamp"),
    (dict(rgb=rgb(), index=-1), "Frame.index"),
    (dict(rgb=rgb(), camera_id=""), "Frame.camera_id"),
    (dict(), "at least one"),
])
def test_frame_rejects_bad_fields(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Frame(**kwargs)


def test_unaligned_streams_may_differ_in_size():
    f = Frame(rgb=rgb(), thermal=np.zeros((3, 4), np.uint16), alignment=Alignment.UNALIGNED, intrinsics=K,
              stream_intrinsics={Modality.THERMAL: Intrinsics(4, 3, 2, 2, 2, 1.5)})
    assert f.stream_intrinsics[Modality.THERMAL].width == 4
    with pytest.raises(ValueError, match=r"stream_intrinsics\[thermal\]"):
        Frame(rgb=rgb(), thermal=np.zeros((3, 4), np.uint16), alignment="unaligned",
              stream_intrinsics={"thermal": K})


def test_intrinsics_validate_and_project():
    k = Intrinsics.realsense_d435()
    assert (k.width, k.height) == (640, 480)
    uv = k.project(np.array([[0.0, 0.0, 2.0], [1.0, 0.5, 2.0]]))
    np.testing.assert_allclose(uv[0], [k.cx, k.cy])
    np.testing.assert_allclose(uv[1], [k.cx + k.fx / 2, k.cy + k.fy / 4])
    assert Intrinsics.from_dict(k.to_dict()) == k
    with pytest.raises(ValueError, match="Intrinsics.fx"):
        Intrinsics(640, 480, 0.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="Intrinsics.width"):
        Intrinsics(0, 480, 1.0, 1.0, 1.0, 1.0)


def test_detections():
    d = Detections([[0, 0, 10, 20], [5, 5, 6, 6]], [0.9, 0.1], modality="ir")
    assert len(d) == 2 and d.track_ids.tolist() == [-1, -1] and d.modality is Modality.IR
    assert not d.boxes.flags.writeable
    assert len(Detections.empty()) == 0
    with pytest.raises(ValueError, match="Detections.boxes"):
        Detections([[10, 0, 0, 20]], [0.5])
    with pytest.raises(ValueError, match="Detections.scores"):
        Detections([[0, 0, 1, 1]], [1.5])
    with pytest.raises(ValueError, match="Detections.track_ids"):
        Detections([[0, 0, 1, 1]], [0.5], track_ids=[1, 2])


def test_crops_and_embeddings():
    c = Crops({"rgb": [rgb(4, 2)], "depth": [np.zeros((4, 2), np.uint16)]}, [[0, 0, 2, 4]], [7])
    assert set(c.images) == {Modality.RGB, Modality.DEPTH} and len(c) == 1
    with pytest.raises(ValueError, match=r"Crops.images\[depth\]\[0\]"):
        Crops({"depth": [np.zeros((4, 2), np.float64)]}, [[0, 0, 2, 4]], [7])
    with pytest.raises(ValueError, match=r"Crops.images\[rgb\]"):
        Crops({"rgb": [rgb(), rgb()]}, [[0, 0, 2, 4]], [7])
    v = np.eye(2, 4, dtype=np.float32)
    e = Embeddings(v, "depth", "rgbd", track_ids=[1, 2])
    assert e.dim == 4 and e.space == "rgbd" and not e.vectors.flags.writeable
    with pytest.raises(ValueError, match="unit-norm"):
        Embeddings(v * 2, "depth", "rgbd")
    with pytest.raises(ValueError, match="Embeddings.vectors"):
        Embeddings(v.astype(np.float64), "depth", "rgbd")
    with pytest.raises(ValueError, match="Embeddings.space"):
        Embeddings(v, "depth", "")


def test_match_and_annotation():
    m = Match(3, "person-1", 0.2, "ir", "rgbir", is_new=True)
    assert m.modality is Modality.IR
    with pytest.raises(ValueError, match="Match.distance"):
        Match(3, "person-1", -1.0, "ir", "rgbir")
    a = PersonAnnotation(4, (1, 2, 3, 4), 0.5, 2.0)
    assert PersonAnnotation.from_dict(a.to_dict()) == a
    with pytest.raises(ValueError, match="PersonAnnotation.visible"):
        PersonAnnotation(4, (1, 2, 3, 4), 1.5)
    with pytest.raises(ValueError, match="PersonAnnotation.box"):
        PersonAnnotation(4, (3, 2, 1, 4), 0.5)
