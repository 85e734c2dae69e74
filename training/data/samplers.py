"""Deterministic, resumable, DDP-aware batch samplers (``DataLoader(batch_sampler=...)``).

Every epoch's batches are a function of ``(seed, epoch)`` only (never the global
RNG): all ranks compute the same global list of batches and rank ``r`` takes
batches ``r, r + world_size, ...``; every rank gets the same number. A resumed
run calls ``set_epoch(e)`` and then ``skip(n)`` to continue mid-epoch with
exactly the batches it would have had.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


def _check_int(owner: str, name: str, v: object, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{owner}: {name} must be an integer >= {lo}, got {v!r}")
    return int(v)


class _EpochBatchSampler(Sampler[list[int]]):
    """Shared epoch / skip / DDP logic; subclasses build the epoch's global batches."""

    _salt = 0

    def __init__(self, seed: int, rank: int, world_size: int) -> None:
        owner = type(self).__name__
        self.seed = _check_int(owner, "seed", seed, 0)
        self.world_size = _check_int(owner, "world_size", world_size, 1)
        self.rank = _check_int(owner, "rank", rank, 0)
        if self.rank >= self.world_size:
            raise ValueError(f"{owner}: rank must be < world_size ({self.world_size}), got {rank}")
        self.epoch = 0
        self.start_batch = 0

    def _global_batches(self, rng: np.random.Generator) -> list[list[int]]:
        raise NotImplementedError

    def _num_global(self) -> int:
        raise NotImplementedError

    def __len__(self) -> int:
        """Batches per epoch for this rank (whatever ``start_batch`` is)."""
        return self._num_global() // self.world_size

    def set_epoch(self, epoch: int) -> None:
        """Selects the epoch's batches and resets ``start_batch`` to 0 (call :meth:`skip` after it)."""
        self.epoch = _check_int(type(self).__name__, "epoch", epoch, 0)
        self.start_batch = 0

    def skip(self, n: int) -> None:
        """Starts the next iteration at this rank's batch ``n`` of the current epoch."""
        n = _check_int(type(self).__name__, "skip", n, 0)
        if n > len(self):
            raise ValueError(f"{type(self).__name__}: cannot skip {n} batches; the epoch has {len(self)}")
        self.start_batch = n

    def epoch_batches(self, epoch: int | None = None) -> list[list[int]]:
        """All of this rank's batches of an epoch (default: the current one)."""
        e = self.epoch if epoch is None else epoch
        batches = self._global_batches(np.random.default_rng([self.seed, e, self._salt]))
        mine = batches[self.rank::self.world_size]
        return mine[:len(self)]

    def __iter__(self) -> Iterator[list[int]]:
        start, self.start_batch = self.start_batch, 0
        yield from self.epoch_batches()[start:]

    def state_dict(self) -> dict[str, int]:
        """``{"seed", "epoch", "start_batch"}`` (pass the batches done to ``start_batch`` when saving mid-epoch)."""
        return {"seed": self.seed, "epoch": self.epoch, "start_batch": self.start_batch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restores :meth:`state_dict`; a different seed is an error."""
        if int(state.get("seed", self.seed)) != self.seed:
            raise ValueError(f"{type(self).__name__}: state has seed {state['seed']}, sampler has {self.seed}")
        self.set_epoch(int(state.get("epoch", 0)))
        self.skip(int(state.get("start_batch", 0)))


class PKBatchSampler(_EpochBatchSampler):
    """Identity-balanced batches of ``p`` identities x ``k`` images (Hermans et al. 2017).

    Each epoch shuffles the identities and cuts them into groups of ``p`` (an
    incomplete last group is dropped); per identity it draws ``k`` distinct
    images; an identity with fewer than ``k`` gives each of its images once and
    draws the rest again from them (with replacement). A
    batch lists the ``k`` images of its first identity, then the second's, ...

    Args:
        labels: Class label of every dataset item (``ReIDDataset.labels``).
        p: Identities per batch (Hafner et al. use 16).
        k: Images per identity (Hafner et al. use 4).
        seed: Seed of the shuffles and draws.
        rank: This process's rank.
        world_size: Number of processes.

    Raises:
        ValueError: Bad arguments, or fewer than ``p * world_size`` identities.
    """

    _salt = 0x9B

    def __init__(self, labels: Sequence[int], p: int = 16, k: int = 4, *, seed: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        super().__init__(seed, rank, world_size)
        self.p = _check_int("PKBatchSampler", "p", p, 1)
        self.k = _check_int("PKBatchSampler", "k", k, 1)
        groups: dict[int, list[int]] = defaultdict(list)
        for i, lab in enumerate(labels):
            groups[_check_int("PKBatchSampler", f"labels[{i}]", lab, 0)].append(i)
        self.identities = sorted(groups)
        self._items = {lab: np.asarray(idx, np.int64) for lab, idx in groups.items()}
        if len(self.identities) < self.p * self.world_size:
            raise ValueError(f"PKBatchSampler: {len(self.identities)} identities have images, fewer than "
                             f"p={self.p}{f' x world_size={self.world_size}' if self.world_size > 1 else ''} "
                             f"needed for one batch{' per rank' if self.world_size > 1 else ''}; lower p")

    @property
    def batch_size(self) -> int:
        """``p * k``."""
        return self.p * self.k

    def _num_global(self) -> int:
        return len(self.identities) // self.p

    def _global_batches(self, rng: np.random.Generator) -> list[list[int]]:
        order = rng.permutation(len(self.identities))
        batches = []
        for b in range(self._num_global()):
            batch: list[int] = []
            for j in order[b * self.p:(b + 1) * self.p]:
                items = self._items[self.identities[j]]
                if len(items) >= self.k:
                    pick = rng.choice(items, self.k, replace=False)
                else:  # every image once, the rest drawn again
                    pick = np.concatenate([rng.permutation(items), rng.choice(items, self.k - len(items))])
                batch.extend(int(i) for i in pick)
            batches.append(batch)
        return batches


class PairedBatchSampler(_EpochBatchSampler):
    """Shuffled batches over given item indices (e.g. the items with coupled RGB and depth).

    Args:
        indices: Dataset indices to draw from (``ReIDDataset.paired_indices()``).
        batch_size: Items per batch.
        seed: Seed of the shuffles.
        rank: This process's rank.
        world_size: Number of processes.
        drop_last: Drop the incomplete last batch. Without, it is kept, and ranks
            short of a batch wrap around to the epoch's first batches so that all
            ranks get the same number.

    Raises:
        ValueError: Bad arguments, or too few indices for one batch per rank.
    """

    _salt = 0x9A1

    def __init__(self, indices: Sequence[int], batch_size: int, *, seed: int = 0, rank: int = 0,
                 world_size: int = 1, drop_last: bool = True) -> None:
        super().__init__(seed, rank, world_size)
        self.batch_size = _check_int("PairedBatchSampler", "batch_size", batch_size, 1)
        self.indices = np.asarray([_check_int("PairedBatchSampler", f"indices[{i}]", v, 0)
                                   for i, v in enumerate(indices)], np.int64)
        self.drop_last = bool(drop_last)
        if len(self) < 1:
            ranks = f" per rank ({self.world_size} ranks)" if self.world_size > 1 else ""
            raise ValueError(f"PairedBatchSampler: {len(self.indices)} indices are too few for one batch of "
                             f"{self.batch_size}{ranks}")

    def _num_global(self) -> int:
        n = len(self.indices)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __len__(self) -> int:
        n = self._num_global()
        return n // self.world_size if self.drop_last else math.ceil(n / self.world_size)

    def _global_batches(self, rng: np.random.Generator) -> list[list[int]]:
        perm = self.indices[rng.permutation(len(self.indices))]
        n = self._num_global()
        batches = [[int(i) for i in perm[b * self.batch_size:(b + 1) * self.batch_size]] for b in range(n)]
        return [batches[j % n] for j in range(len(self) * self.world_size)]


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
