"""Chance levels of the visible-infrared protocols: what an embedding without identity scores.

An embedding that carries no identity ranks every query's admissible gallery in a
uniformly random order. On the same query set, gallery and exclusions as a scenario:

* :func:`chance_map`: the expected mAP over the whole admissible gallery, exact. For a
  query with ``m`` true matches among ``N`` admissible gallery images, a random order has
  ``E[AP] = H_N / N + (m - 1) (N - H_N) / (N (N - 1))`` (``H_N`` the harmonic number;
  the diagonal terms of ``AP = 1/m sum_r sum_s [pos_s <= pos_r] / pos_r`` give the first
  part, the ``m (m - 1)`` cross terms the second). Queries without a true match are
  skipped, as :func:`.metrics.mean_average_precision` skips them.
* :func:`chance_cmc_images`: the expected CMC over gallery images (RegDB's ``eval_regdb``),
  exact: ``P(rank <= k) = 1 - prod_{j<k} (N - m - j) / (N - j)``; rank-1 is ``m / N``.
* :func:`chance_cmc_identities`: the CMC over distinct identities (SYSU-MM01's standard
  code) with random distances, averaged over ``draws``: an identity with more admissible
  images comes first more often, so there is no simple closed form beyond rank 1.

All values are fractions in ``[0, 1]``; callers turn them into percentages.
"""

from __future__ import annotations

import numpy as np


def _counts(q_pids, g_pids, exclude) -> tuple[np.ndarray, np.ndarray]:
    """Per query: admissible gallery images ``N`` and admissible true matches ``m`` (queries with ``m >= 1``)."""
    q, g = np.asarray(q_pids), np.asarray(g_pids)
    adm = np.ones((len(q), len(g)), bool) if exclude is None else ~np.asarray(exclude, dtype=bool)
    if adm.shape != (len(q), len(g)):
        raise ValueError(f"exclude: expected shape {(len(q), len(g))}, got {adm.shape}")
    n = adm.sum(axis=1)
    m = (adm & (q[:, None] == g[None, :])).sum(axis=1)
    keep = m > 0
    if not keep.any():
        raise ValueError("no query has an admissible true match in the gallery")
    return n[keep].astype(float), m[keep].astype(float)


def chance_map(q_pids, g_pids, exclude=None) -> float:
    """Expected mAP of a random ranking of each query's admissible gallery (exact; see the module docstring).

    Args:
        q_pids: ``Q`` query identities.
        g_pids: ``G`` gallery identities.
        exclude: Optional ``Q x G`` boolean mask of gallery entries a query ignores.

    Returns:
        The mean over queries with a true match of the expected average precision, in ``[0, 1]``.

    Raises:
        ValueError: If ``exclude`` has the wrong shape or no query has an admissible true match.
    """
    n, m = _counts(q_pids, g_pids, exclude)
    harmonic = np.cumsum(1.0 / np.arange(1, int(n.max()) + 1))
    h = harmonic[n.astype(int) - 1]
    cross = np.where(n > 1, (m - 1) * (n - h) / (n * np.maximum(n - 1, 1)), 0.0)
    return float(np.mean(h / n + cross))


def chance_cmc_images(q_pids, g_pids, exclude=None, max_rank: int = 20) -> np.ndarray:
    """Expected CMC over gallery images of a random ranking (exact), ``max_rank`` rates in ``[0, 1]``.

    Args:
        q_pids: ``Q`` query identities.
        g_pids: ``G`` gallery identities.
        exclude: Optional ``Q x G`` boolean mask of gallery entries a query ignores.
        max_rank: Length of the curve.

    Raises:
        ValueError: If ``exclude`` has the wrong shape or no query has an admissible true match.
    """
    n, m = _counts(q_pids, g_pids, exclude)
    j = np.arange(int(max_rank), dtype=float)[None, :]
    # probability that the first k entries all miss; a factor <= 0 means a hit is certain by then
    miss = np.cumprod(np.clip((n[:, None] - m[:, None] - j) / np.maximum(n[:, None] - j, 1.0), 0.0, 1.0), axis=1)
    return (1.0 - miss).mean(axis=0)


def chance_cmc_identities(q_pids, g_pids, exclude=None, max_rank: int = 20, *, draws: int = 10,
                          rng: np.random.Generator | None = None) -> np.ndarray:
    """CMC over distinct gallery identities with uniformly random distances, mean of ``draws`` draws.

    Args:
        q_pids: ``Q`` query identities.
        g_pids: ``G`` gallery identities.
        exclude: Optional ``Q x G`` boolean mask of gallery entries a query ignores.
        max_rank: Length of the curve.
        draws: Random distance matrices averaged.
        rng: Source of the draws (default: seeded with 0).

    Raises:
        ValueError: If ``draws`` is not positive, or what :func:`.vi_protocols.identity_cmc` raises.
    """
    from reidstream.training.evaluation.vi_protocols import identity_cmc

    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise ValueError(f"draws: expected a positive integer, got {draws!r}")
    rng = np.random.default_rng(0) if rng is None else rng
    shape = (len(np.asarray(q_pids)), len(np.asarray(g_pids)))
    curves = [identity_cmc(rng.random(shape), q_pids, g_pids, exclude, max_rank)[0] for _ in range(int(draws))]
    return np.mean(curves, axis=0)

