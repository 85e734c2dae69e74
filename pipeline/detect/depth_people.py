"""People from depth alone: floor plane, points above it, clusters on a floor grid, heads.

In the spirit of the ground-based RGB-D people detector of Munaro & Menegatti
(Autonomous Robots 2014), without its appearance (HOG) stage, so it needs no
weights and works in the dark:

1. Back-project every ``step``-th depth pixel with the depth intrinsics.
2. Floor plane (:class:`~reidstream.pipeline.body.floor.FloorEstimator`, shared
   with the body measurer): seeded by and kept near the camera mount
   (``mount_height``, ``tilt_deg``) when known, else RANSAC on the lower half of
   the image: a plausible plane (camera ``min_camera_height`` ..
   ``max_camera_height`` above it, facing up within ``max_floor_angle_deg``)
   with nothing below it and inliers across the image, so neither a table nor
   the plane of a crowd's shoulders passes. Points nearer than ``floor_range``
   are used. The plane is cached, refined each frame without drifting from the
   last verified plane, tested against a fresh search every
   ``floor_retest_every`` frames (a better supported floor replaces it), and
   estimated afresh when it loses its support or has points below it.
3. Keep points ``floor_margin`` .. ``max_height`` above the floor and within
   ``max_range``. Floor-grid cells whose points run on from just below
   ``max_height`` to above it are static structure (walls, tall furniture;
   a ceiling has nothing just below it) and are dropped. So are points on the
   *background* (:mod:`~reidstream.pipeline.detect.background`): cells near
   structure, within the reach of its depth-noise smear, that held points in
   ``background_share`` of recent frames (time constant ``background_s``)
   while no one was detected there, the band a wall smears towards the camera
   at range, which people standing before it would otherwise merge with.
4. Occupancy grid of ``cell`` metres on the floor, dilated by one cell,
   connected components (8-neighbourhood): the clusters.
5. Heads (:mod:`~reidstream.pipeline.detect.heads`): local maxima of the
   per-cell top height (within 0.2 m) that rise ``head_prominence`` above
   everything 0.3-0.45 m around them (structure
   counts as ``max_height``), with 5+ points within 0.15 m, and not cut by the
   image's upper border. Where the depth-noise smear (``2 * depth_noise * z^2``)
   reaches halfway to that ring (beyond about 5 m), the ring is stretched
   along the line of sight by the smear and taken without structure and
   background: a head's own points spread that far. A compact cluster is one
   person if it has a head or stands clear (0.3 m) of structure, so the
   remnants of a wall are not people.
   A cluster wider than ``max_width`` (across the line of sight; along it,
   plus the depth-noise smear ``4 * depth_noise * z^2``) is split by its heads,
   each point going to the nearest one; without heads it is dropped.
6. Keep clusters whose top is ``min_height`` .. ``max_height`` above the floor,
   no wider than ``max_width``, with ``min_points`` and a score of
   ``min_score``. The box is the image extent of the cluster's points, extended
   down to where its footprint meets the floor (the amodal box, as for a
   person whose legs are hidden). The score is the share of the points a whole
   person (0.5 x 1.7 m) would give at that distance (35 % counts as full),
   times a height plausibility (1 for 1.3-2.1 m, down to 0.5 at the limits).
7. Non-maximum suppression (``nms_iou``): a box overlapping a better-scored
   one at IoU 0.5 or more is dropped. One person's points fall into two
   clusters now and then (a hole in the depth, a second head-like peak); the
   tracker would start a second track on the extra box, and the gallery, which
   never gives two tracks seen at once one identity, would then found a
   second identity for that person.

Limitations: a person within ~0.3 m of a wall or tall furniture is found only
if the head stands out; people touching each other with heads closer than
~0.3 m merge into one box (at 7-8 m, where the smear is 0.3 m, two people
side by side often do); NIR-absorbing clothes or hair leave holes in the
depth and can hide a person at range. The background assumes a static
camera: on a moving one set ``background_s`` to 0.

Every stage is vectorised numpy/OpenCV over the subsampled points (~19k at
640 x 480 with ``step`` 4; about 4-6 ms per frame on one core, the floor search every
``floor_retest_every`` frames included).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from pydantic import Field, model_validator

from reidstream.pipeline.body.floor import FloorEstimator, FloorPlane
from reidstream.pipeline.config import ConfigModel
from reidstream.pipeline.crops import boxes_in, intrinsics_of, reference_modality
from reidstream.pipeline.detect.background import FloorBackground
from reidstream.pipeline.detect.heads import find_heads, split_by_heads
from reidstream.pipeline.types import DepthUnit, Detections, Frame, Intrinsics, Modality

_PERSON_W, _PERSON_H = 0.5, 1.7  # metres, for the expected point count of a whole person


class DepthPeopleConfig(ConfigModel):
    """Settings of :class:`DepthPeopleDetector` (section ``detect.depth`` of a pipeline config)."""

    step: int = Field(4, ge=1, le=16)
    """Use every ``step``-th depth pixel in both directions."""
    cell: float = Field(0.06, ge=0.02, le=0.3)
    """Floor grid cell (m)."""
    min_height: float = Field(1.0, gt=0.0)
    """Lowest accepted top of a person above the floor (m)."""
    max_height: float = Field(2.3, gt=0.0)
    """Highest accepted top of a person; points above are not people (m)."""
    floor_margin: float = Field(0.15, ge=0.0)
    """Points lower than this above the floor are floor (m)."""
    max_range: float = Field(9.0, gt=0.5)
    """Points farther than this (depth, m) are ignored."""
    max_width: float = Field(0.9, gt=0.2)
    """Footprint extent (m) above which a cluster holds more than one person (or none)."""
    depth_noise: float = Field(0.0026, ge=0.0)
    """Depth noise coefficient ``sigma_z / z^2`` (1/m); RealSense D4xx at 640 px: about 0.0026."""
    head_prominence: float = Field(0.12, ge=0.0)
    """How far (m) a head's top must rise above everything 0.3-0.45 m around it."""
    min_points: int = Field(15, ge=1)
    """Fewest points of a kept cluster."""
    min_score: float = Field(0.3, ge=0.0, le=1.0)
    """Lowest score reported."""
    mount_height: float | None = Field(None, gt=0.0)
    """Known camera height above the floor (m), within ``min_camera_height`` .. ``max_camera_height``; with
    ``tilt_deg`` the floor starts from this mount and stays within ``mount_tolerance`` of it."""
    tilt_deg: float | None = Field(None, ge=-30.0, le=90.0)
    """Known downward pitch of the camera (degrees)."""
    mount_tolerance: float = Field(0.15, gt=0.0, le=1.0)
    """How far (m) the fitted camera height may stray from a known ``mount_height``."""
    mount_tolerance_deg: float = Field(3.0, gt=0.0, le=30.0)
    """How far (degrees) the fitted floor's normal may stray from a known mount's."""
    min_camera_height: float = Field(0.3, gt=0.0)
    """Lowest plausible camera height above the floor (m): a plane nearer the camera is no floor."""
    max_camera_height: float = Field(4.0, gt=0.0)
    """Highest plausible camera height above the floor (m)."""
    floor_retest_every: int = Field(15, ge=1)
    """Frames between fresh floor searches that test the cached plane (a better supported one replaces it)."""
    max_floor_angle_deg: float = Field(60.0, gt=0.0, le=90.0)
    """Largest angle between the floor's normal and the camera's up axis (tilt allowed by RANSAC)."""
    floor_range: float = Field(6.0, gt=0.5)
    """Depth (m) up to which points are used to find and refine the floor (all, if too few are nearer)."""
    floor_tolerance: float = Field(0.05, gt=0.0)
    """Distance (m) of a floor point from the plane (RANSAC inliers, refinement)."""
    floor_smoothing: float = Field(0.2, ge=0.0, le=1.0)
    """Weight of each frame's refit in the cached plane (0 = never refine)."""
    seed: int = 0
    """Seed of the RANSAC sampling."""
    nms_iou: float = Field(0.5, gt=0.0, le=1.0)
    """A box overlapping a better-scored one at this IoU or more is dropped (one person whose points fell into
    two clusters); 1: keep every box."""
    background_s: float = Field(5.0, ge=0.0)
    """Time constant (s) of the floor cells' background occupancy (0: no background model; set 0 on a moving
    camera)."""
    background_share: float = Field(0.2, gt=0.0, le=1.0)
    """Share of recent frames a cell must hold points in, no one being detected there, to be background."""

    @model_validator(mode="after")
    def _consistent(self) -> "DepthPeopleConfig":
        if self.max_height <= self.min_height:
            raise ValueError(f"max_height ({self.max_height}) must exceed min_height ({self.min_height})")
        if (self.mount_height is None) != (self.tilt_deg is None):
            raise ValueError("give both mount_height and tilt_deg (a known mount), or neither")
        if self.max_camera_height <= self.min_camera_height:
            raise ValueError(f"max_camera_height ({self.max_camera_height}) must exceed min_camera_height "
                             f"({self.min_camera_height})")
        if self.mount_height is not None and not self.min_camera_height <= self.mount_height <= self.max_camera_height:
            raise ValueError(f"mount_height ({self.mount_height} m) must lie within min_camera_height .. "
                             f"max_camera_height ({self.min_camera_height} .. {self.max_camera_height} m)")
        return self


class DepthPeopleDetector:
    """Detects standing or walking people in depth images (see the module docstring).

    Args:
        step: Pixel subsampling.
        cell: Floor grid cell (m).
        min_height: Lowest accepted person top (m).
        max_height: Highest accepted person top (m).
        floor_margin: Height below which points are floor (m).
        max_range: Farthest depth used (m).
        max_width: Footprint width above which a cluster is split by its heads (m).
        depth_noise: Depth noise coefficient ``sigma_z / z^2`` (1/m).
        head_prominence: Rise of a head above its surroundings (m).
        min_points: Fewest points of a kept cluster.
        min_score: Lowest reported score.
        mount_height: Known camera height (m), with ``tilt_deg``.
        tilt_deg: Known camera pitch (degrees, down positive).
        mount_tolerance: Largest deviation (m) of the fitted camera height from a known mount.
        mount_tolerance_deg: Largest deviation (degrees) of the fitted floor normal from a known mount's.
        min_camera_height: Lowest plausible camera height (m).
        max_camera_height: Highest plausible camera height (m).
        floor_retest_every: Frames between fresh floor searches that test the cached plane.
        max_floor_angle_deg: Largest tilt of the floor's normal from the camera's up axis.
        floor_range: Depth up to which points find and refine the floor (m).
        floor_tolerance: Inlier distance of floor points (m).
        floor_smoothing: Weight of a frame's refit in the cached plane.
        seed: RANSAC seed.
        nms_iou: IoU with a better box at which a box is dropped (1: none).
        background_s: Time constant of the floor background (s); 0: none.
        background_share: Share of recent frames that makes a floor cell background.

    Attributes:
        floor: The current floor estimate (None before the first frame, without a known mount).
        floor_estimator: The :class:`~reidstream.pipeline.body.floor.FloorEstimator` behind ``floor``.

    Raises:
        ValueError: inconsistent settings (``max_height <= min_height``, only one of mount height and tilt, a
            mount height outside the plausible camera heights).
    """

    name = "depth-people"

    def __init__(self, step: int = 4, cell: float = 0.06, min_height: float = 1.0, max_height: float = 2.3,
                 floor_margin: float = 0.15, max_range: float = 9.0, max_width: float = 0.9,
                 depth_noise: float = 0.0026, head_prominence: float = 0.12, min_points: int = 15,
                 min_score: float = 0.3, mount_height: float | None = None, tilt_deg: float | None = None,
                 mount_tolerance: float = 0.15, mount_tolerance_deg: float = 3.0, min_camera_height: float = 0.3,
                 max_camera_height: float = 4.0, floor_retest_every: int = 15,
                 max_floor_angle_deg: float = 60.0, floor_range: float = 6.0, floor_tolerance: float = 0.05,
                 floor_smoothing: float = 0.2, seed: int = 0, nms_iou: float = 0.5,
                 background_s: float = 5.0, background_share: float = 0.2) -> None:
        opt = (lambda v: None if v is None else float(v))
        self.config = DepthPeopleConfig(
            step=int(step), cell=float(cell), min_height=float(min_height), max_height=float(max_height),
            floor_margin=float(floor_margin), max_range=float(max_range), max_width=float(max_width),
            depth_noise=float(depth_noise), head_prominence=float(head_prominence), min_points=int(min_points),
            min_score=float(min_score), mount_height=opt(mount_height), tilt_deg=opt(tilt_deg),
            mount_tolerance=float(mount_tolerance), mount_tolerance_deg=float(mount_tolerance_deg),
            min_camera_height=float(min_camera_height), max_camera_height=float(max_camera_height),
            floor_retest_every=int(floor_retest_every),
            max_floor_angle_deg=float(max_floor_angle_deg), floor_range=float(floor_range),
            floor_tolerance=float(floor_tolerance), floor_smoothing=float(floor_smoothing), seed=int(seed),
            nms_iou=float(nms_iou), background_s=float(background_s), background_share=float(background_share))
        c = self.config
        self.floor_estimator = FloorEstimator(
            mount_height=c.mount_height, tilt_deg=c.tilt_deg, max_floor_angle_deg=c.max_floor_angle_deg,
            floor_range=c.floor_range, tolerance=c.floor_tolerance, smoothing=c.floor_smoothing,
            min_camera_height=c.min_camera_height, max_camera_height=c.max_camera_height,
            mount_tolerance=c.mount_tolerance, mount_tolerance_deg=c.mount_tolerance_deg,
            retest_every=c.floor_retest_every, seed=c.seed)
        self._rays: tuple | None = None
        self.background = FloorBackground(c.cell, c.max_range, c.background_s, c.background_share)

    @classmethod
    def from_config(cls, cfg: DepthPeopleConfig) -> "DepthPeopleDetector":
        """A detector with the settings of ``cfg``."""
        return cls(**cfg.model_dump())

    @property
    def floor(self) -> FloorPlane | None:
        """The current floor estimate (None before the first frame, without a known mount)."""
        return self.floor_estimator.floor

    def reset(self) -> None:
        """Forgets the cached floor plane and the background (a new camera or scene)."""
        self.floor_estimator.reset()
        self.background.reset()

    # ------------------------------------------------------------------ points
    def _points(self, frame: Frame, k: Intrinsics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Valid subsampled points (N x 3 float32), their flat index in the subsampled grid, its width."""
        s = self.config.step
        raw = frame.depth[::s, ::s]
        h, w = raw.shape
        key = (k, s, h, w)
        if self._rays is None or self._rays[0] != key:
            xr = ((np.arange(w) * s - k.cx) / k.fx).astype(np.float32)
            yr = ((np.arange(h) * s - k.cy) / k.fy).astype(np.float32)
            self._rays = (key, np.tile(xr, h), np.repeat(yr, w))
        _, xr, yr = self._rays
        if frame.depth_unit is DepthUnit.MILLIMETRE:
            limit = int(min((self.config.max_range + 1.0) * 1000, 65535))
            flat = raw.ravel()
            idx = np.flatnonzero((flat > 0) & (flat <= limit))
            z = flat[idx].astype(np.float32) * np.float32(0.001)
        else:
            flat = raw.ravel()
            idx = np.flatnonzero((flat > 0) & (flat <= self.config.max_range + 1.0))  # NaN compares False
            z = flat[idx]
        pts = np.stack([xr[idx] * z, yr[idx] * z, z], axis=1)
        return pts, idx, w

    # ------------------------------------------------------------------ detect
    def detect(self, frame: Frame) -> Detections:
        """People in ``frame``'s depth image, boxes in the frame's reference grid.

        Raises:
            ValueError: the frame has no depth image or no intrinsics for it.
        """
        if frame.depth is None:
            raise ValueError(f"{self.name}: frame {frame.index} of camera '{frame.camera_id}' has no depth image")
        k = intrinsics_of(frame, Modality.DEPTH)
        if k is None:
            raise ValueError(f"{self.name}: frame {frame.index} of camera '{frame.camera_id}' has no intrinsics "
                             f"for its depth image (needed to back-project it)")
        empty = Detections.empty(Modality.DEPTH, frame.index)
        c, s = self.config, self.config.step
        pts, idx, w = self._points(frame, k)
        rows = idx // w
        plane = self.floor_estimator.update(pts, rows >= (frame.depth.shape[0] // s) // 2)
        if plane is None or len(pts) == 0:
            return empty
        n = plane.normal.astype(np.float32)
        hgt = plane.height(pts)
        e1 = np.array([1.0, 0.0, 0.0]) - n[0] * n
        e1 = (e1 / np.linalg.norm(e1)).astype(np.float32)
        e2 = np.cross(n, e1).astype(np.float32)
        near = pts[:, 2] <= c.max_range
        body = (hgt > c.floor_margin) & (hgt < c.max_height)
        if (body & near).sum() < c.min_points:
            return empty
        fa, fb = pts @ e1, pts @ e2
        pad = int(math.ceil(0.45 / c.cell)) + 1  # room for the ring around heads at the border
        a0, b0 = fa[body & near].min() - pad * c.cell, fb[body & near].min() - pad * c.cell
        ga = np.floor((fa - a0) / c.cell).astype(np.int64)
        gb = np.floor((fb - b0) / c.cell).astype(np.int64)
        shape = (int(ga[body & near].max()) + 1 + pad, int(gb[body & near].max()) + 1 + pad)
        cells = np.where((ga >= 0) & (ga < shape[0]) & (gb >= 0) & (gb < shape[1]), ga * shape[1] + gb, -1)
        size = shape[0] * shape[1]
        # Static structure: cells whose points run on from below max_height to above it (walls, shelves);
        # not a ceiling (nothing just below it) nor a person (nothing above).
        upper = (hgt >= c.max_height - 0.4) & (hgt < c.max_height) & (cells >= 0)
        over = (hgt >= c.max_height + 0.1) & (hgt < c.max_height + 0.6) & (cells >= 0)
        structure = (np.bincount(cells[upper], minlength=size) > 0) & (np.bincount(cells[over], minlength=size) > 0)
        structure = cv2.dilate(structure.reshape(shape).astype(np.uint8), np.ones((3, 3), np.uint8))
        r = int(math.ceil(0.3 / c.cell))
        by_structure = cv2.dilate(structure, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) > 0
        structure = structure.ravel() > 0
        # Top height per cell (structure counts as max_height): heads must rise above their surroundings.
        inside = body & (cells >= 0)
        top = np.zeros(size, np.float32)
        np.maximum.at(top, cells[inside], hgt[inside])
        top[structure] = c.max_height
        top = top.reshape(shape)
        body &= near & (cells >= 0)
        body[body] = ~structure[cells[body]]
        # What the background learns from: points near structure, within the reach of its depth-noise smear
        # (a crowd elsewhere is never learned).
        occupied = np.flatnonzero(body)
        if self.background.enabled:
            gap = cv2.distanceTransform((structure.reshape(shape) == 0).astype(np.uint8), cv2.DIST_L2, 3).ravel()
            z_occ = pts[occupied, 2]
            occupied = occupied[gap[cells[occupied]] * c.cell <= 0.3 + 2.0 * c.depth_noise * z_occ * z_occ]
        else:
            occupied = occupied[:0]
        bg_cells = self.background.cells(fa, fb, plane, frame.timestamp)
        body[occupied[self.background.mask[bg_cells[occupied]]]] = False
        sel = np.flatnonzero(body)
        if sel.size < c.min_points:
            self.background.update(bg_cells[occupied], np.empty((0, 2)))
            return empty
        cells, hgt_s = cells[sel], hgt[sel]
        counts = np.bincount(cells, minlength=size).reshape(shape)
        occ = cv2.dilate((counts > 0).astype(np.uint8), np.ones((3, 3), np.uint8))
        n_lab, lab_img = cv2.connectedComponents(occ, connectivity=8)
        labels = lab_img.ravel()[cells].astype(np.int64)
        # A top cut by the image's upper border is no head (a wall running out of view has a flat top there).
        cut = np.bincount(cells, weights=rows[sel] < 2, minlength=size).reshape(shape) > 0
        cut = cv2.dilate(cut.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        free = np.zeros(size, np.float32)  # without structure and background: the ring of a head at range
        np.maximum.at(free, cells, hgt_s)
        heads = find_heads(c, top, np.where(cut, 0, counts), a0, b0, free.reshape(shape))
        labels = split_by_heads(c, labels, n_lab, cells, fa[sel], fb[sel], pts[sel, 2], heads, by_structure)
        found, feet = self._clusters(frame, k, labels, sel, idx, w, pts, hgt_s, fa[sel], fb[sel], plane, e1, e2)
        self.background.update(bg_cells[occupied], feet)
        return found

    def _clusters(self, frame: Frame, k: Intrinsics, labels: np.ndarray, sel: np.ndarray, idx: np.ndarray, w: int,
                  pts: np.ndarray, hgt: np.ndarray, fa: np.ndarray, fb: np.ndarray, plane: FloorPlane,
                  e1: np.ndarray, e2: np.ndarray) -> tuple[Detections, np.ndarray]:
        """Boxes and scores of the clusters that look like people, and their footprint centres on the floor
        (``K x 2``, floor-grid coordinates)."""
        c, s = self.config, self.config.step
        empty = Detections.empty(Modality.DEPTH, frame.index)
        ok = labels > 0
        none = np.empty((0, 2))
        if not ok.any():
            return empty, none
        uniq, lab = np.unique(labels[ok], return_inverse=True)
        m = uniq.size
        pix = idx[sel[ok]]
        u, v = (pix % w) * s, (pix // w) * s
        fa, fb, hgt, z = fa[ok], fb[ok], hgt[ok], pts[sel[ok], 2]
        count = np.bincount(lab, minlength=m).astype(np.float64)
        lo, hi = np.full((2, m), np.inf), np.full((2, m), -np.inf)
        np.minimum.at(lo[0], lab, u)
        np.minimum.at(lo[1], lab, v)
        np.maximum.at(hi[0], lab, u)
        np.maximum.at(hi[1], lab, v)
        top = np.zeros(m)
        np.maximum.at(top, lab, hgt)
        zmean = np.bincount(lab, z, minlength=m) / count
        ca, cb = np.bincount(lab, fa, minlength=m) / count, np.bincount(lab, fb, minlength=m) / count
        rn = np.maximum(np.hypot(ca, cb), 1e-6)
        across = (fb * ca[lab] - fa * cb[lab]) / rn[lab]  # across the line of sight
        wlo, whi = np.full(m, np.inf), np.full(m, -np.inf)
        np.minimum.at(wlo, lab, across)
        np.maximum.at(whi, lab, across)
        # Score: share of the points a whole person would give at that distance, times height plausibility.
        expected = (_PERSON_W * k.fx / zmean) * (_PERSON_H * k.fy / zmean) / (s * s)
        s_count = np.clip(count / (0.35 * expected), 0.0, 1.0)
        s_height = np.clip(1.0 - 0.5 * np.maximum(1.3 - top, top - 2.1).clip(0) / 0.3, 0.5, 1.0)
        score = s_count * s_height
        keep = ((top >= c.min_height) & (top <= c.max_height) & (count >= c.min_points) & (score >= c.min_score)
                & (whi - wlo <= c.max_width))
        if not keep.any():
            return empty, none
        # Where the footprint meets the floor (its centre), in the image: the bottom of the amodal box.
        foot = ca[:, None] * e1 + cb[:, None] * e2 - plane.offset * plane.normal.astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            v_foot = np.where(foot[:, 2] > 0.1, k.fy * foot[:, 1] / foot[:, 2] + k.cy + 0.5, -np.inf)
        hh, ww = frame.depth.shape
        boxes = np.stack([lo[0], lo[1], hi[0] + s, np.maximum(hi[1] + s, v_foot)], axis=1)[keep]
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, ww)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, hh)
        order = np.argsort(-score[keep], kind="stable")
        boxes, kept_score = boxes[order], score[keep][order]
        nms = suppress_overlaps(boxes, kept_score, c.nms_iou)  # one person split into two clusters
        boxes, kept_score = boxes[nms], kept_score[nms]
        boxes = boxes_in(frame, boxes, reference_modality(frame), Modality.DEPTH)
        return (Detections(boxes, kept_score.astype(np.float32), None, Modality.DEPTH, frame.index),
                np.stack([ca[keep], cb[keep]], axis=1))


def suppress_overlaps(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices (ascending) of the ``boxes`` (``N x 4`` xyxy) kept by non-maximum suppression: a box that
    overlaps a better-scored kept one at IoU >= ``iou`` is dropped (OpenCV's ``NMSBoxes``); ``iou`` 1 keeps all."""
    if iou >= 1.0 or len(boxes) < 2:
        return np.arange(len(boxes))
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    # Scores shifted above NMSBoxes' score threshold (0: every box competes); its IoU test is strict, so a
    # hair below ``iou`` drops a box at exactly ``iou`` too.
    shifted = (np.asarray(scores, np.float64) + 1.0).tolist()
    kept = cv2.dnn.NMSBoxes(xywh.tolist(), shifted, 0.0, float(iou) - 1e-6)
    return np.sort(np.asarray(kept, np.int64).ravel())


__all__ = ["DepthPeopleConfig", "DepthPeopleDetector", "FloorPlane", "suppress_overlaps"]
