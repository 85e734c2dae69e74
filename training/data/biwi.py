"""BIWI RGBD-ID layout (Munaro et al., 2014): paired colour + depth per frame.

On disk (as the dataset's archives unpack)::

    <root>/
      Training/<pid:03d>/                 one folder per person and session
        <pid:03d>_<frame:06d>-a_<ts>_rgb.jpg          colour, JPEG
        <pid:03d>_<frame:06d>-b_<ts>_depth.pgm        depth, 16-bit PGM (big-endian), mm
        <pid:03d>_<frame:06d>-c_<ts>_userMap.pgm      8-bit person map, 0 = no person
        <pid:03d>_<frame:06d>-d_<ts>_skel.txt         Kinect SDK skeleton
        <pid:03d>_<frame:06d>-e_<ts>_groundCoeff.txt  ground plane a b c d
      Testing/Still/<pid:03d>/...          same five files per frame
      Testing/Walking/<pid:03d>/...
      splits.json                          ours; the real dataset ships no split file

Verified from public sources: the five per-frame file types, their ``-a``..``-e``
letters, suffixes and formats (16-bit millimetre depth PGM, 8-bit userMap, from
the dataset README and from readers of the raw files, e.g. the example frame
``000_000000-a_8348863_rgb.jpg``); the ``Training``, ``Testing/Still`` and
``Testing/Walking`` folders; integer-named person folders. Assumed: the same
three-digit person id in the Testing folders as in Training, and the ``<ts>``
field (a timestamp; real files of one frame carry different values, we write
``100 * frame``, 10 fps). Real colour is 1280x960 and depth 640x480; we store
crops at their own sizes. We have no skeleton or ground plane, so those two
files are written empty (the real ``groundCoeff`` files are mostly empty too).
Without ``mask`` the userMap is 1 wherever depth is valid.

``camid`` is the session: 0 ``Training``, 1 ``Still``, 2 ``Walking``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from reidstream.pipeline.types import Modality

from . import _io
from .samples import CropCapture, DatasetIndex, Record, id_sets

NAME = "biwi"
MODALITIES = (Modality.RGB, Modality.DEPTH)
SESSIONS: dict[str, tuple[str, ...]] = {
    "Training": ("Training",),
    "Still": ("Testing", "Still"),
    "Walking": ("Testing", "Walking"),
}
"""Session name -> folder (relative to the root); the session's camid is its position."""

_ALIASES = {"training": "Training", "train": "Training", "still": "Still", "testing/still": "Still",
            "walking": "Walking", "testing/walking": "Walking"}
_FILE = re.compile(r"^(?P<id>[^_]+)_(?P<frame>\d+)-(?P<letter>[a-e])_(?P<ts>\d+)_"
                   r"(?P<kind>rgb|depth|userMap|skel|groundCoeff)\.(?P<ext>[A-Za-z]+)$")


def session_of(sequence: str) -> str:
    """Maps a capture's sequence (``Training``/``train``, ``Still``, ``Walking``) to a BIWI session."""
    s = _ALIASES.get(sequence.strip().lower())
    if s is None:
        raise ValueError(f"biwi: sequence {sequence!r} is not a BIWI session; use one of "
                         f"'Training', 'Still', 'Walking' (or 'train', 'Testing/Still', 'Testing/Walking')")
    return s


def frame_files(pid: int, frame: int, ts: int | None = None) -> dict[str, str]:
    """File names of one frame: ``{"rgb", "depth", "userMap", "skel", "groundCoeff"} -> name``."""
    stem = f"{pid:03d}_{frame:06d}"
    ts = 100 * frame if ts is None else ts
    return {"rgb": f"{stem}-a_{ts}_rgb.jpg", "depth": f"{stem}-b_{ts}_depth.pgm",
            "userMap": f"{stem}-c_{ts}_userMap.pgm", "skel": f"{stem}-d_{ts}_skel.txt",
            "groundCoeff": f"{stem}-e_{ts}_groundCoeff.txt"}


def write(root: str | Path, captures: Iterable[CropCapture], *, train_ids: Iterable[int],
          test_ids: Iterable[int], val_ids: Iterable[int] = (), overwrite: bool = False) -> DatasetIndex:
    """Writes captures in the BIWI RGBD-ID layout plus our ``splits.json``.

    Each capture needs ``rgb`` and ``depth``; its ``sequence`` picks the session
    folder (see :func:`session_of`); ``camera`` is not stored (BIWI has one Kinect).

    Args:
        root: Target folder; created, and must be empty unless ``overwrite``.
        captures: Crops to write; identities 0..999.
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
            raise ValueError(f"biwi.write: capture of identity {c.identity} frame {c.frame} needs both rgb "
                             f"and depth (BIWI frames are colour+depth pairs)")
        if c.identity > 999 or c.frame > 999_999:
            raise ValueError(f"biwi.write: identity {c.identity} / frame {c.frame} exceed BIWI's 3/6 digits")
        folder = Path(*SESSIONS[session_of(c.sequence)], f"{c.identity:03d}")
        key = folder / frame_files(c.identity, c.frame)["rgb"]
        if key in targets:
            raise ValueError(f"biwi.write: identity {c.identity}, session {folder.parts[-2]}, frame {c.frame} "
                             f"given twice (cameras {targets[key].camera} and {c.camera})")
        targets[key] = c
    root = _io.prepare_root(root, overwrite)
    for key, c in targets.items():
        folder = root / key.parent
        names = frame_files(c.identity, c.frame)
        _io.write_rgb(folder / names["rgb"], c.rgb)
        _io.write_depth(folder / names["depth"], c.depth)
        user = (c.depth > 0) if c.mask is None else (c.mask > 0)
        _io.write_gray(folder / names["userMap"], user.astype(np.uint8))
        (folder / names["skel"]).write_text("", encoding="utf-8")
        (folder / names["groundCoeff"]).write_text("", encoding="utf-8")
    _io.write_splits(root, NAME, sets, "reid-stream split of BIWI RGBD-ID identities (the real dataset "
                     "ships none); lists person ids, i.e. the 3-digit folder names")
    return read(root)


def read(root: str | Path, split: Mapping[str, Iterable[int]] | None = None) -> DatasetIndex:
    """Indexes a BIWI RGBD-ID copy, pairing colour and depth of each frame.

    Args:
        root: Folder holding ``Training/`` and/or ``Testing/{Still,Walking}/``.
        split: Split name -> person ids. Defaults to ``root/splits.json``; a copy
            with neither is returned as one split named ``"all"``.

    Returns:
        Paired records (``rgb`` + ``depth``, auxiliary files in ``aux``) per split.

    Raises:
        FileNotFoundError: ``root`` or all session folders are missing.
        ValueError: No paired frame is found, or a split lists ids without frames.
    """
    root = _io.require_dir(Path(root).expanduser().resolve(), "BIWI RGBD-ID root")
    folders = [(camid, name, root.joinpath(*parts)) for camid, (name, parts) in enumerate(SESSIONS.items())]
    if not any(f.is_dir() for _, _, f in folders):
        raise FileNotFoundError(f"{root}: expected BIWI session folders Training/, Testing/Still/ or "
                                f"Testing/Walking/; none found")
    records: list[Record] = []
    dropped: list[Path] = []
    for camid, session, folder in folders:
        if not folder.is_dir():
            continue
        for person in sorted(folder.iterdir()):
            if not person.is_dir() or not person.name.isdigit():
                dropped.append(person)
                continue
            frames: dict[tuple[str, int], dict[str, Path]] = defaultdict(dict)
            for f in sorted(person.iterdir()):
                m = _FILE.match(f.name)
                if m is None or not f.is_file() or (m["kind"] in ("rgb", "depth") and f.stat().st_size == 0):
                    dropped.append(f)
                    continue
                frames[(m["id"], int(m["frame"]))][m["kind"]] = f
            for (_, frame), files in sorted(frames.items(), key=lambda kv: kv[0][1]):
                if "rgb" not in files or "depth" not in files:
                    dropped.extend(files.values())
                    continue
                aux = {k: v for k, v in files.items() if k not in ("rgb", "depth")}
                records.append(Record({Modality.RGB: files["rgb"], Modality.DEPTH: files["depth"]},
                                      int(person.name), camid, session, frame, aux=aux))
    if not records:
        raise ValueError(f"{root}: no paired BIWI frames (<pid>_<frame>-a_<ts>_rgb.jpg with "
                         f"<pid>_<frame>-b_<ts>_depth.pgm) under the session folders")
    sets = _io.read_splits(root, NAME, split)
    return DatasetIndex(NAME, root, MODALITIES, _io.assign_splits(records, sets, root, NAME), tuple(dropped),
                        {"sessions": {name: camid for camid, name in enumerate(SESSIONS)},
                         "split_source": "explicit" if split is not None else (
                             _io.SPLITS_FILE if sets is not None else "none")})
