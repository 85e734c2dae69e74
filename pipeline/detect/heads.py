"""Heads on the depth detector's floor grid, and clusters split by them (steps 5-6 of
:mod:`~reidstream.pipeline.detect.depth_people`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from reidstream.pipeline.detect.depth_people import DepthPeopleConfig


def find_heads(c: DepthPeopleConfig, top: np.ndarray, counts: np.ndarray, a0: float, b0: float,
               free: np.ndarray) -> np.ndarray:
    """Head cells: local maxima of the top height, ``head_prominence`` above the ring 0.3-0.45 m out,
    with at least 5 points within 0.15 m (a stray point is no head). Along the line of sight the ring is
    pushed out by the depth-noise smear (``2 * depth_noise * z^2``): at range a head's own points spread
    that far towards and away from the camera (grid origin ``a0``, ``b0``: the camera is at ``-a0, -b0``);
    that ring is taken from ``free``, the top heights without structure and background, since at range it
    reaches the wall a person stands before (a wall's remnants are background by then). ``c``: the
    detector's settings; ``top``, ``counts``, ``free``: per floor-grid cell."""
    rs = int(round(0.15 / c.cell))
    occupied = cv2.boxFilter(counts.astype(np.float32), -1, (2 * rs + 1, 2 * rs + 1), normalize=False) >= 5
    r_in, r_out, r_peak = 0.3 / c.cell, 0.45 / c.cell, 0.2 / c.cell
    ro = int(math.ceil(r_out))
    yy, xx = np.mgrid[-ro:ro + 1, -ro:ro + 1]
    dist = np.hypot(yy, xx)
    ring = cv2.dilate(top, ((dist >= r_in) & (dist <= r_out)).astype(np.uint8))
    peak = cv2.dilate(top, (dist <= r_peak).astype(np.uint8))
    cand = (counts > 0) & occupied & (top >= peak) & (top >= c.min_height) & (top <= c.max_height)
    ci, cj = np.nonzero(cand)
    ca, cb = a0 + (ci + 0.5) * c.cell, b0 + (cj + 0.5) * c.cell
    rng = np.hypot(ca, cb)
    smear = 2.0 * c.depth_noise * rng ** 2 / c.cell  # cells
    far = smear > 0.5 * r_in  # where the smear reaches halfway to the ring (about 5 m)
    prominent = top[ci, cj] - ring[ci, cj] >= c.head_prominence
    if far.any():  # elliptic ring, stretched along the line of sight by the smear
        fi, fj, sm = ci[far], cj[far], smear[far]
        ua, ub = ca[far] / np.maximum(rng[far], 1e-6), cb[far] / np.maximum(rng[far], 1e-6)
        reach = int(math.ceil(r_out + sm.max()))
        oy, ox = (v.ravel() for v in np.mgrid[-reach:reach + 1, -reach:reach + 1])
        along = oy[None] * ua[:, None] + ox[None] * ub[:, None]
        across = ox[None] * ua[:, None] - oy[None] * ub[:, None]
        e_in = (along / (r_in + sm[:, None])) ** 2 + (across / r_in) ** 2
        e_out = (along / (r_out + sm[:, None])) ** 2 + (across / r_out) ** 2
        ii, jj = fi[:, None] + oy[None], fj[:, None] + ox[None]
        valid = (e_in >= 1) & (e_out <= 1) & (ii >= 0) & (ii < top.shape[0]) & (jj >= 0) & (jj < top.shape[1])
        around = np.where(valid, free[ii.clip(0, top.shape[0] - 1), jj.clip(0, top.shape[1] - 1)], 0.0)
        prominent[far] = top[fi, fj] - around.max(axis=1) >= c.head_prominence
    heads = np.zeros_like(cand)
    heads[ci[prominent], cj[prominent]] = True
    return heads


def split_by_heads(c: DepthPeopleConfig, labels: np.ndarray, n_lab: int, cells: np.ndarray, fa: np.ndarray,
                   fb: np.ndarray, z: np.ndarray, heads: np.ndarray, by_structure: np.ndarray) -> np.ndarray:
    """Point labels (0: dropped). A compact cluster is one person, if it has a head or stands clear of
    static structure (a remnant of a wall has no head); a wide one is split by its heads (none: dropped).

    Width is measured across the line of sight and along it; along it, depth noise smears a person by
    ``~4 * depth_noise * z^2`` metres, which is allowed for. ``c``: the detector's settings; ``labels``, ``cells``,
    ``fa``, ``fb``, ``z``: per point; ``heads``, ``by_structure``: per floor-grid cell.
    """
    cnt = np.maximum(np.bincount(labels, minlength=n_lab), 1)
    ca, cb = np.bincount(labels, fa, minlength=n_lab) / cnt, np.bincount(labels, fb, minlength=n_lab) / cnt
    rn = np.maximum(np.hypot(ca, cb), 1e-6)
    ra, rb = (ca / rn)[labels], (cb / rn)[labels]
    ext = np.zeros((4, n_lab))
    ext[:2] = np.inf
    ext[2:] = -np.inf
    for row, fn, vals in ((0, np.minimum, fa * ra + fb * rb), (1, np.minimum, fb * ra - fa * rb),
                          (2, np.maximum, fa * ra + fb * rb), (3, np.maximum, fb * ra - fa * rb)):
        fn.at(ext[row], labels, vals)
    smear = 4.0 * c.depth_noise * (np.bincount(labels, z, minlength=n_lab) / cnt) ** 2
    wide = (ext[3] - ext[1] > c.max_width) | (ext[2] - ext[0] > c.max_width + smear)
    hcell = np.flatnonzero(heads.ravel())
    cell_lab = np.zeros(heads.size, np.int64)
    cell_lab[cells] = labels
    hl = cell_lab[hcell]
    has_head = np.zeros(n_lab, bool)
    has_head[hl] = True
    touches = np.zeros(n_lab, bool)
    touches[labels[by_structure.ravel()[cells]]] = True
    single = ~wide & (has_head | ~touches)
    single[0] = False
    point_lab = np.where(single[labels], labels, 0)
    wide &= has_head
    wide[0] = False
    members = np.flatnonzero(wide[labels])
    keep = wide[hl]
    hcell, hl = hcell[keep], hl[keep]
    if members.size == 0:
        return point_lab
    width = heads.shape[1]
    ci, cj = cells[members] // width, cells[members] % width
    hi, hj = hcell // width, hcell % width
    d2 = ((ci[:, None] - hi[None]) ** 2 + (cj[:, None] - hj[None]) ** 2) * c.cell ** 2
    d2 = np.where(labels[members, None] == hl[None], d2, np.inf)
    best = np.argmin(d2, axis=1)
    reach = 0.45 + smear[labels[members]]
    near = d2[np.arange(members.size), best] <= reach ** 2
    point_lab[members[near]] = n_lab + best[near]
    return point_lab


__all__ = ["find_heads", "split_by_heads"]
