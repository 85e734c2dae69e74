"""A frame's observations, validated and grouped by track.

A frame arrives as several :class:`Embeddings` (e.g. colour in ``rgbd``, colour
in ``rgbir``, depth in ``rgbd``) that share track ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

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


__all__ = ["Query", "group", "unit_rows"]
