"""The rolling cross-modal gallery: long-term identities with recent embeddings per space.

Rules of :meth:`Gallery.match` (one call per frame):

1. Entries older than ``max_age_s`` expire first (see :meth:`Gallery.expire`).
2. Distance track -> identity = min over the track's observations (all spaces it was
   embedded in) of the min cosine distance to that identity's entries in the same
   space. Colour bridges depth and IR because a colour observation is stored in both
   ``rgbd`` and ``rgbir`` of its identity.
3. *Sticky tracks*: a track that was given an identity in an earlier frame keeps it,
   outside the competition, while its distance to that identity is ``<= threshold``
   (if two tracks claim the same identity, the closer one keeps it). Otherwise the
   track is re-decided with the new ones.
4. The remaining tracks and identities are paired by optimal assignment
   (:func:`~reidstream.pipeline.gallery.matcher.assign`); unpaired tracks get new
   identities ``id-0001``, ``id-0002``, ... (never reused, also after a reload).
5. Every observation row is added to its track's identity, in its own space (ring of
   ``max_entries_per_identity_space``: empty places first, then the oldest is replaced).
6. Bounds: past ``max_identities`` the least recently seen unpinned identities are evicted
   (ties: the oldest created). Identities dropped by steps 1 and 6 are in ``last_expired``.

``Match.distance`` of a new identity is the distance to the nearest identity that existed
(the nearest rejected one, space and modality of that row), or 0.0 when none was reachable.
Track ids are short-term and assumed unique within the stream feeding this gallery; the
track -> identity memory is not saved (a restarted tracker reuses ids for other people).
"""

from __future__ import annotations

import heapq
from typing import Sequence

import numpy as np
from pydantic import Field

from reidstream.pipeline.config import ConfigModel
from reidstream.pipeline.gallery.index import SpaceIndex
from reidstream.pipeline.gallery.matcher import Distances, decide, group, unit_rows
from reidstream.pipeline.types import Embeddings, Match, Modality


class GalleryConfig(ConfigModel):
    """Gallery settings (section ``gallery`` of a pipeline config)."""

    threshold: float = Field(0.35, gt=0.0, le=2.0)
    """Largest cosine distance (``1 - cos``) accepted as the same person (open set)."""
    max_age_s: float = Field(300.0, gt=0.0)
    """Entries older than this expire (enrolled identities excepted)."""
    max_entries_per_identity_space: int = Field(32, ge=1)
    """Ring length per identity and space: the oldest entry is dropped past it."""
    max_identities: int = Field(1000, ge=1)
    """Past this the least recently seen unpinned identity is evicted."""


class Gallery:
    """Long-term identities, each with a ring of recent embeddings per embedding space.

    Args:
        threshold: Largest accepted cosine distance.
        max_age_s: Age (seconds) past which entries expire.
        max_entries_per_identity_space: Ring length per identity and space.
        max_identities: Bound on identities (enrolled ones count but are never evicted).
    """

    def __init__(self, threshold: float = 0.35, max_age_s: float = 300.0,
                 max_entries_per_identity_space: int = 32, max_identities: int = 1000) -> None:
        self.config = GalleryConfig(threshold=float(threshold), max_age_s=float(max_age_s),
                                    max_entries_per_identity_space=int(max_entries_per_identity_space),
                                    max_identities=int(max_identities))
        self.spaces: dict[str, SpaceIndex] = {}
        self._names: list[str | None] = []
        self._slot: dict[str, int] = {}
        self._free: list[int] = []
        self.last_seen = np.zeros(0, np.float64)
        self.pinned = np.zeros(0, bool)
        self.created = np.zeros(0, np.int64)
        self.next_id = 1
        self._serial = 0
        self._tracks: dict[int, tuple[str, float]] = {}
        self.last_expired: list[str] = []

    @classmethod
    def from_config(cls, cfg: GalleryConfig) -> "Gallery":
        """A gallery with the settings of ``cfg``."""
        return cls(cfg.threshold, cfg.max_age_s, cfg.max_entries_per_identity_space, cfg.max_identities)

    # ----------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, identity: object) -> bool:
        return identity in self._slot

    @property
    def slots(self) -> int:
        """Number of identity slots in use or freed (the searched prefix of every space)."""
        return len(self._names)

    def identities(self) -> list[str]:
        """Identity ids, oldest created first."""
        return sorted(self._slot, key=lambda name: self.created[self._slot[name]])

    def is_pinned(self, identity: str) -> bool:
        """Whether ``identity`` was enrolled (never expires by age nor is evicted)."""
        return bool(self.pinned[self._lookup(identity)])

    def entries(self, space: str) -> dict[str, int]:
        """Number of entries per identity in ``space`` (identities without any are left out)."""
        store = self.spaces.get(space)
        if store is None:
            return {}
        counts = store.counts(self.slots)
        return {name: int(counts[s]) for name, s in self._slot.items() if counts[s]}

    def stats(self) -> dict:
        """Counts for logs and health checks."""
        return {"identities": len(self), "pinned": int(self.pinned[list(self._slot.values())].sum()),
                "entries": {space: int(sum(self.entries(space).values())) for space in self.spaces},
                "slots": self.slots, "tracks": len(self._tracks), "next_id": self.next_id}

    def _lookup(self, identity: str) -> int:
        if identity not in self._slot:
            raise KeyError(f"gallery has no identity '{identity}'")
        return self._slot[identity]

    # ----------------------------------------------------------- bookkeeping
    def _new_identity(self, name: str | None, timestamp: float, pinned: bool = False) -> int:
        if name is None:
            while f"id-{self.next_id:04d}" in self._slot:
                self.next_id += 1
            name = f"id-{self.next_id:04d}"
            self.next_id += 1
        if self._free:
            slot = heapq.heappop(self._free)
            self._names[slot] = name
        else:
            slot = len(self._names)
            self._names.append(name)
            if slot >= len(self.last_seen):
                grow = max(16, len(self.last_seen))
                self.last_seen = np.concatenate([self.last_seen, np.zeros(grow)])
                self.pinned = np.concatenate([self.pinned, np.zeros(grow, bool)])
                self.created = np.concatenate([self.created, np.zeros(grow, np.int64)])
        self._slot[name] = slot
        self.last_seen[slot] = timestamp
        self.pinned[slot] = pinned
        self.created[slot] = self._serial
        self._serial += 1
        return slot

    def _remove(self, slot: int) -> str:
        name = self._names[slot]
        for store in self.spaces.values():
            store.clear(slot)
        del self._slot[name]
        self._names[slot] = None
        self.pinned[slot] = False
        heapq.heappush(self._free, slot)
        return name

    def _store(self, space: str, dim: int) -> SpaceIndex:
        if space not in self.spaces:
            self.spaces[space] = SpaceIndex(space, dim, self.config.max_entries_per_identity_space, self.slots)
        return self.spaces[space]

    def _add(self, slot: int, obs: Embeddings, rows: np.ndarray, vectors: np.ndarray, timestamp: float) -> None:
        store = self._store(obs.space, obs.dim)
        store.check_dim(vectors, f"embeddings of space '{obs.space}'")
        store.add(slot, vectors[rows], timestamp, obs.modality)

    def _bulk_add(self, space: str, vectors: np.ndarray, owners: np.ndarray, timestamp: float = 0.0,
                  modality: Modality = Modality.RGB) -> list[str]:
        """Creates ``owners.max() + 1`` new identities from ``N x D`` unit rows at once (benchmarks, tests).

        ``owners[i]`` (0-based, local to this call) is the new identity of row ``i``; at most
        ``max_entries_per_identity_space`` rows per identity. Bounds are not enforced.
        """
        owners = np.asarray(owners, np.int64)
        vectors = np.ascontiguousarray(vectors, np.float32)
        slots = np.array([self._new_identity(None, timestamp) for _ in range(int(owners.max()) + 1)])
        store = self._store(space, vectors.shape[1])
        store.check_dim(vectors, f"bulk add to space '{space}'")
        store.fill(slots[owners], vectors, np.full(len(owners), timestamp), modality)
        return [self._names[s] for s in slots]

    # ---------------------------------------------------------- persistence
    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Metadata (JSON-compatible) and arrays that :meth:`restore` turns back into this gallery.

        The track -> identity memory is left out on purpose (track ids restart with the tracker).
        """
        n = self.slots
        meta = {"config": self.config.to_dict(), "names": list(self._names), "next_id": self.next_id,
                "serial": self._serial, "spaces": {}}
        arrays = {"last_seen": self.last_seen[:n].copy(), "pinned": self.pinned[:n].copy(),
                  "created": self.created[:n].copy()}
        for i, (space, store) in enumerate(self.spaces.items()):
            store.reserve(n)
            meta["spaces"][space] = {"key": f"s{i}", "dim": store.dim}
            for part in ("vectors", "times", "valid", "modality"):
                arrays[f"s{i}_{part}"] = getattr(store, part)[:n].copy()
        return meta, arrays

    @classmethod
    def restore(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "Gallery":
        """Rebuilds a gallery from :meth:`state` output; new ids continue after the saved counter.

        Raises:
            ValueError: naming the key that is missing or has the wrong shape/dtype.
            ConfigError: the saved config is invalid.
        """
        from reidstream.pipeline.config import config_from_mapping

        g = cls.from_config(config_from_mapping(GalleryConfig, meta["config"], "saved gallery config"))
        names = list(meta["names"])
        n, k = len(names), g.config.max_entries_per_identity_space
        want = {"last_seen": ((n,), np.float64), "pinned": ((n,), np.bool_), "created": ((n,), np.int64)}
        for space, info in meta["spaces"].items():
            key, dim = info["key"], int(info["dim"])
            want.update({f"{key}_vectors": ((n, k, dim), np.float32), f"{key}_times": ((n, k), np.float64),
                         f"{key}_valid": ((n, k), np.bool_), f"{key}_modality": ((n, k), np.int8)})
        for key, (shape, dtype) in want.items():
            a = arrays.get(key)
            if a is None or a.shape != shape or a.dtype != dtype:
                got = "nothing" if a is None else f"shape {a.shape} dtype {a.dtype}"
                raise ValueError(f"array '{key}': expected shape {shape} dtype {np.dtype(dtype).name}, got {got}")
        g._names = [None if name is None else str(name) for name in names]
        g._slot = {name: s for s, name in enumerate(g._names) if name is not None}
        if len(g._slot) != sum(name is not None for name in names):
            raise ValueError("metadata 'names': expected unique identity names")
        g._free = [s for s, name in enumerate(g._names) if name is None]
        heapq.heapify(g._free)
        g.last_seen, g.pinned, g.created = (np.array(arrays[key]) for key in ("last_seen", "pinned", "created"))
        g.next_id, g._serial = int(meta["next_id"]), int(meta["serial"])
        for space, info in meta["spaces"].items():
            store = g._store(space, int(info["dim"]))
            for part in ("vectors", "times", "valid", "modality"):
                setattr(store, part, np.array(arrays[f"{info['key']}_{part}"]))
        return g

    # ------------------------------------------------------------ lifecycle
    def expire(self, timestamp: float) -> list[str]:
        """Drops entries older than ``max_age_s``, emptied identities, and enforces ``max_identities``.

        Enrolled (pinned) identities keep their entries regardless of age and are never
        evicted. Returns the ids of the identities removed, for "expired" events.
        """
        keep = self.pinned[: self.slots]
        for store in self.spaces.values():
            store.expire(timestamp - self.config.max_age_s, keep)
        counts = sum((store.counts(self.slots) for store in self.spaces.values()), np.zeros(self.slots, np.int64))
        gone = [self._remove(s) for s in sorted(self._slot.values()) if counts[s] == 0 and not self.pinned[s]]
        excess = len(self._slot) - self.config.max_identities
        if excess > 0:
            loose = [s for s in self._slot.values() if not self.pinned[s]]
            loose.sort(key=lambda s: (self.last_seen[s], self.created[s]))
            gone += [self._remove(s) for s in loose[:excess]]
        cutoff = timestamp - self.config.max_age_s
        self._tracks = {t: (name, ts) for t, (name, ts) in self._tracks.items() if name in self._slot and ts >= cutoff}
        return gone

    def enrol(self, name: str, observations: Sequence[Embeddings], timestamp: float) -> str:
        """Adds a named, pinned identity from embeddings of its images (all rows, track ids ignored).

        Also runs :meth:`expire` (its result goes to ``last_expired``), which may evict the least
        recently seen unpinned identity to make room.

        Raises:
            ValueError: ``name`` is empty or taken, there are no vectors, or the gallery is full of
                enrolled identities.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"enrol: expected a non-empty name, got {name!r}")
        if name in self._slot:
            raise ValueError(f"enrol: identity name '{name}' is already in the gallery; names must be unique")
        if not any(len(o) for o in observations):
            raise ValueError(f"enrol '{name}': expected at least one embedding vector, got none")
        if int(self.pinned[: self.slots].sum()) >= self.config.max_identities:
            raise ValueError(f"enrol '{name}': the gallery already holds max_identities="
                             f"{self.config.max_identities} enrolled identities")
        vectors, dims = [], {space: store.dim for space, store in self.spaces.items()}
        for i, obs in enumerate(observations):
            what = f"enrol '{name}': observations[{i}]"
            if not isinstance(obs, Embeddings):
                raise ValueError(f"{what}: expected Embeddings, got {type(obs).__name__}")
            if dims.setdefault(obs.space, obs.dim) != obs.dim:
                raise ValueError(f"{what}: expected {dims[obs.space]}-D vectors in space '{obs.space}', "
                                 f"got {obs.dim}-D")
            vectors.append(unit_rows(obs, what))
        slot = self._new_identity(name, timestamp, pinned=True)
        for obs, v in zip(observations, vectors):
            self._add(slot, obs, np.arange(len(v)), v, timestamp)
        self.last_expired = self.expire(timestamp)
        return name

    # --------------------------------------------------------------- match
    def match(self, observations: Sequence[Embeddings], timestamp: float) -> list[Match]:
        """Assigns the tracks of one frame to identities and adds their embeddings.

        Args:
            observations: Embeddings of one frame (several spaces/modalities share track ids).
            timestamp: Frame time in seconds.

        Returns:
            One :class:`Match` per track, sorted by track id (see the module docstring for the rules).

        Raises:
            ValueError: negative track ids, or vectors whose size differs from their space's.
        """
        query = group(observations)
        expired = self.expire(timestamp)
        dist = Distances(query, self.spaces, self.slots)
        previous = {t: self._slot[self._tracks[tid][0]] for t, tid in enumerate(query.track_ids.tolist())
                    if tid in self._tracks and self._tracks[tid][0] in self._slot}
        owner = decide(dist.matrix, previous, self.config.threshold)
        matches = []
        for t, tid in enumerate(query.track_ids.tolist()):
            slot = owner.get(t)
            d, space, modality = dist.source(t, slot)
            is_new = slot is None
            if is_new:
                slot = owner[t] = self._new_identity(None, timestamp)
                d = d if np.isfinite(d) else 0.0
            self.last_seen[slot] = timestamp
            self._tracks[tid] = (self._names[slot], timestamp)
            matches.append(Match(tid, self._names[slot], float(d), modality, space, is_new, query.frame_index))
        for obs in observations:
            unit = unit_rows(obs, f"embeddings of space '{obs.space}'") if len(obs) else None
            for tid in np.unique(obs.track_ids).tolist():
                slot = owner[int(np.searchsorted(query.track_ids, tid))]
                self._add(slot, obs, np.flatnonzero(obs.track_ids == tid), unit, timestamp)
        self.last_expired = expired + self.expire(timestamp)
        return matches
