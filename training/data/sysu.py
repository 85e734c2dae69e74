"""SYSU-MM01 layout (Wu et al., ICCV 2017): four RGB and two near-IR cameras, unpaired.

On disk::

    <root>/
      cam1/<pid:04d>/<n:04d>.jpg    RGB, indoor
      cam2/<pid:04d>/<n:04d>.jpg    RGB, indoor
      cam3/<pid:04d>/<n:04d>.jpg    IR, indoor  (grey stored as 3-channel JPEG)
      cam4/<pid:04d>/<n:04d>.jpg    RGB, outdoor
      cam5/<pid:04d>/<n:04d>.jpg    RGB, outdoor
      cam6/<pid:04d>/<n:04d>.jpg    IR, outdoor
      exp/train_id.txt              one line of comma-separated ids, e.g. "1,2,4,5"
      exp/val_id.txt
      exp/test_id.txt
      exp/available_id.txt          all ids with images (train + val + test)

Verified from public loaders (Ye et al.'s AGW/DDAG/CAJ code, LUPI and others):
RGB cameras ``cam1, cam2, cam4, cam5`` and IR cameras ``cam3, cam6``; folders
``camN/<4-digit pid>/`` of ``<4-digit>.jpg`` files (loaders slice the camera and
pid out of ``.../camN/PPPP/NNNN.jpg``); ``exp/{train,val,test}_id.txt`` hold one
comma-separated line of unpadded ids; ``exp/available_id.txt`` exists in the same
format; indoor search uses the RGB cameras 1 and 2. IR images are 3-channel
(they go through 3-channel normalisation without conversion in those loaders).
Assumed: cam3 indoor and cam6 outdoor (from the dataset paper, not re-checked);
image numbering from 0001 in each folder; JPEG quality (we write 95).

``camid`` is the camera number N of ``camN``; ``sequence`` is ``indoor`` or ``outdoor``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Mapping

from reidstream.pipeline.types import Modality

from . import _io
from .samples import CropCapture, DatasetIndex, Record, id_sets

NAME = "sysu"
MODALITIES = (Modality.RGB, Modality.IR)
RGB_CAMERAS = (1, 2, 4, 5)
IR_CAMERAS = (3, 6)
INDOOR_CAMERAS = (1, 2, 3)
ID_FILES = {"train": "train_id.txt", "val": "val_id.txt", "test": "test_id.txt"}
_IMAGE = re.compile(r"^(\d+)\.jpg$", re.IGNORECASE)


def camera_modality(cam: int) -> Modality:
    """The modality SYSU camera ``cam`` records (``RGB`` for 1, 2, 4, 5; ``IR`` for 3, 6)."""
    if cam in RGB_CAMERAS:
        return Modality.RGB
    if cam in IR_CAMERAS:
        return Modality.IR
    raise ValueError(f"sysu: camera {cam} does not exist; SYSU-MM01 has cam1..cam6")


def _target(camera: int, table: Mapping[int, int] | None, allowed: tuple[int, ...], kind: str) -> int:
    cam = allowed[camera % len(allowed)] if table is None else table.get(camera)
    if cam not in allowed:
        raise ValueError(f"sysu.write: capture camera {camera} maps to {cam!r}; {kind} images must go to "
                         f"one of cam{allowed}")
    return cam


def write(root: str | Path, captures: Iterable[CropCapture], *, train_ids: Iterable[int],
          test_ids: Iterable[int], val_ids: Iterable[int] = (), rgb_cameras: Mapping[int, int] | None = None,
          ir_cameras: Mapping[int, int] | None = None, overwrite: bool = False) -> DatasetIndex:
    """Writes captures in the SYSU-MM01 layout, including its ``exp/*_id.txt`` files.

    A capture's ``rgb`` goes to an RGB camera and its ``ir`` to an IR camera; by
    default capture camera ``k`` maps to ``cam{(1, 2, 4, 5)[k % 4]}`` for colour and
    ``cam{(3, 6)[k % 2]}`` for IR. Images of a ``camN/<pid>`` folder are numbered
    from 0001 in (sequence, frame, camera) order.

    Args:
        root: Target folder; created, and must be empty unless ``overwrite``.
        captures: Crops with ``rgb`` and/or ``ir``; identities 0..9999.
        train_ids: Identities of ``exp/train_id.txt``.
        test_ids: Identities of ``exp/test_id.txt`` (disjoint from the others).
        val_ids: Identities of ``exp/val_id.txt`` (may be empty; the file is always written).
        rgb_cameras: Capture camera -> SYSU RGB camera (1, 2, 4 or 5), replacing the default.
        ir_cameras: Capture camera -> SYSU IR camera (3 or 6), replacing the default.
        overwrite: Delete the contents of a non-empty ``root`` first.

    Returns:
        The index of what was written (as :func:`read` returns it).
    """
    sets = id_sets(train_ids, test_ids, val_ids)
    caps = _io.check_identities(captures, sets, NAME)
    folders: dict[tuple[int, int], list[tuple[tuple, CropCapture, Modality]]] = {}
    for c in caps:
        if c.identity > 9999:
            raise ValueError(f"sysu.write: identity {c.identity} exceeds SYSU-MM01's 4-digit folders")
        if c.rgb is None and c.ir is None:
            raise ValueError(f"sysu.write: capture of identity {c.identity} frame {c.frame} has neither rgb "
                             f"nor ir; SYSU-MM01 holds only those (it has {[m.value for m in c.modalities]})")
        for m, table, allowed in ((Modality.RGB, rgb_cameras, RGB_CAMERAS), (Modality.IR, ir_cameras, IR_CAMERAS)):
            if getattr(c, m.value) is not None:
                cam = _target(c.camera, table, allowed, m.value)
                folders.setdefault((cam, c.identity), []).append(((c.sequence, c.frame, c.camera), c, m))
    root = _io.prepare_root(root, overwrite)
    for cam in RGB_CAMERAS + IR_CAMERAS:
        (root / f"cam{cam}").mkdir()
    for (cam, pid), items in folders.items():
        items.sort(key=lambda t: t[0])
        if len(items) > 9999:
            raise ValueError(f"sysu.write: {len(items)} images for cam{cam}/{pid:04d} exceed 4-digit numbering")
        for n, (_, c, m) in enumerate(items, start=1):
            path = root / f"cam{cam}" / f"{pid:04d}" / f"{n:04d}.jpg"
            if m is Modality.RGB:
                _io.write_rgb(path, c.rgb)
            else:
                _io.write_gray(path, c.ir, channels=3)
    exp = root / "exp"
    exp.mkdir()
    for name, fname in ID_FILES.items():
        (exp / fname).write_text(",".join(str(i) for i in sorted(sets[name])), encoding="utf-8")
    everything = sorted(sets["train"] | sets["val"] | sets["test"])
    (exp / "available_id.txt").write_text(",".join(map(str, everything)), encoding="utf-8")
    return read(root)


def read_ids(path: Path) -> list[int]:
    """Parses a SYSU id file: comma-separated integers (any line breaks or spaces ignored)."""
    text = _io.require_file(path, "SYSU-MM01 id list").read_text(encoding="utf-8")
    tokens = [t for t in re.split(r"[,\s]+", text) if t]
    try:
        return [int(t) for t in tokens]
    except ValueError:
        raise ValueError(f"{path}: malformed SYSU-MM01 id list; expected comma-separated integers like "
                         f"'1,2,4', got {text[:60]!r}") from None


def read(root: str | Path) -> DatasetIndex:
    """Indexes a SYSU-MM01 copy by its ``exp/{train,val,test}_id.txt`` lists.

    Args:
        root: The ``SYSU-MM01`` folder (holding ``cam1``..``cam6`` and ``exp``).

    Returns:
        Unpaired records (one image each) in splits ``train``, ``val`` and ``test``;
        ``test`` holds every test image (IR queries come from cam3/cam6, the RGB
        gallery from the other cameras).

    Raises:
        FileNotFoundError: ``root``, a camera folder, ``exp/`` or an id file is missing.
        ValueError: An id file is malformed, two lists share ids, or a listed id has no image.
    """
    root = _io.require_dir(Path(root).expanduser().resolve(), "SYSU-MM01 root")
    for cam in sorted(RGB_CAMERAS + IR_CAMERAS):
        _io.require_dir(root / f"cam{cam}", f"SYSU-MM01 cam{cam} ({camera_modality(cam).value})")
    exp = _io.require_dir(root / "exp", "SYSU-MM01 exp (id lists)")
    ids = {name: read_ids(exp / fname) for name, fname in ID_FILES.items()}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        both = set(ids[a]) & set(ids[b])
        if both:
            raise ValueError(f"{exp}: {ID_FILES[a]} and {ID_FILES[b]} share ids {sorted(both)[:10]}")
    splits: dict[str, tuple[Record, ...]] = {}
    for name, pids in ids.items():
        records = []
        for pid in sorted(pids):
            found = []
            for cam in sorted(RGB_CAMERAS + IR_CAMERAS):
                folder = root / f"cam{cam}" / f"{pid:04d}"
                if not folder.is_dir():
                    continue
                for f in sorted(folder.iterdir()):
                    m = _IMAGE.match(f.name)
                    if m and f.is_file():
                        found.append(Record({camera_modality(cam): f}, pid, cam,
                                            "indoor" if cam in INDOOR_CAMERAS else "outdoor", int(m[1])))
            if not found:
                raise ValueError(f"{root}: id {pid} of exp/{ID_FILES[name]} has no images in any "
                                 f"cam<N>/{pid:04d}/ folder")
            records.extend(found)
        splits[name] = tuple(records)
    return DatasetIndex(NAME, root, MODALITIES, splits,
                        meta={"rgb_cameras": RGB_CAMERAS, "ir_cameras": IR_CAMERAS})
