"""Shared helpers of the gallery tests: unit vectors, one-space embeddings, a hand-made calibration."""

from __future__ import annotations

import numpy as np
import pytest

from reidstream.pipeline.gallery import Gallery, GalleryConfig
from reidstream.pipeline.gallery.calibration import Calibration, CueModel
from reidstream.pipeline.types import Embeddings, Modality

D = 32


def _unit(x) -> np.ndarray:
    x = np.atleast_2d(np.asarray(x, np.float64))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _emb(vectors, tracks, space="rgbd", modality=Modality.RGB) -> Embeddings:
    return Embeddings(_unit(vectors), modality, space, np.asarray(tracks, np.int64))


def calibration(threshold: float = 2.0) -> Calibration:
    """rgbd/rgb and rgbir/rgb colour cues: LLR 6 at distance 0, 0 at 0.3, -6 at 0.6 and beyond; height in metres."""
    cue = CueModel("logistic", (6.0, -20.0), 0.99, 100, 100)
    return Calibration({"rgbd/rgb~rgbd/rgb|any": cue, "rgbir/rgb~rgbir/rgb|any": CueModel(**vars(cue)),
                        "height|any": CueModel("gauss", (0.02, 0.1), 0.9, 100, 100)}, threshold)


def _gallery(**config) -> Gallery:
    config.setdefault("pending_s", 0.2)
    config.setdefault("min_new_s", 0.0)  # the hand-made tracks here are a few frames long (min_new_s: its own test)
    return Gallery(calibration(), GalleryConfig(**config))


@pytest.fixture
def unit():
    """``unit(x)``: rows scaled to unit length (float32)."""
    return _unit


@pytest.fixture
def emb():
    """``emb(vectors, tracks, space="rgbd", modality=RGB)``: an :class:`Embeddings` of unit rows."""
    return _emb


@pytest.fixture
def hand_calibration():
    """``hand_calibration(threshold)``: the hand-made :func:`calibration`."""
    return calibration


@pytest.fixture
def make_gallery():
    """``make_gallery(**config)``: a gallery with the hand-made :func:`calibration` (pending 0.2 s by default)."""
    return _gallery


@pytest.fixture
def people():
    return _unit(np.random.default_rng(3).normal(size=(8, D)))
