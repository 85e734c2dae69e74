"""Per-frame matching: group a frame's observations by track, measure track-to-identity distances, assign.

A frame arrives as several :class:`Embeddings` (e.g. colour in ``rgbd``, colour
in ``rgbir``, depth in ``rgbd``) that share track ids. The distance of a track
to an identity is the minimum, over every query row of that track (any space,
any modality), of the cosine distance ``1 - cos`` to the identity's entries in
the row's space. An identity without entries in a space cannot be reached
through that space (distance ``inf``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from reidstream.pipeline.gallery.index import SpaceIndex
from reidstream.pipeline.types import Embeddings, Modality


@dataclass
class Query:
    """The query rows of one frame, grouped by space.

    Attributes:
        track_ids: ``T`` sorted distinct track ids of the frame.
        spaces: Space -> ``(vectors R_s x D, track index R_s, modality per row)``.
        frame_index: Frame index of the observations.
    """

    track_ids: np.ndarray
    spaces: dict[str, tuple[np.ndarray, np.ndarray, list[Modality]]]
    frame_index: int


def unit_rows(obs: Embeddings, what: str) -> np.ndarray:
    """The vectors of ``obs`` as float32 unit rows (normalised here when ``normalized`` is False)."""
    v = np.asarray(obs.vectors, np.float32)
    if obs.normalized:
        return v
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    if (norms <= 1e-12).any():
        raise ValueError(f"{what}: expected non-zero vectors (to normalise), got a zero row")
    return (v / norms).astype(np.float32)


def group(observations: Sequence[Embeddings]) -> Query:
    """Validates one frame's observations and groups their rows by space and track.

    Raises:
        ValueError: an item is not ``Embeddings``, a track id is negative (untracked rows
            cannot be grouped), or one space gets vectors of different sizes.
    """
    parts: dict[str, list[tuple[np.ndarray, np.ndarray, Modality]]] = {}
    for i, obs in enumerate(observations):
        what = f"observations[{i}]"
        if not isinstance(obs, Embeddings):
            raise ValueError(f"{what}: expected Embeddings, got {type(obs).__name__}")
        if len(obs) and (obs.track_ids < 0).any():
            raise ValueError(f"{what}: expected track ids >= 0 (the gallery groups a frame's observations "
                             f"by track), got {obs.track_ids.tolist()}")
        dims = {p[0].shape[1] for p in parts.get(obs.space, [])}
        if dims and obs.dim not in dims:
            raise ValueError(f"{what}: expected {dims.pop()}-D vectors in space '{obs.space}' like the other "
                             f"observations of the frame, got {obs.dim}-D")
        parts.setdefault(obs.space, []).append((unit_rows(obs, what), obs.track_ids, obs.modality))
    tids = np.unique(np.concatenate([t for p in parts.values() for _, t, _ in p] or [np.zeros(0, np.int64)]))
    spaces = {}
    for space, items in parts.items():
        vectors = np.concatenate([v for v, _, _ in items])
        rows = np.searchsorted(tids, np.concatenate([t for _, t, _ in items]))
        modalities = [m for v, _, m in items for _ in range(len(v))]
        if len(vectors):
            spaces[space] = (vectors, rows, modalities)
    frame = int(observations[0].frame_index) if len(observations) else 0
    return Query(tids, spaces, frame)


class Distances:
    """Track-to-identity distances of one frame (``T x slots``) and where each came from.

    Args:
        query: The grouped frame.
        index: Space -> storage; spaces the gallery does not hold reach no identity.
        slots: Number of identity slots (columns).
    """

    def __init__(self, query: Query, index: Mapping[str, SpaceIndex], slots: int) -> None:
        self.track_ids = query.track_ids
        rows, track_of, sources = [], [], []
        for space, (vectors, tracks, modalities) in query.spaces.items():
            store = index.get(space)
            if store is None:
                rows.append(np.full((len(vectors), slots), np.inf))
            else:
                store.check_dim(vectors, f"observations in space '{space}'")
                rows.append(store.distances(vectors, slots))
            track_of.append(tracks)
            sources.extend((space, m) for m in modalities)
        self.rows = np.concatenate(rows) if rows else np.zeros((0, slots))
        self.track_of = np.concatenate(track_of) if track_of else np.zeros(0, np.int64)
        self.sources = sources
        self.matrix = np.full((len(self.track_ids), slots), np.inf)
        np.minimum.at(self.matrix, self.track_of, self.rows)

    def source(self, track: int, slot: int | None) -> tuple[float, str, Modality]:
        """``(distance, space, modality)`` of a track's best row for an identity slot.

        ``slot=None`` gives the track's nearest identity overall; with no reachable identity
        the distance is ``inf`` and the space/modality are those of the track's first row.
        """
        mine = np.flatnonzero(self.track_of == track)
        sub = self.rows[mine] if slot is None else self.rows[mine, slot][:, None]
        best = int(np.unravel_index(np.argmin(sub), sub.shape)[0]) if sub.size else 0
        space, modality = self.sources[mine[best]]
        return float(sub[best].min()) if sub.size else float("inf"), space, modality


def assign(cost: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Optimal one-to-one assignment of tracks (rows) to identities (columns), open set.

    Each track may instead start a new identity at cost ``threshold`` (one dummy column per
    track), so the assignment minimises ``sum(matched distances) + threshold * new tracks``:
    a pair is taken only if it is within ``threshold`` and the total is best overall, which
    is not what a greedy nearest-first pass gives.

    Args:
        cost: ``T x M`` distances (``inf`` = unreachable).
        threshold: Largest accepted distance.

    Returns:
        ``(row, column)`` pairs with ``cost <= threshold``.
    """
    t, m = cost.shape
    if t == 0 or m == 0:
        return []
    big = 1e6 + threshold * (t + 1)
    real = np.where(cost <= threshold, cost, big)
    dummy = np.full((t, t), big)
    np.fill_diagonal(dummy, threshold)
    rows, cols = linear_sum_assignment(np.concatenate([real, dummy], axis=1))
    return [(int(r), int(c)) for r, c in zip(rows, cols) if c < m and cost[r, c] <= threshold]


def decide(matrix: np.ndarray, previous: Mapping[int, int], threshold: float) -> dict[int, int]:
    """One frame's decisions: track row -> identity column, at most one track per identity.

    Sticky tracks first: a track whose previous identity (``previous[row]``) is within
    ``threshold`` keeps it without competition (two tracks claiming one identity: the closer
    keeps it). The other tracks compete by :func:`assign` for the identities left; tracks
    missing from the result start new identities.

    Args:
        matrix: ``T x slots`` track-to-identity distances (``inf`` = unreachable or free slot).
        previous: Track row -> identity column it had in an earlier frame.
        threshold: Largest accepted distance.
    """
    owner: dict[int, int] = {}
    for t, slot in sorted(previous.items()):
        d = matrix[t, slot]
        rival = next((r for r, s in owner.items() if s == slot), None)
        if d <= threshold and (rival is None or d < matrix[rival, slot]):
            owner.pop(rival, None)
            owner[t] = slot
    free_tracks = [t for t in range(matrix.shape[0]) if t not in owner]
    # Only identities within threshold of some free track can be assigned.
    reachable = (matrix[free_tracks] <= threshold).any(axis=0)
    reachable[list(owner.values())] = False
    free_slots = np.flatnonzero(reachable).tolist()
    if free_tracks and free_slots:
        for r, c in assign(matrix[np.ix_(free_tracks, free_slots)], threshold):
            owner[free_tracks[r]] = free_slots[c]
    return owner
