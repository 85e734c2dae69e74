"""Appearance statistics of detections: infrared contrast histograms."""

from __future__ import annotations

import numpy as np

from reidstream.pipeline.gallery.cues import IR_DIM, ir_histograms


def _person(upper: int, lower: int) -> np.ndarray:
    """A 120 x 60 infrared image: a person box with an upper and a lower garment of the given brightness."""
    img = np.zeros((120, 60), np.uint8)
    img[:60] = upper
    img[60:] = lower
    return img


BOX = np.array([[0, 0, 60, 120]], np.float32)


def test_rows_are_unit_and_follow_the_garments_contrast_not_the_light():
    dim = ir_histograms(_person(40, 80), BOX)
    bright = ir_histograms(_person(80, 160), BOX)  # the emitter nearer: everything twice as bright
    other = ir_histograms(_person(80, 40), BOX)    # bright top, dark bottom
    assert dim.shape == (1, IR_DIM)
    np.testing.assert_allclose(np.linalg.norm(dim, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(dim, bright, atol=1e-6)
    assert float(dim[0] @ other[0]) < 0.75  # the lower garment alike, the upper one not


def test_pixels_outside_the_depth_window_and_tiny_parts_are_left_out():
    img = _person(40, 80)
    depth = np.full(img.shape, 3.0, np.float32)
    depth[:, 30:] = 6.0  # the right half is the wall behind the person
    img[:, 30:] = 250
    masked = ir_histograms(img, BOX, depth, np.array([3.0]))
    np.testing.assert_allclose(masked, ir_histograms(_person(40, 80), BOX), atol=1e-6)
    assert not ir_histograms(img, np.array([[0, 0, 1, 120]], np.float32)).any()
