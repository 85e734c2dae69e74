"""Open-set assignment of deciding tracks to identities on fused evidence."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def assign_open_set(score: np.ndarray, threshold: float | np.ndarray) -> dict[int, int]:
    """Optimal one-to-one assignment of tracks (rows) to identities (columns) that maximises the summed evidence.

    Each track may instead start a new identity, worth ``threshold`` (one dummy column per track), so a
    track joins an identity only when its fused LLR exceeds ``threshold`` and no better joint assignment
    exists; a greedy best-first pass would let the first track take an identity a later one fits better.

    Args:
        score: ``T x M`` fused LLRs (``-inf``: excluded, e.g. the identity was seen at the same time).
        threshold: The open-set threshold, or one per track (``T``).

    Returns:
        Track row -> identity column, for the tracks that join an existing identity.
    """
    t, m = score.shape
    if t == 0 or m == 0:
        return {}
    th = np.broadcast_to(np.asarray(threshold, np.float64), (t,))
    low = -1e6 - float(np.abs(th).max()) * (t + 1)
    real = np.where(np.isfinite(score) & (score > th[:, None]), score, low)
    dummy = np.full((t, t), low)
    np.fill_diagonal(dummy, th)
    rows, cols = linear_sum_assignment(-np.concatenate([real, dummy], axis=1))
    return {int(r): int(c) for r, c in zip(rows, cols) if c < m and real[r, c] > low}


__all__ = ["assign_open_set"]
