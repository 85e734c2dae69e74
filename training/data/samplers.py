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
