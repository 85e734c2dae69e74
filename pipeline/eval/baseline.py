"""The first version's identity rule, kept as a baseline to compare the evidence gallery against.

Per frame: the distance of a track to an identity is the minimum cosine distance over every query row of
the track (any space, any modality) and the identity's recent entries in that space (a ring of
``entries`` per identity and space); a track keeps its previous identity while within ``threshold``;
the others are assigned optimally with a "new identity" option at ``threshold``. No pending window, no
calibration, no body measures or colour statistics. It has the gallery's ``match`` signature, so a
:class:`~reidstream.pipeline.runner.Pipeline` runs it unchanged (it is not saved or reloaded).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from reidstream.pipeline.gallery.decide import assign_open_set
from reidstream.pipeline.gallery.matcher import group
from reidstream.pipeline.types import Embeddings, Match


class MinDistanceGallery:
    """The min-distance, single-threshold rule (see the module docstring).

    Args:
        threshold: Largest cosine distance accepted as the same person (the first version used 0.35).
        entries: Ring length per identity and space.
    """

    def __init__(self, threshold: float = 0.35, entries: int = 32) -> None:
        self.threshold, self.entries = float(threshold), int(entries)
        self._store: dict[str, list[list[np.ndarray]]] = {}
        self._names: list[str] = []
        self._tracks: dict[int, int] = {}
        self.last_expired: list[str] = []
        self.last_resolved: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._names)

    def _distances(self, query) -> np.ndarray:
        d = np.full((len(query.track_ids), len(self._names)), np.inf)
        for space, (vectors, rows, _) in query.spaces.items():
            for slot, entries in enumerate(self._store.get(space, [])):
                if entries:
                    dist = (1.0 - vectors @ np.stack(entries).T).min(axis=1)
                    np.minimum.at(d[:, slot], rows, dist)
        return d

    def match(self, observations: Sequence[Embeddings], timestamp: float, cues=None, *, camera=None) -> list[Match]:
        query = group(observations)
        d = self._distances(query)
        owner: dict[int, int] = {}
        for t, tid in enumerate(query.track_ids.tolist()):
            slot = self._tracks.get(tid)
            if slot is not None and d[t, slot] <= self.threshold and slot not in owner.values():
                owner[t] = slot
        free = [t for t in range(len(query.track_ids)) if t not in owner]
        taken = set(owner.values())
        score = -d[free]
        score[:, list(taken)] = -np.inf
        for r, c in assign_open_set(score, -self.threshold).items():
            owner[free[r]] = c
        out = []
        for t, tid in enumerate(query.track_ids.tolist()):
            new = t not in owner
            if new:
                owner[t] = len(self._names)
                self._names.append(f"id-{len(self._names) + 1:04d}")
                for rings in self._store.values():
                    rings.append([])
            self._tracks[tid] = owner[t]
            dist = float(d[t, owner[t]]) if not new and np.isfinite(d[t, owner[t]]) else 0.0
            out.append(Match(tid, self._names[owner[t]], dist, observations[0].modality, "", new, query.frame_index))
        for space, (vectors, rows, _) in query.spaces.items():
            rings = self._store.setdefault(space, [[] for _ in self._names])
            for v, r in zip(vectors, rows):
                ring = rings[owner[int(r)]]
                ring.append(v)
                del ring[: max(0, len(ring) - self.entries)]
        return out


__all__ = ["MinDistanceGallery"]
