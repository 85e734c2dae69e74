"""Cross-modality batch samplers of the visible-infrared methods (identity-aligned visible / infrared halves).

Built on :class:`.samplers._EpochBatchSampler`: batches are a function of
``(seed, epoch)`` only, resumable with ``skip`` and sharded over DDP ranks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Sequence

import numpy as np

from .samplers import _check_int, _EpochBatchSampler


def item_modalities(records: Sequence, modalities: Sequence[str] = ("rgb", "ir")) -> list[str]:
    """The one modality of ``modalities`` each record (or dataset item) carries.

    For unpaired visible-infrared sets (SYSU-MM01, RegDB records read one image each;
    ``ReIDDataset(..., require_all=False).records``), this gives the
    ``modalities_of_items`` argument of :class:`CrossModalPKSampler` and
    :class:`TupleBatchSampler`.

    Args:
        records: Objects with a ``modalities`` attribute (:class:`.samples.Record`).
        modalities: The two modality names of interest.

    Raises:
        ValueError: A record carries both or neither of ``modalities``.
    """
    want = _two_modalities("item_modalities", modalities)
    out = []
    for i, r in enumerate(records):
        have = [m for m in want if m in {getattr(x, "value", x) for x in r.modalities}]
        if len(have) != 1:
            raise ValueError(f"item_modalities: records[{i}] must carry exactly one of {list(want)}, "
                             f"it has {[getattr(x, 'value', x) for x in r.modalities]}")
        out.append(have[0])
    return out


def unpair(records: Sequence, modalities: Sequence[str] = ("rgb", "ir")) -> list:
    """Records of one image each: a record holding both of ``modalities`` (a co-located RGB-IR camera, the
    ``folder`` layout) becomes two, one per modality; records holding one are kept as they are.

    The cross-modality samplers draw visible and infrared images independently, as from SYSU-MM01's unpaired
    cameras; other modalities of a record (depth, thermal) are dropped. Records holding neither are skipped.
    """
    want = _two_modalities("unpair", modalities)
    out = []
    for r in records:
        have = [m for m in want if m in {getattr(x, "value", x) for x in r.paths}]
        if len(have) == 1 and len(r.paths) == 1:
            out.append(r)
            continue
        for m in have:
            out.append(replace(r, paths={k: v for k, v in r.paths.items() if getattr(k, "value", k) == m}))
    return out


def _two_modalities(owner: str, modalities: Sequence[str]) -> tuple[str, str]:
    names = tuple(getattr(m, "value", m) for m in modalities) if not isinstance(modalities, str) else ()
    if len(names) != 2 or names[0] == names[1] or not all(isinstance(m, str) and m for m in names):
        raise ValueError(f"{owner}: modalities must be two different names (visible, infrared), "
                         f"got {modalities!r}")
    return names


class _CrossModalBase(_EpochBatchSampler):
    """Groups item indices per (identity, modality); keeps identities that have both modalities."""

    def __init__(self, labels: Sequence[int], modalities_of_items: Sequence[str], modalities: Sequence[str],
                 seed: int, rank: int, world_size: int) -> None:
        super().__init__(seed, rank, world_size)
        owner = type(self).__name__
        self.modalities = _two_modalities(owner, modalities)
        labels, mods = list(labels), [getattr(m, "value", m) for m in modalities_of_items]
        if len(labels) != len(mods):
            raise ValueError(f"{owner}: modalities_of_items must have one entry per item ({len(labels)} labels), "
                             f"got {len(mods)}")
        groups: dict[int, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
        for i, (lab, m) in enumerate(zip(labels, mods)):
            lab = _check_int(owner, f"labels[{i}]", lab, 0)
            if m not in self.modalities:
                raise ValueError(f"{owner}: modalities_of_items[{i}] must be one of {list(self.modalities)}, "
                                 f"got {m!r}")
            groups[lab][self.modalities.index(m)].append(i)
        self.identities = sorted(lab for lab, (v, r) in groups.items() if v and r)
        """Labels with images in both modalities (the only ones drawn), ascending."""
        self._items = {lab: tuple(np.asarray(g, np.int64) for g in groups[lab]) for lab in self.identities}

    def _require(self, n: int, what: str) -> None:
        if len(self.identities) < n:
            ranks = f" x world_size={self.world_size}" if self.world_size > 1 else ""
            raise ValueError(f"{type(self).__name__}: {len(self.identities)} identities have images in both "
                             f"{self.modalities[0]!r} and {self.modalities[1]!r}, fewer than {what}{ranks} "
                             f"needed for one batch{' per rank' if self.world_size > 1 else ''}")


def _pick(items: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` distinct items, or every item once and the rest drawn again when there are fewer than ``k``."""
    if len(items) >= k:
        return rng.choice(items, k, replace=False)
    return np.concatenate([rng.permutation(items), rng.choice(items, k - len(items))])


class CrossModalPKSampler(_CrossModalBase):
    """Cross-modality identity-balanced batches: ``p`` identities x (``k`` visible + ``k`` infrared) images.

    The AGW sampler used by LUPI (Alehdaghi et al., Sec. 4.1: ``b_s = 8`` persons and
    ``n_p = 4`` images per person) and Hao et al.'s paired two-stream batches. As
    in AGW's identity sampler, an epoch is as long as one pass over the larger
    modality: ``max(#visible, #infrared images) // (p * k)`` global batches (at
    least one; ``// world_size`` per rank), and each batch draws ``p`` distinct
    identities at random among those with images in *both* modalities. Per
    identity it draws ``k`` distinct visible images (drawn again only when it has
    fewer than ``k``), then likewise ``k`` infrared ones.

    Batch layout (``2 * p * k`` dataset indices, what :func:`.torch_data.collate_cross_modal`
    expects): the ``p * k`` visible indices identity-major (``k`` of the first
    identity, ``k`` of the second, ...), then the ``p * k`` infrared indices in the
    same identity order, so visible item ``i`` and infrared item ``i`` share a label.

    Args:
        labels: Class label of every dataset item (``ReIDDataset.labels``).
        modalities_of_items: Modality name of every item (:func:`item_modalities`).
        modalities: ``(visible, infrared)`` names, e.g. ``("rgb", "ir")`` or ``("rgb", "thermal")``.
        p: Identities per batch (AGW / LUPI: 8).
        k: Images per identity and modality (AGW / LUPI: 4).
        seed: Seed of the shuffles and draws.
        rank: This process's rank.
        world_size: Number of processes.

    Raises:
        ValueError: Bad arguments, an item of another modality, or fewer than
            ``p * world_size`` identities with both modalities.
    """

    _salt = 0xC3

    def __init__(self, labels: Sequence[int], modalities_of_items: Sequence[str],
                 modalities: Sequence[str] = ("rgb", "ir"), p: int = 8, k: int = 4, *, seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        super().__init__(labels, modalities_of_items, modalities, seed, rank, world_size)
        self.p = _check_int("CrossModalPKSampler", "p", p, 1)
        self.k = _check_int("CrossModalPKSampler", "k", k, 1)
        self._require(self.p * self.world_size, f"p={self.p}")

    @property
    def batch_size(self) -> int:
        """Indices per batch, both modalities: ``2 * p * k``."""
        return 2 * self.p * self.k

    def _num_global(self) -> int:
        images = max(sum(len(self._items[i][h]) for i in self.identities) for h in (0, 1))
        return max(images // (self.p * self.k), self.world_size)

    def _global_batches(self, rng: np.random.Generator) -> list[list[int]]:
        batches = []
        for _ in range(self._num_global()):
            halves: tuple[list[int], list[int]] = ([], [])
            for j in rng.choice(len(self.identities), self.p, replace=False):
                for half, items in zip(halves, self._items[self.identities[j]]):
                    half.extend(int(i) for i in _pick(items, self.k, rng))
            batches.append(halves[0] + halves[1])
        return batches


class TupleBatchSampler(_CrossModalBase):
    """Tuple batches of Gao et al. (2022), Sec. 4.3 "Batch Sampling Strategy", in the aligned layout.

    The paper: a visible and an infrared image of one identity form an *anchor
    pair*; a batch holds ``N`` anchor pairs, each completed to a *tuple* by a
    positive and a negative, drawn with the anchor's own images excluded, "so
    there's a total of N x 2 x 3 samples in each mini-batch"; the random sampling
    "traverse[s] all the training samples". Eq. 5 and 8-16 use the positive and
    the negative in both modalities (``V^rgb_p, V^ir_p, V^rgb_n, V^ir_n``), so
    positive and negative are pairs too. Our reading:

    * Anchor pairs of an epoch: per identity with both modalities, its visible and
      its infrared images are shuffled and zipped, the shorter list cycled, giving
      ``max(#visible, #infrared)`` pairs; every training image is an anchor at
      least once per epoch. All pairs are shuffled and cut into batches of
      ``tuples`` (``N``); the incomplete last batch is dropped, so an epoch has
      ``sum over identities of max(#vis, #ir) // tuples`` global batches.
    * Positive pair: a random visible image of the anchor's identity other than the
      anchor's, and likewise an infrared one (the anchor's own image is reused
      only when the identity has a single image of that modality).
    * Negative pair: a uniformly drawn other identity (with both modalities), one
      random visible and one random infrared image of it.

    Batch layout (``6 * N`` indices; the same visible-half / infrared-half
    alignment as :class:`CrossModalPKSampler`, so :func:`.torch_data.collate_cross_modal`
    applies): visible anchors ``[0, N)``, visible positives ``[N, 2N)``, visible
    negatives ``[2N, 3N)``, then the infrared anchors, positives and negatives in
    the same tuple order. In the collated batch (``B = 3N`` per modality) tuple
    ``t`` is rows ``t``, ``N + t``, ``2N + t`` of both ``batch[visible]`` and
    ``batch[infrared]``, and ``label[t] == label[N + t] != label[2N + t]``.

    Args:
        labels: Class label of every dataset item.
        modalities_of_items: Modality name of every item (:func:`item_modalities`).
        modalities: ``(visible, infrared)`` names.
        tuples: Anchor pairs per batch, the paper's batch size ``N`` (8).
        seed: Seed of the shuffles and draws.
        rank: This process's rank.
        world_size: Number of processes.

    Raises:
        ValueError: Bad arguments, an item of another modality, fewer than two
            identities with both modalities, or too few anchor pairs for one batch per rank.
    """

    _salt = 0x7B1E

    def __init__(self, labels: Sequence[int], modalities_of_items: Sequence[str],
                 modalities: Sequence[str] = ("rgb", "ir"), tuples: int = 8, *, seed: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        super().__init__(labels, modalities_of_items, modalities, seed, rank, world_size)
        self.tuples = _check_int("TupleBatchSampler", "tuples", tuples, 1)
        if len(self.identities) < 2:
            raise ValueError(f"TupleBatchSampler: needs at least 2 identities with images in both "
                             f"{self.modalities[0]!r} and {self.modalities[1]!r} (for negatives), "
                             f"got {len(self.identities)}")
        self._pairs = sum(max(len(v), len(r)) for v, r in self._items.values())
        if self._num_global() < self.world_size:
            ranks = f" per rank ({self.world_size} ranks)" if self.world_size > 1 else ""
            raise ValueError(f"TupleBatchSampler: {self._pairs} anchor pairs are too few for one batch of "
                             f"tuples={self.tuples}{ranks}")

    @property
    def batch_size(self) -> int:
        """Indices per batch, both modalities: ``6 * tuples``."""
        return 6 * self.tuples

    def _num_global(self) -> int:
        return self._pairs // self.tuples

    def _global_batches(self, rng: np.random.Generator) -> list[list[int]]:
        anchors = []  # (identity position, visible index, infrared index)
        for pos, lab in enumerate(self.identities):
            vis, ir = (rng.permutation(g) for g in self._items[lab])
            anchors.extend((pos, int(vis[j % len(vis)]), int(ir[j % len(ir)]))
                           for j in range(max(len(vis), len(ir))))
        anchors = [anchors[i] for i in rng.permutation(len(anchors))]
        n_ids, batches = len(self.identities), []
        for b in range(self._num_global()):
            rows: list[list[int]] = [[] for _ in range(6)]  # vis a/p/n, ir a/p/n
            for pos, va, ia in anchors[b * self.tuples:(b + 1) * self.tuples]:
                neg = self._items[self.identities[(pos + 1 + int(rng.integers(n_ids - 1))) % n_ids]]
                for m, anchor in enumerate((va, ia)):
                    own = self._items[self.identities[pos]][m]
                    others = own[own != anchor]
                    rows[3 * m].append(anchor)
                    rows[3 * m + 1].append(int(rng.choice(others if len(others) else own)))
                    rows[3 * m + 2].append(int(rng.choice(neg[m])))
            batches.append([i for row in rows for i in row])
        return batches
