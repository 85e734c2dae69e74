"""Neutral input and output types of the dataset layouts.

Writers take :class:`CropCapture` values (one person, one instant, any subset
of colour, depth, IR and thermal crops); readers return a :class:`DatasetIndex`
of :class:`Record` values (paths on disk plus labels), without decoding images.

Conventions follow :mod:`reidstream.pipeline.types`: colour is ``H x W x 3``
uint8 in RGB order, depth is ``H x W`` uint16 millimetres (0 = no depth), IR and
thermal are ``H x W`` uint8 (display-scaled). Values raise ``ValueError`` naming
the field when they are malformed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from reidstream.pipeline.types import Modality

_IMAGE_SPEC: dict[str, tuple[np.dtype, int | None]] = {
    "rgb": (np.dtype(np.uint8), 3),
    "depth": (np.dtype(np.uint16), None),
    "ir": (np.dtype(np.uint8), None),
    "thermal": (np.dtype(np.uint8), None),
}


def _fail(owner: str, name: str, expected: str, got: object) -> ValueError:
    if isinstance(got, np.ndarray):
        got = f"array of shape {got.shape} and dtype {got.dtype}"
    return ValueError(f"{owner}.{name}: expected {expected}, got {str(got)[:120]}")


def _is_index(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0


@dataclass(frozen=True, eq=False)
class CropCapture:
    """One capture of one person: crops taken at the same instant are paired.

    Attributes:
        identity: Person id (>= 0), stable across cameras, sequences and modalities.
        camera: Camera index (>= 0) in the source rig; layouts map it to their cameras.
        sequence: Name of the recording session (e.g. ``"Training"``, ``"Walking"``,
            ``"front"``); layouts use it where the real dataset has sessions.
        frame: Frame number (>= 0) within the sequence.
        rgb: ``H x W x 3`` uint8 colour crop, RGB order.
        depth: ``H x W`` uint16 depth crop in millimetres.
        ir: ``H x W`` uint8 near-infrared crop.
        thermal: ``H x W`` uint8 thermal crop.
        mask: Optional ``H x W`` uint8 person mask (0 = background) of the depth crop
            (or of the only crop); BIWI stores it as its ``userMap``.
    """

    identity: int
    camera: int = 0
    sequence: str = ""
    frame: int = 0
    rgb: np.ndarray | None = None
    depth: np.ndarray | None = None
    ir: np.ndarray | None = None
    thermal: np.ndarray | None = None
    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("identity", "camera", "frame"):
            if not _is_index(getattr(self, name)):
                raise _fail("CropCapture", name, "a non-negative integer", getattr(self, name))
            object.__setattr__(self, name, int(getattr(self, name)))
        if not isinstance(self.sequence, str):
            raise _fail("CropCapture", "sequence", "a string", self.sequence)
        if not self.modalities:
            raise ValueError("CropCapture: expected at least one of rgb, depth, ir, thermal; got none")
        for name, (dtype, channels) in _IMAGE_SPEC.items():
            a = getattr(self, name)
            if a is None:
                continue
            shape = "H x W x 3" if channels else "H x W"
            ok = isinstance(a, np.ndarray) and a.dtype == dtype and a.size > 0 and (
                a.ndim == 3 and a.shape[2] == channels if channels else a.ndim == 2)
            if not ok:
                raise _fail("CropCapture", name, f"a non-empty {shape} {dtype.name} array", a)
        if self.mask is not None:
            ref = self.depth if self.depth is not None else getattr(self, self.modalities[0].value)
            m = self.mask
            if not (isinstance(m, np.ndarray) and m.dtype in (np.uint8, np.bool_) and m.shape == ref.shape[:2]):
                raise _fail("CropCapture", "mask", f"a uint8 or bool array of shape {ref.shape[:2]}", m)

    @property
    def modalities(self) -> tuple[Modality, ...]:
        """The modalities this capture carries, in canonical order."""
        return tuple(m for m in Modality if getattr(self, m.value) is not None)

    def image(self, modality: Modality | str) -> np.ndarray:
        """The crop of one modality; ``KeyError`` if the capture lacks it."""
        m = Modality(modality)
        a = getattr(self, m.value)
        if a is None:
            raise KeyError(f"capture of identity {self.identity} (camera {self.camera}, frame "
                           f"{self.frame}) has no {m.value} crop")
        return a


@dataclass(frozen=True)
class Record:
    """One indexed sample: the file(s) of one capture and its labels.

    Attributes:
        paths: Modality -> image file. Paired datasets (BIWI, RobotPKU) hold colour
            and depth of the same capture; unpaired ones (SYSU-MM01, RegDB) hold one.
        pid: Person id as the dataset names it (folder name / id file).
        camid: Camera (SYSU ``camN`` -> N), session (BIWI, RobotPKU) or modality
            camera (RegDB: 0 visible, 1 thermal) id; see each layout.
        sequence: Session/view name (``"Training"``, ``"Still"``, ``"indoor"``, ``"front"``...).
        frame: Frame or image number parsed from the file name.
        label: Training label given by the dataset's own list file (RegDB ``idx``), else None.
        aux: Auxiliary per-frame files (e.g. BIWI ``userMap``/``skel``/``groundCoeff``).
    """

    paths: Mapping[Modality, Path]
    pid: int
    camid: int
    sequence: str = ""
    frame: int = 0
    label: int | None = None
    aux: Mapping[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        paths = {Modality(k): Path(v) for k, v in dict(self.paths).items()}
        if not paths:
            raise _fail("Record", "paths", "at least one modality -> path", paths)
        object.__setattr__(self, "paths", paths)
        object.__setattr__(self, "aux", {str(k): Path(v) for k, v in dict(self.aux).items()})
        for name in ("pid", "camid", "frame"):
            if not isinstance(getattr(self, name), (int, np.integer)) or isinstance(getattr(self, name), bool):
                raise _fail("Record", name, "an integer", getattr(self, name))
            object.__setattr__(self, name, int(getattr(self, name)))
        if self.label is not None and not _is_index(self.label):
            raise _fail("Record", "label", "None or a non-negative integer", self.label)

    def __hash__(self) -> int:
        return hash((tuple(sorted((m.value, str(p)) for m, p in self.paths.items())), self.pid, self.camid))

    @property
    def modalities(self) -> tuple[Modality, ...]:
        """Modalities of this record, in canonical order."""
        return tuple(m for m in Modality if m in self.paths)

    @property
    def paired(self) -> bool:
        """True when the record holds more than one modality of the same capture."""
        return len(self.paths) > 1

    def path(self, modality: Modality | str) -> Path:
        """File of one modality; ``KeyError`` naming the record if absent."""
        m = Modality(modality)
        if m not in self.paths:
            raise KeyError(f"record of pid {self.pid} (camid {self.camid}, frame {self.frame}) has no "
                           f"{m.value} file; it has {[x.value for x in self.modalities]}")
        return self.paths[m]


@dataclass(frozen=True, eq=False)
class DatasetIndex:
    """Records of one dataset copy, per split.

    Attributes:
        name: Layout name (``"biwi"``, ``"robotpku"``, ``"sysu"``, ``"regdb"``).
        root: Root folder of the copy.
        modalities: Modalities the layout holds.
        splits: Split name -> records (``train``/``val``/``test``, or ``all`` for
            an RGB-D copy read without any split).
        dropped: Files found but not indexed (e.g. a colour frame without depth,
            or an empty file), so a partial copy is visible rather than silent.
        meta: Layout-specific facts (e.g. ``{"trial": 3}`` for RegDB).
    """

    name: str
    root: Path
    modalities: tuple[Modality, ...]
    splits: Mapping[str, tuple[Record, ...]]
    dropped: tuple[Path, ...] = ()
    meta: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        mods = tuple(Modality(m) for m in self.modalities)
        object.__setattr__(self, "modalities", mods)
        splits: dict[str, tuple[Record, ...]] = {}
        for name, records in dict(self.splits).items():
            if not isinstance(name, str) or not name:
                raise _fail("DatasetIndex", "splits", "non-empty split names", name)
            records = tuple(records)
            for r in records:
                if not isinstance(r, Record):
                    raise _fail("DatasetIndex", f"splits[{name}]", "Record values", type(r).__name__)
                extra = set(r.modalities) - set(mods)
                if extra:
                    raise _fail("DatasetIndex", f"splits[{name}]", f"records of {[m.value for m in mods]}",
                                f"a record with {sorted(m.value for m in extra)}")
            splits[name] = records
        object.__setattr__(self, "splits", splits)
        object.__setattr__(self, "dropped", tuple(Path(p) for p in self.dropped))
        object.__setattr__(self, "meta", dict(self.meta))

    @property
    def split_names(self) -> tuple[str, ...]:
        """Names of the splits, in insertion order."""
        return tuple(self.splits)

    def records(self, split: str, modality: Modality | str | None = None) -> tuple[Record, ...]:
        """Records of one split, optionally only those holding ``modality``."""
        if split not in self.splits:
            raise KeyError(f"{self.name} at {self.root}: no split '{split}'; splits are {list(self.splits)}")
        recs = self.splits[split]
        if modality is None:
            return recs
        m = Modality(modality)
        return tuple(r for r in recs if m in r.paths)

    def identities(self, split: str) -> frozenset[int]:
        """Person ids present in one split."""
        return frozenset(r.pid for r in self.records(split))

    def count(self, split: str, modality: Modality | str | None = None) -> int:
        """Number of records (of one modality, if given) in a split."""
        return len(self.records(split, modality))

    def counts(self) -> dict[str, dict[str, int]]:
        """``{split: {"records": n, "identities": k, <modality>: images}}``."""
        out: dict[str, dict[str, int]] = {}
        for s in self.splits:
            c = {"records": self.count(s), "identities": len(self.identities(s))}
            c.update({m.value: self.count(s, m) for m in self.modalities})
            out[s] = c
        return out

    def __len__(self) -> int:
        return sum(len(r) for r in self.splits.values())


def id_sets(train_ids: Iterable[int], test_ids: Iterable[int], val_ids: Iterable[int] = ()) -> dict[str, frozenset[int]]:
    """Validates identity sets: integers >= 0, pairwise disjoint, train and test non-empty.

    Returns:
        ``{"train": ..., "val": ..., "test": ...}`` (``val`` may be empty).
    """
    sets: dict[str, frozenset[int]] = {}
    for name, ids in (("train", train_ids), ("val", val_ids), ("test", test_ids)):
        ids = list(ids)
        bad = [i for i in ids if not _is_index(i)]
        if bad:
            raise ValueError(f"{name}_ids: expected non-negative integer identities, got {bad[:5]}")
        sets[name] = frozenset(int(i) for i in ids)
    for name in ("train", "test"):
        if not sets[name]:
            raise ValueError(f"{name}_ids: expected at least one identity, got none")
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        both = sets[a] & sets[b]
        if both:
            raise ValueError(f"{a}_ids and {b}_ids must be disjoint; both contain {sorted(both)[:10]}")
    return sets
