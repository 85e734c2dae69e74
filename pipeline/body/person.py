"""Measuring one person in a depth-image box: their points, floor position, head top, shoulder width.

The method behind :class:`~reidstream.pipeline.body.measure.BodyMeter`, per box:

1. Points: the person's depth is the nearest well supported peak of the depth
   histogram of the box's central part, unless the head (top of the box) lies at
   another, not the farthest, peak's depth (see :func:`foreground_depth`). The
   person's points are those within ``window`` (+ 3 sigma of depth noise) of
   it, so background and people behind are left out. The box is sampled every
   ``step * step_distance / z`` pixels (at least 1): about the same number of
   points per person at any distance.
2. Position: median floor coordinates of the points above 0.3 m, pushed
   ``centre_offset`` away from the camera (visible surface -> body axis);
   distance: median depth of the points.
3. Height (:func:`head_top`): the head around the highest point is resampled at
   twice the density; the top is the second highest point plus the gap to the
   true top extrapolated from the spacing of the ten highest, ``2 (h2 - h10) /
   8`` (a uniform-density order-statistics correction for the sparse sampling of
   the head's top by the pixel grid and by depth holes; no tuned constant).
   Chosen by measurement on the simulator: the 99th/98th percentiles of the
   point heights are 2-4 / 4-7 cm low and depend on how much of the body is in
   view; the maximum is sensitive to one stray point. 1-sigma: that spacing,
   depth noise along the top point's ray (``~z^2``), gait and posture
   (``pose_sigma``), the share of holes in the head below the top (hair, grazing
   view, dark: ``3 * holes * pixel``), a box top more than 2 cm above the
   highest point, and the floor plane's tilt (``floor_sigma * distance``).
   None (NaN) when the top is cut by the image's upper border, the head runs out at a side, hidden (the
   highest point more than ``max_top_gap`` below the box top, or something
   nearer just above it), or not in the box (the person's depth slab goes on
   above the box: the box belongs to someone hidden behind this body).
4. Width (:func:`shoulder_width`): across the line of sight, the 2-98 % extent
   of the points at 72-80 % of the height. It depends on the heading, so it is
   given for front and back views only: an oblique view is corrected by the
   depth slope between the shoulders (``t``, the tangent of the shoulder line to
   the image plane: ``W sqrt(1 + t^2)``) while ``|t| < max_obliquity``; a side
   view (``W / height < min_width_ratio``, or depth relief above ``0.3 W``)
   gives None. On the simulator the frames so kept vary 3.6 cm per person
   against 6.5 cm across people; the raw width of all frames varies 10 cm per
   person against 6 cm across people (no use for identity).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from reidstream.pipeline.body.floor import FloorPlane
from reidstream.pipeline.types import DepthUnit, Intrinsics

if TYPE_CHECKING:
    from reidstream.pipeline.body.measure import BodyConfig


class PersonPoints(NamedTuple):
    """A person's depth points in a box.

    Attributes:
        depth: The person's (foreground) depth (m).
        half: Half depth (m) of the slab around ``depth`` holding their points.
        step: Pixel subsampling used.
        points: ``N x 3`` float64 camera coordinates (m).
        rows: ``N`` pixel rows of the points in the depth image.
        cols: ``N`` pixel columns.
    """

    depth: float
    half: float
    step: int
    points: np.ndarray
    rows: np.ndarray
    cols: np.ndarray


def median(a: np.ndarray) -> float:
    """Median (upper middle for an even count) of a non-empty 1-D array, cheaper than ``np.median``."""
    h = a.size // 2
    return float(np.partition(a, h)[h])


def metres(raw: np.ndarray, unit: DepthUnit, max_range: float) -> np.ndarray:
    """Depth as float32 metres, NaN where missing or beyond ``max_range``."""
    z = raw.astype(np.float32) * np.float32(0.001) if unit is DepthUnit.MILLIMETRE else raw.astype(np.float32)
    z[~((z > 0) & (z <= max_range))] = np.nan
    return z


def foreground_depth(grid: np.ndarray) -> float | None:
    """The person's depth from coarse samples of a box's central part (rows from the box top), or None.

    Candidates are the peaks of the depth histogram (0.2 m bins, smoothed over three) holding a tenth of the
    highest or more: the nearest (so the wall behind a person in NIR-absorbing clothes, which leave holes,
    does not win), unless the head (the nearest tenth of the samples in the top fifth of the rows, middle
    60 % of the columns) lies at the depth of another candidate that is not the farthest (the background).
    Heads are rarely occluded from a camera above them, so a nearer person covering the body does not win.
    """
    zc = grid[np.isfinite(grid)]
    if zc.size < 8:
        return None
    c = np.bincount((zc * 5.0).astype(np.int64))
    c3 = c.copy()
    c3[1:] += c[:-1]
    c3[:-1] += c[1:]
    peak = c3 >= max(0.1 * c3.max(), 8.0)
    peak[1:] &= c3[1:] >= c3[:-1]
    peak[:-1] &= c3[:-1] >= c3[1:]
    peaks = (np.flatnonzero(peak) + 0.5) / 5.0
    choice = peaks[0]
    q = int(0.2 * grid.shape[1])
    head = grid[:max(1, grid.shape[0] // 5), q:grid.shape[1] - q]
    head = head[np.isfinite(head)]
    if head.size >= 3 and peaks.size > 2:
        off = np.abs(peaks[:-1] - np.partition(head, head.size // 10)[head.size // 10])
        if off.min() < 0.5:
            choice = peaks[int(np.argmin(off))]
    return median(zc[np.abs(zc - choice) < 0.3])


def person_points(depth: np.ndarray, unit: DepthUnit, k: Intrinsics, box: np.ndarray,
                  cfg: BodyConfig) -> PersonPoints | None:
    """The person's points in a depth-image box ``x1, y1, x2, y2``; None with fewer than ``min_points``."""
    hh, ww = depth.shape
    x1, y1 = max(int(math.floor(box[0])), 0), max(int(math.floor(box[1])), 0)
    x2, y2 = min(int(math.ceil(box[2])), ww), min(int(math.ceil(box[3])), hh)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    qx, rows = (x2 - x1) // 4, max(1, int(0.6 * (y2 - y1)))
    cs = max(1, int(math.sqrt(rows * (x2 - x1 - 2 * qx) / 2500.0)))  # ~2500 coarse samples
    zf = foreground_depth(metres(depth[y1:y1 + rows:cs, x1 + qx:x2 - qx:cs], unit, cfg.max_range))
    if zf is None:
        return None
    s = max(1, int(round(cfg.step * cfg.step_distance / zf)))
    z = metres(depth[y1:y2:s, x1:x2:s], unit, cfg.max_range)
    half = cfg.window + 3.0 * cfg.depth_noise * zf * zf
    ri, ci = np.nonzero(np.abs(z - zf) < half)
    if ri.size < cfg.min_points:
        return None
    v, u = y1 + ri * s, x1 + ci * s
    zp = z[ri, ci].astype(np.float64)
    pts = np.stack([(u - k.cx) / k.fx * zp, (v - k.cy) / k.fy * zp, zp], axis=1)
    return PersonPoints(zf, half, s, pts, v, u)


def head_top(depth: np.ndarray, unit: DepthUnit, k: Intrinsics, box: np.ndarray, floor: FloorPlane,
             person: PersonPoints, v0: int, u0: int, cfg: BodyConfig) -> tuple[float, float] | None:
    """``(height, sigma without the floor term)`` of the head's top around the highest point ``(u0, v0)``;
    None when the top is cut, hidden or not in the box (see the module docstring)."""
    zf, half, s = person.depth, person.half, max(1, person.step // 2)
    if box[1] < cfg.border or v0 < cfg.border:
        return None
    dv, du = int(math.ceil(0.06 * k.fy / zf)), int(math.ceil(0.1 * k.fx / zf))
    if (box[0] < cfg.border and u0 - du < cfg.border) or (box[2] > depth.shape[1] - cfg.border
                                                          and u0 + du > depth.shape[1] - cfg.border):
        return None  # the head runs out of the image at a side: what is seen of it reads low
    r0, c0 = max(0, v0 - dv), max(0, u0 - du)
    win = metres(depth[r0:v0 + dv + 1:s, c0:u0 + du + 1:s], unit, cfg.max_range)
    rr, cc = np.nonzero(np.abs(win - zf) < half)
    v, u = r0 + rr * s, c0 + cc * s
    if int((v < box[1] - max(2.0, 0.02 * k.fy / zf)).sum()) > 2:
        return None  # the depth slab goes on above the box: its top is not this body's top
    zw = win[rr, cc].astype(np.float64)
    n = floor.normal
    hgt = zw * (n[0] * (u - k.cx) / k.fx + n[1] * (v - k.cy) / k.fy + n[2]) + floor.offset
    if hgt.size < 3:
        return None
    m = min(10, hgt.size)
    top = np.argpartition(hgt, hgt.size - m)[hgt.size - m:]
    top = top[np.argsort(-hgt[top])]
    spacing = (hgt[top[1]] - hgt[top[-1]]) / max(1, m - 2)
    v_top, u_top, z_top = int(v[top[0]]), int(u[top[0]]), float(zw[top[0]])
    gap = max(0.0, (v_top - box[1]) * zf / k.fy)  # metres of the box above the highest point
    if gap > cfg.max_top_gap or top_occluded(depth, unit, k, v_top, u_top, zf, zf - half, s, cfg.max_range):
        return None
    below = win[(v_top - r0) // s:]  # holes in the head below the top point: the top is sampled sparsely
    missing = float(np.isnan(below).sum())
    holes = missing / max(1.0, missing + float((np.abs(below - zf) < half).sum()))
    slope = (hgt[top[0]] - floor.offset) / z_top  # d height / d depth along the top point's ray
    sigma = math.sqrt(cfg.pose_sigma ** 2 + 2.0 * spacing ** 2 + (0.5 * cfg.depth_noise * z_top ** 2 * slope) ** 2
                      + max(0.0, gap - 0.02) ** 2 + (3.0 * holes * zf * s / k.fy) ** 2)
    return float(hgt[top[1]] + 2.0 * spacing), sigma


def top_occluded(depth: np.ndarray, unit: DepthUnit, k: Intrinsics, v: int, u: int, z: float, near: float, s: int,
                 max_range: float) -> bool:
    """Whether something nearer than ``near`` shows up to 25 cm above the top point ``(u, v)`` of a person at
    depth ``z`` (0.15 m either side): the head may be hidden behind it."""
    r0 = max(0, v - int(math.ceil(0.25 * k.fy / z)))
    w = int(math.ceil(0.15 * k.fx / z))
    above = metres(depth[r0:v:s, max(0, u - w):u + w + 1:s], unit, max_range)
    above = above[np.isfinite(above)]
    return int((above < near).sum()) > 2.0 + 0.02 * above.size


def shoulder_width(across: np.ndarray, along: np.ndarray, height: float, sigma_z: float, pixel: float,
                   cfg: BodyConfig) -> tuple[float, float] | None:
    """``(width, sigma)`` from the shoulder band's floor coordinates across / along the line of sight (m);
    None for side views. ``sigma_z`` is the depth noise and ``pixel`` the sample spacing at the person."""
    n = across.size
    i, j = int(0.02 * (n - 1)), int(math.ceil(0.98 * (n - 1)))
    lo, hi = np.partition(across, [i, j])[[i, j]]
    width, mid = float(hi - lo), 0.5 * float(lo + hi)
    off = np.abs(across - mid)
    parts = [along[off < 0.15 * width], along[off > 0.35 * width], along[across < mid - 0.2 * width],
             along[across > mid + 0.2 * width]]
    if width <= 0 or min(p.size for p in parts) < 4:
        return None
    centre, edge, left, right = (median(p) for p in parts)
    t = (left - right) / (0.7 * width)  # tangent of the shoulder line to the image plane
    corrected = width * math.sqrt(1.0 + t * t)
    if abs(t) >= cfg.max_obliquity or edge - centre > 0.3 * width or corrected < cfg.min_width_ratio * height:
        return None
    sigma_t = 1.25 * sigma_z * math.sqrt(1.0 / parts[2].size + 1.0 / parts[3].size) / (0.7 * width)
    return corrected, math.sqrt(cfg.width_sigma ** 2 + 2.0 * pixel ** 2 + (width * abs(t) * sigma_t) ** 2)


def measure_person(depth: np.ndarray, unit: DepthUnit, k: Intrinsics, box: np.ndarray, floor: FloorPlane | None,
                   cfg: BodyConfig, out: np.ndarray) -> None:
    """Fills ``out`` = (lateral, forward, distance, height, height sigma, width, width sigma) for one box
    in the depth image, leaving NaN / inf where a measure cannot be taken."""
    person = person_points(depth, unit, k, box, cfg)
    if person is None:
        return
    pts = person.points
    out[2] = median(pts[:, 2])
    if floor is None:
        return
    e1, e2 = floor.axes()
    hgt = pts @ floor.normal + floor.offset
    fa, fb = pts @ e1, pts @ e2
    body = hgt > 0.3
    if body.sum() < cfg.min_points // 2:
        return
    ca, cb = median(fa[body]), median(fb[body])
    rn = max(math.hypot(ca, cb), 1e-6)
    la, lb = ca / rn, cb / rn  # the horizontal line of sight
    out[0], out[1] = ca + cfg.centre_offset * la, cb + cfg.centre_offset * lb
    top = int(np.argmax(hgt))
    found = head_top(depth, unit, k, box, floor, person, int(person.rows[top]), int(person.cols[top]), cfg)
    if found is None:
        return
    out[3], out[4] = found[0], math.sqrt(found[1] ** 2 + (cfg.floor_sigma * rn) ** 2)
    if box[0] < cfg.border or box[2] > depth.shape[1] - cfg.border:
        return  # cut at a side: no width
    band = (hgt > 0.72 * out[3]) & (hgt < 0.80 * out[3])
    if band.sum() >= 20:
        found = shoulder_width(fa[band] * lb - fb[band] * la, fa[band] * la + fb[band] * lb, out[3],
                               cfg.depth_noise * person.depth ** 2, person.depth * person.step / k.fx, cfg)
        if found is not None:
            out[5], out[6] = found


__all__ = ["PersonPoints", "foreground_depth", "head_top", "measure_person", "median", "metres", "person_points",
           "shoulder_width", "top_occluded"]
