"""The floor-grid background of the depth detector: what it learns, what it leaves alone, when it starts afresh."""

from __future__ import annotations

import numpy as np

from reidstream.pipeline.body.floor import FloorPlane
from reidstream.pipeline.detect.background import FloorBackground

FLOOR = FloorPlane(np.array([0.0, -1.0, 0.0], np.float32), 2.2)


def _frame(bg: FloorBackground, points: np.ndarray, t: float, feet=None, plane=FLOOR) -> np.ndarray:
    cells = bg.cells(points[:, 0], points[:, 1], plane, t)
    bg.update(cells, np.empty((0, 2)) if feet is None else feet)
    return cells


def test_a_static_band_becomes_background_and_a_passer_by_does_not():
    bg = FloorBackground(cell=0.1, max_range=9.0, time_constant_s=5.0, share=0.2)
    rng = np.random.default_rng(0)
    wall = np.stack([np.linspace(-3, 3, 60), np.full(60, 8.2)], axis=1)
    for i in range(30):  # 1 s at 30 fps: the band is there in every frame, a person passes once
        noisy = wall + rng.normal(0, [0.0, 0.02], wall.shape)
        passer = np.array([[-2.0 + 0.1 * i, 4.0]])
        cells = _frame(bg, np.concatenate([noisy, passer]), i / 30)
    assert bg.mask[cells[:60]].mean() > 0.9  # the band is background
    passer_cells = bg.cells(np.array([-2.0 + 0.1 * k for k in range(30)]), np.full(30, 4.0), FLOOR, 1.0)
    assert not bg.mask[passer_cells].any()  # each cell held the passer-by in one frame of 30
    assert not bg.mask[-1]  # the "outside" cell never is background


def test_a_detected_person_standing_still_does_not_fade_into_the_background():
    bg = FloorBackground(cell=0.1, max_range=9.0, time_constant_s=2.0, share=0.2)
    person = np.array([[1.0, 5.0], [1.05, 5.05], [0.95, 5.1]])
    for i in range(300):  # 10 s standing still, detected there every frame
        cells = _frame(bg, person, i / 30, feet=np.array([[1.0, 5.05]]))
    assert not bg.mask[cells].any()
    for i in range(300, 330):  # the same points, no one detected: now it is learned
        cells = _frame(bg, person, i / 30)
    assert bg.mask[cells].all()


def test_the_background_starts_afresh_when_the_floor_moves_and_can_be_off():
    bg = FloorBackground(cell=0.1, max_range=9.0, time_constant_s=5.0, share=0.2)
    band = np.stack([np.linspace(-1, 1, 20), np.full(20, 6.0)], axis=1)
    for i in range(10):
        cells = _frame(bg, band, i / 30)
    assert bg.mask[cells].all()
    tilted = FloorPlane(np.array([0.0, -np.cos(0.05), np.sin(0.05)], np.float32), 2.2)  # 2.9 degrees
    bg.cells(band[:, 0], band[:, 1], tilted, 0.5)
    assert not bg.mask.any()
    off = FloorBackground(cell=0.1, max_range=9.0, time_constant_s=0.0, share=0.2)
    for i in range(10):
        cells = _frame(off, band, i / 30)
    assert (cells == off.n * off.n).all() and not off.mask.any()
