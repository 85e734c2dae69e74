"""RegDB layout (Nguyen et al., Sensors 2017): co-located visible and thermal cameras.

On disk::

    <root>/
      Visible/<pid>/<gender>_<view>_v_<n:05d>_<pid>.bmp    colour, 24-bit BMP
      Thermal/<pid>/<gender>_<view>_t_<n:05d>_<pid>.bmp    thermal, grey in a 24-bit BMP
      idx/train_visible_<trial>.txt    lines "Visible/<pid>/<file>.bmp <label>"
      idx/train_thermal_<trial>.txt    lines "Thermal/<pid>/<file>.bmp <label>"
      idx/test_visible_<trial>.txt
      idx/test_thermal_<trial>.txt     trials 1..10

Verified from public loaders (Ye et al.'s AGW/DDAG/CAJ code and others) and
paths quoted in them: the ``Visible``/``Thermal`` folders with unpadded person
folders; file names such as ``Visible/1/male_front_v_00007_1.bmp`` and
``Thermal/1/male_front_t_00007_1.bmp`` (``<gender>_<front|back>_<v|t>_<5-digit
number>_<pid>.bmp``, the same number for the visible and thermal image of one
capture); ``idx/{train,test}_{visible,thermal}_{1..10}.txt`` with lines
``<path relative to root> <label>``, labels 0..N-1 within each split (test labels
also start at 0), the same label for a person in the visible and thermal file;
thermal images are 3-channel (they go through 3-channel normalisation unconverted).
Assumed: the order of identities behind the labels (the real files use a random
order; we use ascending pid), and gender/view for synthetic people (``genders``
argument, default ``male``; ``view`` = the capture's sequence if it is ``front`` or
``back``, else ``front``).

``camid`` is 0 for visible and 1 for thermal; ``sequence`` is the view; ``frame``
is the 5-digit image number; ``label`` is the idx file's label.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Iterable, Mapping

from reidstream.pipeline.types import Modality

from . import _io
from .samples import CropCapture, DatasetIndex, Record, id_sets

NAME = "regdb"
MODALITIES = (Modality.RGB, Modality.THERMAL)
TRIALS = 10
FOLDERS = {Modality.RGB: ("Visible", "v", "visible", 0), Modality.THERMAL: ("Thermal", "t", "thermal", 1)}
"""Modality -> (image folder, file-name letter, idx-file word, camid)."""
_NAME = re.compile(r"^(?P<gender>[a-z]+)_(?P<view>[a-z]+)_(?P<mod>[vt])_(?P<num>\d+)_(?P<pid>\d+)\.bmp$",
                   re.IGNORECASE)


def idx_path(root: str | Path, split: str, modality: Modality | str, trial: int) -> Path:
    """Path of one idx file, e.g. ``idx/train_visible_1.txt``."""
    return Path(root) / "idx" / f"{split}_{FOLDERS[Modality(modality)][2]}_{trial}.txt"


def write(root: str | Path, captures: Iterable[CropCapture], *, train_ids: Iterable[int],
          test_ids: Iterable[int], val_ids: Iterable[int] = (), trials: int = TRIALS,
          resplit_trials: bool = False, seed: int = 0, genders: Mapping[int, str] | None = None,
          overwrite: bool = False) -> DatasetIndex:
    """Writes captures in the RegDB layout, including its ``idx`` files for every trial.

    Each capture needs ``rgb`` and ``thermal`` (RegDB images come in pairs).

    Args:
        root: Target folder; created, and must be empty unless ``overwrite``.
        captures: Crops to write (at most 99999).
        train_ids: Training identities (trial 1, and every trial unless ``resplit_trials``).
        test_ids: Test identities (disjoint from ``train_ids``).
        val_ids: Must be empty: RegDB defines no validation split.
        trials: Number of trials to write idx files for (RegDB has 10).
        resplit_trials: If True, trials 2.. split all identities at random (seeded),
            keeping the train/test sizes, as RegDB's own trials do.
        seed: Seed of those random splits.
        genders: pid -> ``"male"``/``"female"`` for the file names (default ``"male"``).
        overwrite: Delete the contents of a non-empty ``root`` first.

    Returns:
        The index of trial 1 (as :func:`read` returns it).
    """
    if list(val_ids):
        raise ValueError("regdb.write: RegDB has no validation split; pass val_ids=()")
    if not isinstance(trials, int) or trials < 1:
        raise ValueError(f"regdb.write: trials must be a positive integer, got {trials!r}")
    sets = id_sets(train_ids, test_ids)
    caps = _io.check_identities(captures, sets, NAME)
    for c in caps:
        if c.rgb is None or c.thermal is None:
            raise ValueError(f"regdb.write: capture of identity {c.identity} frame {c.frame} needs both rgb "
                             f"and thermal (RegDB images are visible/thermal pairs)")
    if len(caps) > 99_999:
        raise ValueError(f"regdb.write: {len(caps)} captures exceed RegDB's 5-digit image numbers")
    genders = dict(genders or {})
    bad = {p: g for p, g in genders.items() if g not in ("male", "female")}
    if bad:
        raise ValueError(f"regdb.write: genders must be 'male' or 'female', got {bad}")
    root = _io.prepare_root(root, overwrite)
    files: dict[int, dict[Modality, list[str]]] = {}
    order = sorted(caps, key=lambda c: (c.identity, c.sequence, c.frame, c.camera))
    for n, c in enumerate(order, start=1):
        view = c.sequence.lower() if c.sequence.lower() in ("front", "back") else "front"
        for m, (folder, letter, _, _) in FOLDERS.items():
            rel = f"{folder}/{c.identity}/{genders.get(c.identity, 'male')}_{view}_{letter}_{n:05d}_{c.identity}.bmp"
            if m is Modality.RGB:
                _io.write_rgb(root / rel, c.rgb)
            else:
                _io.write_gray(root / rel, c.thermal, channels=3)
            files.setdefault(c.identity, {}).setdefault(m, []).append(rel)
    everyone = sorted(sets["train"] | sets["test"])
    for trial in range(1, trials + 1):
        train = sets["train"]
        if resplit_trials and trial > 1:
            shuffled = everyone[:]
            random.Random(f"{seed}-{trial}").shuffle(shuffled)
            train = frozenset(shuffled[:len(sets["train"])])
        for split, pids in (("train", sorted(train)), ("test", sorted(set(everyone) - train))):
            for m in FOLDERS:
                lines = [f"{rel} {label}" for label, pid in enumerate(pids) for rel in files[pid][m]]
                path = idx_path(root, split, m, trial)
                path.parent.mkdir(exist_ok=True)
                path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return read(root, trial=1)


def _read_idx(root: Path, path: Path, modality: Modality) -> list[Record]:
    folder, letter, _, camid = FOLDERS[modality]
    lines = _io.require_file(path, f"RegDB {folder.lower()} index").read_text(encoding="utf-8").splitlines()
    records, pid_of = [], {}
    for no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or not parts[0].startswith(f"{folder}/"):
            raise ValueError(f"{path}:{no}: expected '{folder}/<pid>/<file>.bmp <label>', got {line!r}")
        rel = Path(parts[0])
        if len(rel.parts) != 3 or not rel.parts[1].isdigit():
            raise ValueError(f"{path}:{no}: expected '{folder}/<pid>/<file>.bmp', got {parts[0]!r}")
        image = root / rel
        if not image.is_file():
            raise FileNotFoundError(f"{image}: expected the image listed at {path}:{no}, not found")
        pid, label = int(rel.parts[1]), int(parts[1])
        if pid_of.setdefault(label, pid) != pid:
            raise ValueError(f"{path}:{no}: label {label} names pid {pid} here but pid {pid_of[label]} earlier")
        m = _NAME.match(rel.name)
        view, frame = (m["view"].lower(), int(m["num"])) if m and m["mod"].lower() == letter else ("", 0)
        records.append(Record({modality: image}, pid, camid, view, frame, label=label))
    return records


def read(root: str | Path, trial: int = 1) -> DatasetIndex:
    """Indexes a RegDB copy for one trial from its ``idx`` files.

    Args:
        root: The ``RegDB`` folder (holding ``Visible``, ``Thermal`` and ``idx``).
        trial: Trial number (1..10 in the real dataset).

    Returns:
        Unpaired records (one image each, visible and thermal) in splits ``train``
        and ``test``, with the idx files' labels.

    Raises:
        FileNotFoundError: ``root``, a folder, an idx file of the trial or a listed image is missing.
        ValueError: An idx line is malformed, labels disagree, or train and test share ids.
    """
    root = _io.require_dir(Path(root).expanduser().resolve(), "RegDB root")
    for folder, *_ in FOLDERS.values():
        _io.require_dir(root / folder, f"RegDB {folder}")
    _io.require_dir(root / "idx", "RegDB idx (split lists)")
    if isinstance(trial, bool) or not isinstance(trial, int) or trial < 1:
        raise ValueError(f"regdb.read: trial must be a positive integer, got {trial!r}")
    splits: dict[str, tuple[Record, ...]] = {}
    for split in ("train", "test"):
        per_mod = {m: _read_idx(root, idx_path(root, split, m, trial), m) for m in FOLDERS}
        maps = {m: {r.label: r.pid for r in recs} for m, recs in per_mod.items()}
        if maps[Modality.RGB] != maps[Modality.THERMAL]:
            raise ValueError(f"{root / 'idx'}: {split}_visible_{trial}.txt and {split}_thermal_{trial}.txt "
                             f"give different label -> pid assignments")
        splits[split] = tuple(per_mod[Modality.RGB] + per_mod[Modality.THERMAL])
    shared = {r.pid for r in splits["train"]} & {r.pid for r in splits["test"]}
    if shared:
        raise ValueError(f"{root / 'idx'}: trial {trial} has ids {sorted(shared)[:10]} in both train and test")
    return DatasetIndex(NAME, root, MODALITIES, splits, meta={"trial": trial})
