"""Published identity splits (Hafner et al., CVIU 2022) and resolving a copy's records into train/val/test.

Shipped split files (``splits/*.json``, package data) hold ``design`` (training +
validation ids), ``test`` ids and three ``val_folds``: the validation ids of the
first three entries of the ``splits.json`` published with the paper's code. The
ids are open-reid pids of the paper's prepared copies (the position of a person
in their ``meta.json``), i.e. the pids :mod:`.openreid` reads; applied to
another copy, they are taken as that copy's own pids.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .samples import DatasetIndex, Record

_DIR = Path(__file__).resolve().parent / "splits"
SPLITS: dict[str, Path] = {
    "hafner-biwi": _DIR / "hafner_biwi.json",
    "hafner-robotpku": _DIR / "hafner_robotpku.json",
}
"""Split name -> shipped JSON file."""
SPLIT_NAMES = ("train", "val", "test")


def split_file(name: str) -> dict:
    """The parsed JSON of a shipped split (``name``, ``dataset``, ``source``, ``design``, ``test``, ``val_folds``)."""
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; expected one of {sorted(SPLITS)}")
    path = SPLITS[name]
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        for key in ("design", "test", "val_folds"):
            if not isinstance(doc[key], list):
                raise TypeError(f"'{key}' is not a list")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: malformed split file ({e}); expected JSON with lists 'design', 'test' and "
                         f"'val_folds'") from None
    return doc


def load_split(name: str, fold: int = 0) -> dict[str, frozenset[int]]:
    """Identity sets of a shipped split for one validation fold.

    Args:
        name: A key of :data:`SPLITS` (``"hafner-biwi"``, ``"hafner-robotpku"``).
        fold: Validation fold, ``0 .. len(val_folds) - 1``.

    Returns:
        ``{"train": design - val_folds[fold], "val": val_folds[fold], "test": test}``.

    Raises:
        ValueError: Unknown name or fold (listing the allowed values), or a
            malformed file.
    """
    doc = split_file(name)
    folds = doc["val_folds"]
    if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not 0 <= fold < len(folds):
        raise ValueError(f"split {name!r}: fold {fold!r} not available; expected one of {list(range(len(folds)))}")
    design, test = frozenset(int(i) for i in doc["design"]), frozenset(int(i) for i in doc["test"])
    val = frozenset(int(i) for i in folds[fold])
    if not val <= design or design & test:
        raise ValueError(f"{SPLITS[name]}: val_folds[{fold}] must lie within 'design', and 'design' and 'test' "
                         f"must be disjoint")
    return {"train": design - val, "val": val, "test": test}


def identity_folds(ids: Iterable[int], folds: int, *, seed: int = 0) -> list[frozenset[int]]:
    """Partitions identities into ``folds`` disjoint, near-equal sets by a seeded shuffle.

    The result depends only on the set of ids, ``folds`` and ``seed``.
    """
    pool = sorted({int(i) for i in ids})
    if not isinstance(folds, int) or not 1 <= folds <= len(pool):
        raise ValueError(f"folds: expected 1 .. {len(pool)} (the number of identities), got {folds!r}")
    order = np.random.default_rng([int(seed), 0xF01D]).permutation(len(pool))
    return [frozenset(pool[j] for j in order[k::folds]) for k in range(folds)]


def carve_val(train_ids: Iterable[int], n: int, *, seed: int = 0, fold: int = 0) -> frozenset[int]:
    """``n`` identities drawn from ``train_ids`` by an RNG keyed by ``(seed, fold)`` (the validation subset).

    Hafner et al. (Sec. 4.3) extract the validation subset at random from within
    the training subset; different folds give different draws.
    """
    pool = sorted({int(i) for i in train_ids})
    if not 0 < n < len(pool):
        raise ValueError(f"val_identities: expected 1 .. {len(pool) - 1} (fewer than the {len(pool)} training "
                         f"identities), got {n}")
    rng = np.random.default_rng([int(seed), int(fold), 0x5A1])
    return frozenset(pool[i] for i in rng.choice(len(pool), n, replace=False))


def _all_records(index: DatasetIndex) -> list[Record]:
    return list(dict.fromkeys(r for records in index.splits.values() for r in records))


def resolve_split(index: DatasetIndex, *, split: str | None = None, fold: int = 0, val_identities: int = 0,
                  seed: int = 0) -> dict[str, tuple[Record, ...]]:
    """Records of an index per ``train`` / ``val`` / ``test``.

    Args:
        index: A layout reader's result.
        split: ``None`` keeps the index's own ``train`` / ``val`` / ``test`` splits
            (``val`` and ``test`` may be absent, giving empty tuples); a name of
            :data:`SPLITS` re-partitions all records of the index by pid.
        fold: Validation fold of a named split, and key of the carving RNG.
        val_identities: When the resulting ``val`` is empty and this is > 0, that
            many identities are moved from ``train`` to ``val`` (:func:`carve_val`).
        seed: Seed of the carving RNG.

    Returns:
        ``{"train": ..., "val": ..., "test": ...}``, records in index order.

    Raises:
        ValueError: The index has no ``train`` split (and no ``split`` is named),
            a named split lists ids the copy lacks, or ``val_identities`` is not
            smaller than the number of training identities.
    """
    if isinstance(val_identities, bool) or not isinstance(val_identities, int) or val_identities < 0:
        raise ValueError(f"val_identities: expected a non-negative integer, got {val_identities!r}")
    if split is None:
        if "train" not in index.splits:
            raise ValueError(f"{index.name} at {index.root}: no 'train' split (splits are {list(index.splits)}); "
                             f"name a split, one of {sorted(SPLITS)}, or add the copy's split file")
        out = {s: tuple(index.splits.get(s, ())) for s in SPLIT_NAMES}
    else:
        sets = load_split(split, fold)
        records = _all_records(index)
        present = {r.pid for r in records}
        missing = sorted(frozenset().union(*sets.values()) - present)
        if missing:
            raise ValueError(f"split {split!r} lists identities {missing[:20]}{' ...' if len(missing) > 20 else ''} "
                             f"({len(missing)} in all) that {index.name} at {index.root} has no records of")
        out = {s: tuple(r for r in records if r.pid in sets[s]) for s in SPLIT_NAMES}
    if not out["val"] and val_identities > 0:
        val = carve_val({r.pid for r in out["train"]}, val_identities, seed=seed, fold=fold)
        out["val"] = tuple(r for r in out["train"] if r.pid in val)
        out["train"] = tuple(r for r in out["train"] if r.pid not in val)
    return out


def split_identities(records: dict[str, Sequence[Record]]) -> dict[str, frozenset[int]]:
    """Person ids per split of a :func:`resolve_split` result."""
    return {name: frozenset(r.pid for r in recs) for name, recs in records.items()}
