"""Generic paired-folder layout for users' own captures (any of rgb, depth, ir, thermal).

On disk::

    <root>/
      train/<person_id>/<modality>/<stem>.<ext>
      val/...                                   optional
      test/...
        modality: rgb (.jpg/.jpeg/.png/.bmp, colour), depth (.png/.pgm/.tif/.tiff,
        16-bit millimetres), ir and thermal (.png/.jpg/.jpeg/.bmp, 8-bit)

Files with the same stem under one person folder are one capture (paired); a
stem present in one modality only is an unpaired, single-modality record (not
an error: SYSU-style data is unpaired). The split is the top folder.

Stems written by :func:`write` are ``c<camera:02d>_<frame:06d>`` or
``c<camera:02d>_<sequence>_<frame:06d>``; :func:`read` takes ``camid``,
``sequence`` and ``frame`` from stems of that form, and otherwise ``camid`` 0,
``sequence`` "" and ``frame`` = the stem's last number (0 if none). Name your
files ``c<camera>_..._<frame>`` to keep camera ids, which re-id evaluation needs
to discard same-camera matches.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

from reidstream.pipeline.types import Modality

from . import _io
from .samples import CropCapture, DatasetIndex, Record, id_sets

NAME = "folder"
MODALITIES = (Modality.RGB, Modality.DEPTH, Modality.IR, Modality.THERMAL)
SPLITS = ("train", "val", "test")
EXTENSIONS: dict[Modality, tuple[str, ...]] = {
    Modality.RGB: (".jpg", ".jpeg", ".png", ".bmp"),
    Modality.DEPTH: (".png", ".pgm", ".tif", ".tiff"),
    Modality.IR: (".png", ".jpg", ".jpeg", ".bmp"),
    Modality.THERMAL: (".png", ".jpg", ".jpeg", ".bmp"),
}
"""Accepted file extensions per modality folder; the first is what :func:`write` uses for colour."""
WRITE_EXT = {Modality.RGB: ".jpg", Modality.DEPTH: ".png", Modality.IR: ".png", Modality.THERMAL: ".png"}
_STEM = re.compile(r"^c(?P<cam>\d+)_(?:(?P<seq>.+)_)?(?P<frame>\d+)$")
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")
_SAFE_SEQUENCE = re.compile(r"^[A-Za-z0-9.-]*$")


def stem_of(capture: CropCapture) -> str:
    """File stem :func:`write` gives a capture: ``c<camera:02d>[_<sequence>]_<frame:06d>``."""
    seq = f"_{capture.sequence}" if capture.sequence else ""
    return f"c{capture.camera:02d}{seq}_{capture.frame:06d}"


def parse_stem(stem: str) -> tuple[int, str, int]:
    """``(camid, sequence, frame)`` of a file stem (see the module docstring)."""
    m = _STEM.match(stem)
    if m is not None:
        return int(m["cam"]), m["seq"] or "", int(m["frame"])
    last = _LAST_NUMBER.search(stem)
    return 0, "", int(last.group(1)) if last else 0


def write(root: str | Path, captures: Iterable[CropCapture], *, train_ids: Iterable[int],
          test_ids: Iterable[int], val_ids: Iterable[int] = (), overwrite: bool = False) -> DatasetIndex:
    """Writes captures as ``<root>/<split>/<pid>/<modality>/<stem>.<ext>``, every modality they carry.

    Args:
        root: Target folder; created, and must be empty unless ``overwrite``.
        captures: Crops to write; a capture's sequence may hold letters, digits,
            ``.`` and ``-`` only (it is part of the file name).
        train_ids: Identities of the training split.
        test_ids: Identities of the test split (disjoint from the others).
        val_ids: Identities of the validation split (optional; no ``val/`` without).
        overwrite: Delete the contents of a non-empty ``root`` first.

    Returns:
        The index of what was written (as :func:`read` returns it).
    """
    sets = id_sets(train_ids, test_ids, val_ids)
    caps = _io.check_identities(captures, sets, NAME)
    split_of = {pid: name for name, ids in sets.items() for pid in ids}
    targets: dict[Path, CropCapture] = {}
    for c in caps:
        if not _SAFE_SEQUENCE.match(c.sequence):
            raise ValueError(f"folder.write: sequence {c.sequence!r} of identity {c.identity} may hold only "
                             f"letters, digits, '.' and '-' (it becomes part of the file name)")
        key = Path(split_of[c.identity], str(c.identity), stem_of(c))
        if key in targets:
            raise ValueError(f"folder.write: identity {c.identity}, camera {c.camera}, sequence {c.sequence!r}, "
                             f"frame {c.frame} given twice")
        targets[key] = c
    root = _io.prepare_root(root, overwrite)
    for key, c in targets.items():
        write_capture(root / key.parent, c)
    return read(root)


def write_capture(person_dir: Path, capture: CropCapture) -> list[Path]:
    """Writes every modality of ``capture`` as ``person_dir/<modality>/<stem>.<ext>``; returns the paths."""
    stem, paths = stem_of(capture), []
    for m in capture.modalities:
        path = person_dir / m.value / f"{stem}{WRITE_EXT[m]}"
        if m is Modality.RGB:
            _io.write_rgb(path, capture.rgb)
        elif m is Modality.DEPTH:
            _io.write_depth(path, capture.depth)
        else:
            _io.write_gray(path, capture.image(m))
        paths.append(path)
    return paths


def read(root: str | Path, modalities: Sequence[Modality | str] | None = None) -> DatasetIndex:
    """Indexes a paired-folder copy.

    Args:
        root: Folder holding ``train/``, ``test/`` and optionally ``val/``.
        modalities: Modalities to index (default: all four); files of the others
            are ignored. Records hold the requested modalities they have.

    Returns:
        Records per existing split folder. ``index.modalities`` lists the
        requested modalities that have files (all requested ones when given).
        ``dropped`` holds files and folders that do not fit the layout (unknown
        modality folder or extension, non-integer person folder, empty file).

    Raises:
        FileNotFoundError: ``root`` is missing, it holds none of the split
            folders, or a requested modality has no files at all.
        ValueError: An unknown modality name, or no record at all.
    """
    try:
        wanted = tuple(Modality(m) for m in (modalities if modalities is not None else MODALITIES))
    except ValueError:
        raise ValueError(f"folder.read: modalities {list(modalities)} must be among "
                         f"{[m.value for m in MODALITIES]}") from None
    root = _io.require_dir(Path(root).expanduser().resolve(), "paired-folder dataset root")
    present = [s for s in SPLITS if (root / s).is_dir()]
    if not present:
        raise FileNotFoundError(f"{root}: expected split folders {list(SPLITS)} (train/<person_id>/<modality>/"
                                f"<stem>.<ext>); none found")
    dropped = [p for p in sorted(root.iterdir()) if p.name not in SPLITS]
    splits: dict[str, tuple[Record, ...]] = {}
    seen: set[Modality] = set()
    for split in present:
        records: list[Record] = []
        for person in sorted((root / split).iterdir()):
            if not person.is_dir() or not person.name.isdigit():
                dropped.append(person)
                continue
            captures: dict[str, dict[Modality, Path]] = defaultdict(dict)
            for folder in sorted(person.iterdir()):
                m = Modality(folder.name) if folder.name in {x.value for x in MODALITIES} else None
                if m is None or not folder.is_dir():
                    dropped.append(folder)
                    continue
                if m not in wanted:
                    continue
                for f in sorted(folder.iterdir()):
                    if (not f.is_file() or f.suffix.lower() not in EXTENSIONS[m] or f.stat().st_size == 0
                            or m in captures[f.stem]):
                        dropped.append(f)
                        continue
                    captures[f.stem][m] = f
            for stem in sorted(captures, key=lambda s: (parse_stem(s), s)):
                paths = captures[stem]
                seen.update(paths)
                camid, seq, frame = parse_stem(stem)
                records.append(Record(paths, int(person.name), camid, seq, frame))
        splits[split] = tuple(records)
    if modalities is not None:
        lacking = [m.value for m in wanted if m not in seen]
        if lacking:
            raise FileNotFoundError(f"{root}: expected {lacking} files under <split>/<person_id>/<modality>/; "
                                    f"none found")
    if not any(splits.values()):
        raise ValueError(f"{root}: no images under {'/, '.join(present)}/<person_id>/<modality>/<stem>.<ext>")
    mods = wanted if modalities is not None else tuple(m for m in MODALITIES if m in seen)
    return DatasetIndex(NAME, root, mods, splits, tuple(dropped),
                        {"paired": sum(r.paired for s in splits.values() for r in s)})
