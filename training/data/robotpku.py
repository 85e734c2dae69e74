"""RobotPKU RGBD-ID layout (Liu, Hu, Ma 2017): per-person still and walking RGB-D sequences.

On disk (our reading of the dataset; see "verified vs assumed" below)::

    <root>/
      <pid:03d>/
        still/
          color/<frame:05d>.jpg     colour, JPEG
          depth/<frame:05d>.png     depth, 16-bit PNG, millimetres
        walking/
          color/...
          depth/...
      splits.json                   ours; the real dataset ships no split file

Verified from public sources: only the shape of the data. Hafner et al.'s
cross-modal distillation code ships the open-reid ``meta.json`` of its prepared
RobotPKU copy: 90 identity entries, each with two "cameras" (we read them as the
still and walking sequences) whose colour and depth image lists carry the same
file names, i.e. colour and depth are paired frame by frame. The dataset's own
page gives only download links. NOT verified: the folder and file naming of the
raw archive (no listing of it is public in the sources we could search). We
chose a per-person / per-sequence tree with colour and depth in sibling folders
paired by frame number, and the lossless 16-bit millimetre PNG that Kinect tools
commonly write; the names are module constants so they can be changed in one
place once checked against a real copy.

``camid`` is the sequence: 0 ``still``, 1 ``walking``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

from reidstream.pipeline.types import Modality

from . import _io
from .samples import CropCapture, DatasetIndex, Record, id_sets

NAME = "robotpku"
MODALITIES = (Modality.RGB, Modality.DEPTH)
SEQUENCES = ("still", "walking")
"""Sequence folder names; a sequence's camid is its position."""
COLOR_DIR, DEPTH_DIR = "color", "depth"
COLOR_EXT, DEPTH_EXT = ".jpg", ".png"


def sequence_of(sequence: str) -> str:
    """Maps a capture's sequence (``still``/``Still``, ``walking``/``Walking``) to a folder name."""
    s = sequence.strip().lower()
    if s not in SEQUENCES:
        raise ValueError(f"robotpku: sequence {sequence!r} is not a RobotPKU sequence; use 'still' or 'walking'")
    return s


def write(root: str | Path, captures: Iterable[CropCapture], *, train_ids: Iterable[int],
          test_ids: Iterable[int], val_ids: Iterable[int] = (), overwrite: bool = False) -> DatasetIndex:
    """Writes captures in the RobotPKU RGBD-ID layout plus our ``splits.json``.

    Each capture needs ``rgb`` and ``depth``; its ``sequence`` picks ``still`` or
    ``walking``; ``camera`` is not stored (one Kinect).

    Args:
        root: Target folder; created, and must be empty unless ``overwrite``.
        captures: Crops to write; identities 0..999, frames 0..99999.
        train_ids: Identities of the training split.
        test_ids: Identities of the test split (disjoint from the others).
        val_ids: Identities of the validation split (optional).
        overwrite: Delete the contents of a non-empty ``root`` first.

    Returns:
        The index of what was written (as :func:`read` returns it).
    """
    sets = id_sets(train_ids, test_ids, val_ids)
    caps = _io.check_identities(captures, sets, NAME)
    targets: dict[Path, CropCapture] = {}
    for c in caps:
        if c.rgb is None or c.depth is None:
            raise ValueError(f"robotpku.write: capture of identity {c.identity} frame {c.frame} needs both "
                             f"rgb and depth (RobotPKU frames are colour+depth pairs)")
        if c.identity > 999 or c.frame > 99_999:
            raise ValueError(f"robotpku.write: identity {c.identity} / frame {c.frame} exceed 3/5 digits")
        key = Path(f"{c.identity:03d}", sequence_of(c.sequence), f"{c.frame:05d}")
        if key in targets:
            raise ValueError(f"robotpku.write: identity {c.identity}, sequence {key.parts[1]}, frame "
                             f"{c.frame} given twice (cameras {targets[key].camera} and {c.camera})")
        targets[key] = c
    root = _io.prepare_root(root, overwrite)
    for key, c in targets.items():
        seq = root / key.parent
        _io.write_rgb(seq / COLOR_DIR / f"{key.name}{COLOR_EXT}", c.rgb)
        _io.write_depth(seq / DEPTH_DIR / f"{key.name}{DEPTH_EXT}", c.depth)
    _io.write_splits(root, NAME, sets, "reid-stream split of RobotPKU RGBD-ID identities (the real "
                     "dataset ships none); lists person ids, i.e. the person folder names")
    return read(root)


def read(root: str | Path, split: Mapping[str, Iterable[int]] | None = None) -> DatasetIndex:
    """Indexes a RobotPKU RGBD-ID copy, pairing colour and depth frames by number.

    Args:
        root: Folder holding one folder per person.
        split: Split name -> person ids. Defaults to ``root/splits.json``; a copy
            with neither is returned as one split named ``"all"``.

    Returns:
        Paired records (``rgb`` + ``depth``) per split.

    Raises:
        FileNotFoundError: ``root`` is missing, or a person folder lacks
            ``still``/``walking`` or their ``color``/``depth`` folders.
        ValueError: No person folder or paired frame is found, or a split lists
            ids without frames.
    """
    root = _io.require_dir(Path(root).expanduser().resolve(), "RobotPKU RGBD-ID root")
    people = sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit())
    if not people:
        raise ValueError(f"{root}: expected RobotPKU person folders (<pid>/still, <pid>/walking); none found")
    records: list[Record] = []
    dropped: list[Path] = []
    for person in people:
        subdirs = {d.name.lower(): d for d in person.iterdir() if d.is_dir()}
        present = [s for s in SEQUENCES if s in subdirs]
        if not present:
            raise FileNotFoundError(f"{person}: expected the sequence folders {list(SEQUENCES)}, found none")
        for camid, seq in enumerate(SEQUENCES):
            if seq not in subdirs:
                continue
            color = _io.require_dir(subdirs[seq] / COLOR_DIR, f"RobotPKU {seq} colour")
            depth = _io.require_dir(subdirs[seq] / DEPTH_DIR, f"RobotPKU {seq} depth")
            cfiles = {f.stem: f for f in color.iterdir() if f.suffix.lower() == COLOR_EXT and f.stem.isdigit()}
            dfiles = {f.stem: f for f in depth.iterdir() if f.suffix.lower() == DEPTH_EXT and f.stem.isdigit()}
            for stem in sorted(cfiles.keys() & dfiles.keys(), key=int):
                records.append(Record({Modality.RGB: cfiles[stem], Modality.DEPTH: dfiles[stem]},
                                      int(person.name), camid, seq, int(stem)))
            dropped.extend(cfiles[s] for s in sorted(cfiles.keys() - dfiles.keys()))
            dropped.extend(dfiles[s] for s in sorted(dfiles.keys() - cfiles.keys()))
    if not records:
        raise ValueError(f"{root}: no paired RobotPKU frames (<pid>/<sequence>/{COLOR_DIR}/<frame>{COLOR_EXT} "
                         f"with {DEPTH_DIR}/<frame>{DEPTH_EXT})")
    sets = _io.read_splits(root, NAME, split)
    return DatasetIndex(NAME, root, MODALITIES, _io.assign_splits(records, sets, root, NAME), tuple(dropped),
                        {"sequences": {s: i for i, s in enumerate(SEQUENCES)},
                         "split_source": "explicit" if split is not None else (
                             _io.SPLITS_FILE if sets is not None else "none")})
