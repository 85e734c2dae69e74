"""Background of a static depth camera on the floor grid: cells that hold points where no one is detected.

Depth noise grows with the square of the distance (about 0.16 m at 8 m for a D4xx-like sensor), so a wall or
shelf smears its points a few tenths of a metre towards the camera, below the height at which the depth
detector recognises it as structure. A person standing in front of it at that range then merges with those
remnants into one wide cluster and is lost. The remnants are static: over time the same floor cells hold
points in most frames while no one is detected there. :class:`FloorBackground` learns that share per cell
(an exponential average with time constant ``time_constant_s``, a plain running mean over the first
``time_constant_s`` so that it is useful after a few frames) and the detector drops the points on cells above
``share`` before clustering.

Cells within 0.6 m of a detected person's footprint are not learned from in that frame (selective update),
so a person standing still does not fade into the background. The grid is fixed in floor coordinates; when
the floor plane moves (a new estimate: the camera moved) the background starts afresh. On a camera that
moves all the time (a robot) set the time constant to 0 (no background).
"""

from __future__ import annotations

import math

import numpy as np

_KEEP_OUT_M = 0.6  # around a detected person's footprint centre: not learned from


class FloorBackground:
    """Background occupancy of floor cells (see the module docstring).

    Args:
        cell: Floor grid cell (m), as the detector's.
        max_range: Farthest depth used (m): the grid covers +-(max_range + 1) m around the camera.
        time_constant_s: Time constant (s) of the average; 0 turns the background off.
        share: Share of frames above which a cell is background.

    Attributes:
        mask: Per cell (flat, one extra "outside" cell that is never background): background now.
    """

    def __init__(self, cell: float, max_range: float, time_constant_s: float, share: float) -> None:
        self.cell, self.half = float(cell), float(max_range) + 1.0
        self.n = int(math.ceil(2 * self.half / self.cell))
        self.tau, self.share = float(time_constant_s), float(share)
        self.reset()

    def reset(self) -> None:
        """Forgets what was learned (a new scene, or the floor moved)."""
        self.occupancy = np.zeros(self.n * self.n, np.float32)
        self.mask = np.zeros(self.n * self.n + 1, bool)
        self._plane: tuple[np.ndarray, float] | None = None
        self._t: float | None = None
        self._alpha, self._frames = 0.0, 0

    @property
    def enabled(self) -> bool:
        """Whether there is a background at all (time constant above 0)."""
        return self.tau > 0

    def cells(self, fa: np.ndarray, fb: np.ndarray, plane, timestamp: float) -> np.ndarray:
        """The fixed grid cell of each point (floor coordinates ``fa``, ``fb``; ``n * n`` outside the grid),
        for a frame at ``timestamp`` whose floor is ``plane``; starts afresh when the floor moved (more than
        1 degree or 5 cm from where this background began). Called once per frame, before :meth:`update`:
        it also sets that frame's learning rate."""
        outside = self.n * self.n
        if not self.enabled:
            return np.full(len(fa), outside, np.int64)
        normal, offset = np.asarray(plane.normal, np.float64), float(plane.offset)
        if self._plane is not None and (abs(offset - self._plane[1]) > 0.05 or
                                        float(normal @ self._plane[0]) < math.cos(math.radians(1.0))):
            self.reset()
        if self._plane is None:
            self._plane = (normal, offset)
        dt = 0.0 if self._t is None else min(max(float(timestamp) - self._t, 0.0), 1.0)
        self._t = float(timestamp)
        self._frames += 1
        self._alpha = max(1.0 - math.exp(-dt / self.tau), 1.0 / self._frames)
        ia = np.floor((fa + self.half) / self.cell).astype(np.int64)
        ib = np.floor((fb + self.half) / self.cell).astype(np.int64)
        inside = (ia >= 0) & (ia < self.n) & (ib >= 0) & (ib < self.n)
        return np.where(inside, ia * self.n + ib, outside)

    def update(self, cells: np.ndarray, feet: np.ndarray) -> None:
        """Learns one frame: ``cells`` of the points above the floor (from :meth:`cells`), ``feet`` the
        detected people's footprint centres (``K x 2`` floor coordinates), whose surroundings are not learned."""
        if not self.enabled or self._frames == 0:
            return
        size = self.n * self.n
        seen = np.bincount(cells, minlength=size + 1)[:size] > 0
        learn = np.ones((self.n, self.n), bool)
        r = int(math.ceil(_KEEP_OUT_M / self.cell))
        for a, b in np.floor((np.asarray(feet, np.float64).reshape(-1, 2) + self.half) / self.cell).astype(int):
            learn[max(a - r, 0):max(a + r + 1, 0), max(b - r, 0):max(b + r + 1, 0)] = False
        learn = learn.ravel()
        occ = self.occupancy
        occ[learn] += np.float32(self._alpha) * (seen[learn].astype(np.float32) - occ[learn])
        self.mask[:size] = occ >= self.share


__all__ = ["FloorBackground"]
