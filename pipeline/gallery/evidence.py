"""What the gallery knows of a person: per-track evidence, summarised into per-visit prototypes.

A :class:`TrackEvidence` accumulates one track's frames: per feature (an embedding ``space/modality``
such as ``rgbd/depth``, and ``colour``) a quality-weighted sum of unit vectors, and the body measures
as inverse-variance weighted means. :meth:`TrackEvidence.summary` turns it into a :class:`Visit`:
unit prototypes, one height and width with their uncertainty, and the light the track was seen in.

A :class:`VisitTable` keeps every identity's visits (one row per track that was assigned to it, for the
identity's lifetime) in contiguous arrays, one ``rows x D`` block per feature, so that a track is scored
against every stored visit with one matrix product per feature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

_MIN_SIGMA = 0.01  # m: consecutive frames are not independent measurements


@dataclass
class Visit:
    """Prototypes of one track (see the module docstring)."""

    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    height: float = float("nan")
    height_sigma: float = float("inf")
    width: float = float("nan")
    width_sigma: float = float("inf")
    lit: bool = True
    weight: float = 0.0


class TrackEvidence:
    """Running sums of one track's observations."""

    def __init__(self, first_seen: float) -> None:
        self.first_seen = self.last_seen = float(first_seen)
        self.frames = 0
        self.lit_frames = 0
        self.weight = 0.0
        self._sums: dict[str, np.ndarray] = {}
        self._mass: dict[str, float] = {}
        self._measure = np.zeros((2, 2))  # rows height, width: sum(x / var), sum(1 / var)

    def add_frame(self, timestamp: float, quality: float, lit: bool, height: float, height_sigma: float,
                  width: float, width_sigma: float, colour: np.ndarray | None) -> None:
        """Adds one frame's cues (the embeddings come through :meth:`add_vector`)."""
        self.last_seen = max(self.last_seen, float(timestamp))
        self.frames += 1
        self.lit_frames += bool(lit)
        self.weight += float(quality)
        for k, (x, s) in enumerate(((height, height_sigma), (width, width_sigma))):
            if np.isfinite(x) and np.isfinite(s) and s > 0:
                var = max(float(s), _MIN_SIGMA) ** 2
                self._measure[k] += (x / var, 1.0 / var)
        if colour is not None and float(np.dot(colour, colour)) > 0.5 and quality > 0:
            self.add_vector("colour", colour, quality)

    def add_vector(self, key: str, vector: np.ndarray, weight: float) -> None:
        """Adds a unit vector of feature ``key`` with weight ``weight`` (> 0)."""
        if weight <= 0:
            return
        if key not in self._sums:
            self._sums[key] = np.zeros(len(vector), np.float64)
            self._mass[key] = 0.0
        self._sums[key] += weight * np.asarray(vector, np.float64)
        self._mass[key] += weight

    @property
    def lit(self) -> bool:
        """Whether most of the track's frames were lit."""
        return 2 * self.lit_frames >= self.frames

    def summary(self) -> Visit:
        """The track's prototypes so far."""
        vectors = {}
        for key, s in self._sums.items():
            norm = np.linalg.norm(s)
            if norm > 1e-12:
                vectors[key] = (s / norm).astype(np.float32)
        (hn, hd), (wn, wd) = self._measure
        h = (hn / hd, 1.0 / np.sqrt(hd)) if hd > 0 else (np.nan, np.inf)
        w = (wn / wd, 1.0 / np.sqrt(wd)) if wd > 0 else (np.nan, np.inf)
        return Visit(vectors, float(h[0]), max(float(h[1]), _MIN_SIGMA) if hd > 0 else np.inf, float(w[0]),
                     max(float(w[1]), _MIN_SIGMA) if wd > 0 else np.inf, self.lit, self.weight)


def accumulate(observations, cues, timestamp: float, stores: Callable[[int], Sequence[TrackEvidence]]) -> list[int]:
    """Adds one frame to the evidence of each of its tracks; returns the frame's track ids, sorted.

    Args:
        observations: The frame's :class:`~reidstream.pipeline.types.Embeddings`.
        cues: The frame's :class:`~reidstream.pipeline.gallery.cues.TrackCues`, or None (quality 1, no
            body measures, no colour).
        timestamp: Frame time (s).
        stores: Track id -> the evidence accumulators that take the frame (created on first use).
    """
    from reidstream.pipeline.gallery.matcher import group, unit_rows

    query = group(observations)
    tids = set(query.track_ids.tolist()) | (set(cues.track_ids.tolist()) if cues is not None else set())
    row_of = {int(t): i for i, t in enumerate(cues.track_ids)} if cues is not None else {}
    quality = {}
    for tid in sorted(tids):
        i = row_of.get(tid)
        for ev in stores(tid):
            if i is None:
                ev.add_frame(timestamp, 1.0, True, np.nan, np.inf, np.nan, np.inf, None)
            else:
                ev.add_frame(timestamp, float(cues.quality[i]), cues.lit, cues.height[i], cues.height_sigma[i],
                             cues.width[i], cues.width_sigma[i], cues.colour[i] if cues.colour is not None else None)
        quality[tid] = 1.0 if i is None else max(float(cues.quality[i]), 0.02)
    for i, obs in enumerate(observations):
        if not len(obs):
            continue
        unit = unit_rows(obs, f"observations[{i}]")
        key = f"{obs.space}/{obs.modality.value}"
        for r, tid in enumerate(obs.track_ids.tolist()):
            for ev in stores(int(tid)):
                ev.add_vector(key, unit[r], quality[int(tid)])
    return sorted(tids)


class VisitTable:
    """Every stored visit, in arrays (see the module docstring).

    Args:
        dims: Feature key -> vector size (new keys are added as they appear).
    """

    SCALARS = ("owner", "track", "start", "end", "height", "height_sigma", "width", "width_sigma", "lit", "used")

    def __init__(self, dims: dict[str, int] | None = None) -> None:
        self.capacity = 0
        self.vectors: dict[str, np.ndarray] = {}
        self.has: dict[str, np.ndarray] = {}
        self.owner = np.zeros(0, np.int64)
        self.track = np.zeros(0, np.int64)
        self.start = np.zeros(0)
        self.end = np.zeros(0)
        self.height = np.zeros(0)
        self.height_sigma = np.zeros(0)
        self.width = np.zeros(0)
        self.width_sigma = np.zeros(0)
        self.lit = np.zeros(0, bool)
        self.used = np.zeros(0, bool)
        self._free: list[int] = []
        for key, dim in (dims or {}).items():
            self._feature(key, dim)

    def __len__(self) -> int:
        return int(self.used.sum())

    def _grow(self, need: int) -> None:
        if need <= self.capacity:
            return
        new = max(need, 2 * self.capacity, 64)
        for name in self.SCALARS:
            old = getattr(self, name)
            grown = np.zeros(new, old.dtype)
            grown[: len(old)] = old
            setattr(self, name, grown)
        for key in self.vectors:
            v, h = self.vectors[key], self.has[key]
            self.vectors[key] = np.concatenate([v, np.zeros((new - len(v), v.shape[1]), np.float32)])
            self.has[key] = np.concatenate([h, np.zeros(new - len(h), bool)])
        self._free.extend(range(new - 1, self.capacity - 1, -1))
        self.capacity = new

    def _feature(self, key: str, dim: int) -> None:
        if key in self.vectors:
            if self.vectors[key].shape[1] != dim:
                raise ValueError(f"feature '{key}': expected {self.vectors[key].shape[1]}-D vectors like the stored "
                                 f"visits, got {dim}-D")
            return
        self.vectors[key] = np.zeros((self.capacity, dim), np.float32)
        self.has[key] = np.zeros(self.capacity, bool)

    def add(self, owner: int, track: int, visit: Visit, start: float, end: float) -> int:
        """Stores a visit of identity slot ``owner``; returns its row."""
        if not self._free:
            self._grow(self.capacity + 1)
        row = self._free.pop()
        self.used[row], self.owner[row], self.track[row] = True, owner, track
        self.set(row, visit, start, end)
        return row

    def set(self, row: int, visit: Visit, start: float, end: float) -> None:
        """Replaces the prototypes and times of a row (a track that goes on)."""
        for key, v in visit.vectors.items():
            self._feature(key, len(v))
        for key in self.vectors:
            v = visit.vectors.get(key)
            self.has[key][row] = v is not None
            self.vectors[key][row] = 0.0 if v is None else v
        self.start[row], self.end[row] = start, end
        self.height[row], self.height_sigma[row] = visit.height, visit.height_sigma
        self.width[row], self.width_sigma[row] = visit.width, visit.width_sigma
        self.lit[row] = visit.lit

    def remove(self, row: int) -> None:
        self.used[row] = False
        for key in self.has:
            self.has[key][row] = False
        self._free.append(row)

    def rows_of(self, owner: int) -> np.ndarray:
        return np.flatnonzero(self.used & (self.owner == owner))

    def visit(self, row: int) -> Visit:
        """The stored prototypes of a row."""
        vectors = {key: self.vectors[key][row].copy() for key in self.vectors if self.has[key][row]}
        return Visit(vectors, float(self.height[row]), float(self.height_sigma[row]), float(self.width[row]),
                     float(self.width_sigma[row]), bool(self.lit[row]))

    # ---------------------------------------------------------- persistence
    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        rows = np.flatnonzero(self.used)
        arrays = {f"visit_{name}": getattr(self, name)[rows].copy() for name in self.SCALARS if name != "used"}
        meta = {"features": {}}
        for i, key in enumerate(self.vectors):
            meta["features"][key] = {"key": f"f{i}", "dim": int(self.vectors[key].shape[1])}
            arrays[f"visit_f{i}_vectors"] = self.vectors[key][rows].copy()
            arrays[f"visit_f{i}_has"] = self.has[key][rows].copy()
        return meta, arrays

    @classmethod
    def restore(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "VisitTable":
        """Inverse of :meth:`state`; ValueError names an array of the wrong shape."""
        n = len(arrays["visit_owner"])
        table = cls()
        table._grow(n)
        for name in cls.SCALARS:
            if name == "used":
                continue
            a = np.asarray(arrays[f"visit_{name}"])
            if a.shape != (n,):
                raise ValueError(f"array 'visit_{name}': expected shape ({n},), got {a.shape}")
            getattr(table, name)[:n] = a
        table.used[:n] = True
        table._free = [r for r in table._free if r >= n]
        for key, info in meta["features"].items():
            v, h = np.asarray(arrays[f"visit_{info['key']}_vectors"]), np.asarray(arrays[f"visit_{info['key']}_has"])
            if v.shape != (n, int(info["dim"])) or h.shape != (n,):
                raise ValueError(f"arrays of feature '{key}': expected ({n}, {info['dim']}) and ({n},), got "
                                 f"{v.shape} and {h.shape}")
            table._feature(key, int(info["dim"]))
            table.vectors[key][:n], table.has[key][:n] = v, h
        return table


__all__ = ["TrackEvidence", "Visit", "VisitTable", "accumulate"]
