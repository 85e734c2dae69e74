"""File helpers shared by the layout writers and readers (OpenCV, no torch)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Iterable, Mapping

import cv2
import numpy as np

from reidstream.pipeline.types import Modality

from .samples import CropCapture, Record

JPEG_QUALITY = 95
"""Quality of the JPEG files we write (the real datasets' quality is unknown)."""

SPLITS_FILE = "splits.json"
SPLITS_FORMAT = "reid-stream-splits-v1"


def prepare_root(root: str | Path, overwrite: bool) -> Path:
    """Creates ``root`` or empties it (``overwrite=True``); refuses a non-empty one otherwise."""
    root = Path(root).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"{root}: expected a directory to write the dataset into, found a file")
    if root.is_dir() and any(root.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{root}: directory is not empty; pass overwrite=True to replace its contents")
        if root == Path(root.anchor) or root == Path.home().resolve():
            raise ValueError(f"{root}: refusing to clear a filesystem root or home directory")
        for child in root.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    root.mkdir(parents=True, exist_ok=True)
    return root


def require_dir(path: Path, what: str) -> Path:
    """``FileNotFoundError`` naming ``path`` and what it should hold, unless it is a folder."""
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: expected the {what} folder, not found")
    return path


def require_file(path: Path, what: str) -> Path:
    """``FileNotFoundError`` naming ``path`` and what it should hold, unless it is a file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: expected the {what} file, not found")
    return path


def _imwrite(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if path.suffix.lower() in (".jpg", ".jpeg") else []
    if not cv2.imwrite(str(path), image, params):
        raise OSError(f"{path}: OpenCV could not write the image")


def write_rgb(path: Path, rgb: np.ndarray) -> None:
    """Writes an RGB-order colour crop (the file stores BGR, as every image codec expects)."""
    _imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def write_gray(path: Path, gray: np.ndarray, channels: int = 1) -> None:
    """Writes a single-channel crop, replicated to 3 channels when ``channels == 3``."""
    _imwrite(path, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR) if channels == 3 else gray)


def write_depth(path: Path, depth: np.ndarray) -> None:
    """Writes uint16 millimetres losslessly (16-bit PNG, or 16-bit big-endian PGM for ``.pgm``)."""
    if depth.dtype != np.uint16:
        raise ValueError(f"{path}: depth must be uint16 millimetres, got {depth.dtype}")
    _imwrite(path, depth)


def load_image(record: Record, modality: Modality | str) -> np.ndarray:
    """Decodes one file of a record into the project's conventions.

    Returns ``H x W x 3`` uint8 RGB for colour, ``H x W`` uint16 millimetres for
    depth, and ``H x W`` uint8 for IR and thermal (3-channel grey files, as
    SYSU-MM01 and RegDB ship them, are reduced to one channel).
    """
    m = Modality(modality)
    path = record.path(m)
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"{path}: could not decode the {m.value} image")
    if m is Modality.RGB:
        if img.ndim == 2:
            return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
    if m is Modality.DEPTH:
        if img.dtype != np.uint16 or img.ndim != 2:
            raise ValueError(f"{path}: expected a 16-bit single-channel depth image, got {img.dtype} "
                             f"with shape {img.shape}")
        return img
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2GRAY)
    if img.dtype != np.uint8:
        raise ValueError(f"{path}: expected an 8-bit {m.value} image, got {img.dtype}")
    return img


def check_identities(captures: Iterable[CropCapture], sets: Mapping[str, frozenset[int]], layout: str) -> list[CropCapture]:
    """Checks every capture's identity is in exactly one split and every listed id has captures."""
    caps = list(captures)
    for c in caps:
        if not isinstance(c, CropCapture):
            raise TypeError(f"{layout}.write: expected CropCapture values, got {type(c).__name__}")
    listed = frozenset().union(*sets.values())
    present = {c.identity for c in caps}
    missing = sorted(present - listed)
    if missing:
        raise ValueError(f"{layout}.write: identities {missing[:10]} have captures but are in none of "
                         f"train_ids/val_ids/test_ids")
    for name, ids in sets.items():
        empty = sorted(ids - present)
        if empty:
            raise ValueError(f"{layout}.write: identities {empty[:10]} of {name}_ids have no captures")
    return caps


def write_splits(root: Path, layout: str, sets: Mapping[str, frozenset[int]], note: str) -> Path:
    """Writes our own ``splits.json`` (for datasets that ship no official split)."""
    doc = {"format": SPLITS_FORMAT, "dataset": layout, "note": note}
    doc.update({k: sorted(v) for k, v in sets.items()})
    path = root / SPLITS_FILE
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return path


def read_splits(root: Path, layout: str, split: Mapping[str, Iterable[int]] | None) -> dict[str, frozenset[int]] | None:
    """The explicit ``split``, else ``root/splits.json``, else None (no split known)."""
    if split is not None:
        out = {}
        for name, ids in dict(split).items():
            try:
                out[str(name)] = frozenset(int(i) for i in ids)
            except (TypeError, ValueError):
                raise ValueError(f"{layout}.read: split '{name}' must be a list of integer ids") from None
        return out
    path = root / SPLITS_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != SPLITS_FORMAT:
            raise ValueError(f"format is {doc.get('format')!r}, expected {SPLITS_FORMAT!r}")
        return {k: frozenset(int(i) for i in doc[k]) for k in ("train", "val", "test") if k in doc}
    except (ValueError, TypeError, AttributeError, KeyError) as e:
        raise ValueError(f"{path}: malformed {SPLITS_FILE} ({e}); expected "
                         f'{{"format": "{SPLITS_FORMAT}", "train": [ids], "val": [ids], "test": [ids]}}') from None


def assign_splits(records: list[Record], sets: dict[str, frozenset[int]] | None, where: Path,
                  layout: str) -> dict[str, tuple[Record, ...]]:
    """Groups records by split (``all`` without a split); ids of a split without records raise."""
    if sets is None:
        return {"all": tuple(records)}
    present = {r.pid for r in records}
    out = {}
    for name, ids in sets.items():
        missing = sorted(ids - present)
        if missing:
            raise ValueError(f"{where}: {layout} split '{name}' lists identities {missing[:10]} "
                             f"that have no paired colour+depth frames")
        out[name] = tuple(r for r in records if r.pid in ids)
    return out
