"""Per-space storage of the gallery: one contiguous block of rings, searched with one matrix product.

Layout of one embedding space (``K`` = entries kept per identity and space)::

    vectors   (capacity, K, D) float32   unit rows
    times     (capacity, K)    float64   seconds
    valid     (capacity, K)    bool      False = empty ring slot
    modality  (capacity, K)    int8      index into ``MODALITIES``

Row ``s`` of the first axis is the ring of identity *slot* ``s`` (the owner of
entry ``(s, k)`` is ``s``: the owner index array is implicit). Slots are shared
by all spaces of a gallery, so per-space results line up column by column.
Matching a batch of queries is one ``Q x (slots*K)`` product over the used
prefix of the block, a mask of the empty entries and a ``min`` over ``K``:
no Python loop over entries. The price is that empty ring slots are multiplied
too; with ``K`` = 32 and 256-D vectors a full default gallery (1000 identities)
is 32 MiB per space.
"""

from __future__ import annotations

import numpy as np

from reidstream.pipeline.types import Modality

MODALITIES: tuple[Modality, ...] = tuple(Modality)
"""Modality codes stored in ``SpaceIndex.modality`` (the index into this tuple)."""


class SpaceIndex:
    """The rings of all identities in one embedding space.

    Args:
        space: Embedding space id (used in error messages).
        dim: Embedding size ``D``.
        per_identity: Ring length ``K``.
        capacity: Initial number of identity slots.
    """

    def __init__(self, space: str, dim: int, per_identity: int, capacity: int = 0) -> None:
        if dim <= 0 or per_identity <= 0:
            raise ValueError(f"space '{space}': expected dim > 0 and per_identity > 0, got {dim}, {per_identity}")
        self.space = space
        self.dim = int(dim)
        self.k = int(per_identity)
        self.vectors = np.zeros((0, self.k, self.dim), np.float32)
        self.times = np.zeros((0, self.k), np.float64)
        self.valid = np.zeros((0, self.k), bool)
        self.modality = np.zeros((0, self.k), np.int8)
        self.reserve(capacity)

    @property
    def capacity(self) -> int:
        """Number of identity slots allocated."""
        return int(self.valid.shape[0])

    def reserve(self, slots: int) -> None:
        """Grows the block (by doubling) so that it holds at least ``slots`` identity slots."""
        cap = self.capacity
        if slots <= cap:
            return
        new = max(int(slots), 2 * cap, 16)
        grow = new - cap
        self.vectors = np.concatenate([self.vectors, np.zeros((grow, self.k, self.dim), np.float32)])
        self.times = np.concatenate([self.times, np.zeros((grow, self.k), np.float64)])
        self.valid = np.concatenate([self.valid, np.zeros((grow, self.k), bool)])
        self.modality = np.concatenate([self.modality, np.zeros((grow, self.k), np.int8)])

    def check_dim(self, vectors: np.ndarray, what: str) -> None:
        """Raises ``ValueError`` if ``vectors`` (N x D) do not have this space's ``D``."""
        if vectors.shape[1] != self.dim:
            raise ValueError(f"{what}: expected {self.dim}-D vectors in space '{self.space}' (the size of its "
                             f"first embeddings), got {vectors.shape[1]}-D")

    def add(self, slot: int, vectors: np.ndarray, timestamp: float, modality: Modality) -> None:
        """Appends entries to one identity's ring, replacing empty slots first, then the oldest.

        Args:
            slot: Identity slot.
            vectors: ``n x D`` float32 unit rows.
            timestamp: Time of the observation (seconds).
            modality: Modality of the observation.
        """
        self.reserve(slot + 1)
        code = MODALITIES.index(Modality(modality))
        times, valid = self.times[slot], self.valid[slot]
        for v in vectors:
            k = int(np.argmin(np.where(valid, times, -np.inf)))
            self.vectors[slot, k] = v
            times[k] = timestamp
            valid[k] = True
            self.modality[slot, k] = code

    def fill(self, slots: np.ndarray, vectors: np.ndarray, timestamps: np.ndarray, modality: Modality) -> None:
        """Bulk-writes entries into empty rings (at most ``K`` per slot), without a Python loop.

        Args:
            slots: ``N`` identity slots (their rings must be empty).
            vectors: ``N x D`` unit rows.
            timestamps: ``N`` times.
            modality: Modality of all entries.
        """
        slots = np.asarray(slots, np.int64)
        order = np.argsort(slots, kind="stable")
        sorted_slots = slots[order]
        starts = np.searchsorted(sorted_slots, sorted_slots, side="left")
        rank = np.arange(len(slots)) - starts
        if len(slots) and rank.max() >= self.k:
            raise ValueError(f"space '{self.space}': bulk fill of more than {self.k} entries for one identity")
        self.reserve(int(slots.max()) + 1 if len(slots) else 0)
        if self.valid[np.unique(slots)].any():
            raise ValueError(f"space '{self.space}': bulk fill into identities that already have entries")
        self.vectors[sorted_slots, rank] = vectors[order]
        self.times[sorted_slots, rank] = np.asarray(timestamps, np.float64)[order]
        self.valid[sorted_slots, rank] = True
        self.modality[sorted_slots, rank] = MODALITIES.index(Modality(modality))

    def clear(self, slot: int) -> None:
        """Empties one identity's ring."""
        if slot < self.capacity:
            self.valid[slot] = False

    def expire(self, cutoff: float, keep: np.ndarray) -> None:
        """Invalidates entries older than ``cutoff``, except in slots where ``keep`` is True."""
        n = min(self.capacity, len(keep))
        stale = self.valid[:n] & (self.times[:n] < cutoff) & ~keep[:n, None]
        self.valid[:n] &= ~stale

    def counts(self, slots: int) -> np.ndarray:
        """Number of entries of each of the first ``slots`` identity slots (0 past the capacity)."""
        out = np.zeros(slots, np.int64)
        n = min(slots, self.capacity)
        out[:n] = self.valid[:n].sum(axis=1)
        return out

    def distances(self, queries: np.ndarray, slots: int) -> np.ndarray:
        """Cosine distance of each query to the nearest entry of each identity slot.

        Args:
            queries: ``Q x D`` float32 unit rows.
            slots: Number of identity slots to search (the used prefix).

        Returns:
            ``Q x slots`` float64; ``inf`` for slots without entries in this space.
        """
        q = queries.shape[0]
        out = np.full((q, slots), np.inf)
        n = min(slots, self.capacity)
        if n == 0 or q == 0:
            return out
        flat = self.vectors[:n].reshape(n * self.k, self.dim)
        d = 1.0 - queries @ flat.T
        d += np.where(self.valid[:n].reshape(-1), np.float32(0), np.float32(np.inf))
        out[:, :n] = np.maximum(d.reshape(q, n, self.k).min(axis=2), 0.0)
        return out
