"""Per-modality crops of detections: aligned and unaligned streams, dtypes, padding, degenerate boxes."""

from __future__ import annotations

import numpy as np
import pytest

from reidstream.pipeline.crops import boxes_in, cut_crops, intrinsics_of, map_boxes, reference_modality, valid_boxes
from reidstream.pipeline.types import Alignment, Crops, DepthUnit, Detections, Frame, Intrinsics, Modality


def _frame(h: int = 48, w: int = 64, **kw) -> Frame:
    rng = np.random.default_rng(0)
    return Frame(rgb=rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
                 depth=rng.integers(1, 9000, (h, w), dtype=np.uint16),
                 ir=rng.integers(0, 256, (h, w), dtype=np.uint8),
                 thermal=rng.integers(29000, 31000, (h, w), dtype=np.uint16),
                 intrinsics=Intrinsics.realsense_d435(w, h), index=7, **kw)


def _dets(boxes, ids=None) -> Detections:
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    return Detections(b, np.full(len(b), 0.9, np.float32), ids, Modality.RGB, 7)


def test_aligned_crops_are_slices_of_every_stream():
    f = _frame()
    crops = cut_crops(f, _dets([[10, 5, 30, 45], [40.4, 0.6, 63.6, 20.2]], [3, 8]))
    assert isinstance(crops, Crops) and len(crops) == 2 and crops.frame_index == 7
    assert set(crops.images) == set(Modality) and crops.track_ids.tolist() == [3, 8]
    for m in Modality:
        first, second = crops.images[m]
        np.testing.assert_array_equal(first, f.image(m)[5:45, 10:30])
        np.testing.assert_array_equal(second, f.image(m)[0:21, 40:64])  # fractional edges: pixels touched
        assert first.dtype == f.image(m).dtype and first.ndim == f.image(m).ndim
    assert crops.images[Modality.RGB][0].shape == (40, 20, 3) and crops.images[Modality.IR][0].shape == (40, 20)
    crops.images[Modality.DEPTH][0][:] = 0  # copies, not views of the frame
    assert f.depth[5:45, 10:30].all()


def test_padding_and_clipping():
    f = _frame()
    crops = cut_crops(f, _dets([[10, 10, 30, 30], [50, 0, 64, 20]]), [Modality.RGB, "depth"], pad=0.25)
    assert set(crops.images) == {Modality.RGB, Modality.DEPTH}
    assert crops.images[Modality.RGB][0].shape[:2] == (30, 30)  # 20 px + 5 px each side
    np.testing.assert_allclose(crops.boxes, [[5, 5, 35, 35], [46.5, 0, 64, 25]])  # clipped to the image
    assert crops.images[Modality.DEPTH][1].shape == (25, 18)
    with pytest.raises(ValueError, match="pad"):
        cut_crops(f, _dets([[10, 10, 30, 30]]), pad=-0.1)


def test_metre_depth_keeps_its_dtype():
    f = _frame()
    metres = Frame(depth=f.depth_metres(), intrinsics=f.intrinsics, depth_unit=DepthUnit.METRE)
    crop = cut_crops(metres, _dets([[0, 0, 8, 8]])).images[Modality.DEPTH][0]
    assert crop.dtype == np.float32 and crop.shape == (8, 8)


def test_unaligned_streams_map_through_normalised_coordinates():
    k = Intrinsics(64, 48, 60.0, 60.0, 31.5, 23.5)
    half = Intrinsics(32, 24, 30.0, 30.0, 15.5, 11.5)  # same field of view, half the pixels
    depth = np.zeros((24, 32), np.uint16)
    depth[5:10, 8:12] = 1000  # the person, in depth pixels
    f = Frame(rgb=np.zeros((48, 64, 3), np.uint8), depth=depth, intrinsics=k, alignment=Alignment.UNALIGNED,
              stream_intrinsics={Modality.DEPTH: half})
    assert reference_modality(f) is Modality.RGB and intrinsics_of(f, "depth") == half and intrinsics_of(f, "rgb") == k
    np.testing.assert_allclose(boxes_in(f, np.array([[16, 10, 24, 20]]), Modality.DEPTH), [[8, 5, 12, 10]])
    np.testing.assert_allclose(map_boxes(np.array([[8, 5, 12, 10]]), half, k), [[16, 10, 24, 20]])
    crop = cut_crops(f, _dets([[16, 10, 24, 20]])).images[Modality.DEPTH][0]
    assert crop.shape == (5, 4) and (crop == 1000).all()
    # Without intrinsics for a stream: scaled by the image sizes.
    g = Frame(rgb=np.zeros((48, 64, 3), np.uint8), depth=depth, alignment=Alignment.UNALIGNED)
    np.testing.assert_allclose(boxes_in(g, np.array([[16, 10, 24, 20]]), Modality.DEPTH), [[8, 5, 12, 10]])
    # A frame without colour: boxes are in its first stream's grid.
    assert reference_modality(Frame(depth=depth, ir=np.zeros((24, 32), np.uint8))) is Modality.DEPTH


def test_degenerate_boxes_are_dropped_first():
    f = _frame()
    dets = _dets([[10, 10, 30, 30], [20, 20, 20, 40], [70, 10, 90, 30], [60, 10, 66, 30], [5, 5, 12, 12]],
                 [1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="valid_boxes"):
        cut_crops(f, dets)
    assert valid_boxes(dets, 8).track_ids.tolist() == [1, 3]  # sizes only (3 lies outside the image)
    kept = valid_boxes(dets, 4, frame=f)  # clipped to the image too
    assert kept.track_ids.tolist() == [1, 4, 5] and kept.frame_index == 7
    crops = cut_crops(f, kept)
    assert [c.shape for c in crops.images[Modality.IR]] == [(20, 20), (20, 4), (7, 7)]
    assert valid_boxes(kept, 4, frame=f) is kept
    assert len(cut_crops(f, Detections.empty())) == 0
    with pytest.raises(KeyError, match="no thermal"):
        cut_crops(Frame(rgb=f.rgb), kept, ["thermal"])
