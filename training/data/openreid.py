"""open-reid layout of Hafner et al.'s cross-modal distillation code (CVIU 2022): colour + depth copies.

On disk (two sibling folders, one per modality)::

    <root>/                       colour copy, e.g. datasets/biwi or datasets/pku
      meta.json                   {"name", "shot": "multiple", "num_cameras", "identities"}
      splits.json                 [{"trainval", "train", "val", "query", "gallery"}, ...]
      images/<pid:08d>_<camid:02d>_<idx:04d>.jpg
    <root>_depth/                 depth copy, e.g. datasets/biwi_depth or datasets/pku_depth
      meta.json
      splits.json                 (optional: the public RobotPKU copy has it only here)
      images/<pid:08d>_<camid:02d>_<idx:04d>.png

``identities[pid][camid]`` lists the file names of one person seen by one camera
(open-reid's pid is the index into that list); the name repeats pid and camid.
A colour and a depth file with the same stem (name without extension) are one
capture. Verified from the public code and its shipped ``meta.json`` /
``splits.json`` files: the structure above, the ``_depth`` sibling, file names
identical between the copies, splits listing pids with ``query == gallery`` =
the test ids. Their depth images are 8-bit JPEG renderings; ours are lossless
16-bit millimetre PNGs. :func:`read` indexes both, but ``load_image`` decodes only
16-bit depth: an 8-bit depth file raises ``ValueError`` naming it, because its
values are not metric (convert such a copy to 16-bit millimetres first).

``camid`` (written): the index of the capture's ``(camera, sequence)`` pair among
the sorted distinct pairs of all captures, so BIWI-like sessions of one Kinect
become separate "cameras"; the pairs are kept in ``meta.json`` under the extra
key ``"cameras"`` and give records their ``sequence`` when read back. ``idx``
numbers a person's images per camid in frame order; records carry it as ``frame``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Iterable

from reidstream.pipeline.types import Modality

from . import _io
from .samples import CropCapture, DatasetIndex, Record, id_sets

NAME = "openreid"
MODALITIES = (Modality.RGB, Modality.DEPTH)
DEPTH_SUFFIX = "_depth"
"""The depth copy of ``<root>`` is ``<root>_depth``."""
META_FILE, SPLITS_FILE, IMAGES_DIR = "meta.json", "splits.json", "images"
COLOR_EXT, DEPTH_EXT = ".jpg", ".png"
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".tif", ".tiff")
_STEM = re.compile(r"^(?P<pid>\d+)_(?P<camid>\d+)_(?P<idx>\d+)$")
_KEYS = ("trainval", "train", "val", "query", "gallery")


def file_name(pid: int, camid: int, idx: int, ext: str = COLOR_EXT) -> str:
    """``{pid:08d}_{camid:02d}_{idx:04d}{ext}``, open-reid's image name."""
    return f"{pid:08d}_{camid:02d}_{idx:04d}{ext}"


def depth_root_of(root: str | Path) -> Path:
    """The sibling depth folder of a colour copy: ``<root>_depth``."""
    root = Path(root).expanduser().resolve()
    return root.with_name(root.name + DEPTH_SUFFIX)


def write(root: str | Path, captures: Iterable[CropCapture], *, train_ids: Iterable[int],
          test_ids: Iterable[int], val_ids: Iterable[int] = (), overwrite: bool = False) -> DatasetIndex:
    """Writes captures as an open-reid colour copy at ``root`` and its depth copy at ``root_depth``.

    Each capture needs ``rgb`` and ``depth``. One ``splits.json`` entry is written
    (into both folders): ``trainval`` = train + val, ``query`` = ``gallery`` = test.

    Args:
        root: Colour folder; it and ``<root>_depth`` are created and must be empty
            unless ``overwrite``.
        captures: Crops to write; the identity is the open-reid pid (< 10**8).
        train_ids: Identities of the training split.
        test_ids: Identities of the test split (disjoint from the others).
        val_ids: Identities of the validation split (optional).
        overwrite: Delete the contents of non-empty folders first.

    Returns:
        The index of what was written (as :func:`read` returns it).
    """
    sets = id_sets(train_ids, test_ids, val_ids)
    caps = _io.check_identities(captures, sets, NAME)
    for c in caps:
        if c.rgb is None or c.depth is None:
            raise ValueError(f"openreid.write: capture of identity {c.identity} frame {c.frame} needs both rgb "
                             f"and depth (the colour and depth copies hold the same captures)")
        if c.identity >= 10**8:
            raise ValueError(f"openreid.write: identity {c.identity} exceeds open-reid's 8 digits")
    cams = sorted({(c.camera, c.sequence) for c in caps})
    if len(cams) > 100:
        raise ValueError(f"openreid.write: {len(cams)} (camera, sequence) pairs exceed open-reid's 2-digit camid")
    camid_of = {cam: i for i, cam in enumerate(cams)}
    groups: dict[tuple[int, int], list[CropCapture]] = defaultdict(list)
    for c in caps:
        groups[(c.identity, camid_of[(c.camera, c.sequence)])].append(c)
    for (pid, camid), group in groups.items():
        group.sort(key=lambda c: c.frame)
        frames = [c.frame for c in group]
        if len(set(frames)) != len(frames):
            raise ValueError(f"openreid.write: identity {pid}, camera {cams[camid][0]}, sequence "
                             f"{cams[camid][1]!r}: a frame is given twice")
        if len(group) > 10_000:
            raise ValueError(f"openreid.write: identity {pid} has {len(group)} images for camid {camid}; "
                             f"open-reid's 4-digit index allows 10000")
    for folder in (Path(root).expanduser().resolve(), depth_root_of(root)):  # refuse before touching either
        if not overwrite and folder.is_dir() and any(folder.iterdir()):
            raise FileExistsError(f"{folder}: directory is not empty; pass overwrite=True to replace its contents")
    color, depth = _io.prepare_root(root, overwrite), _io.prepare_root(depth_root_of(root), overwrite)
    n_ids = max(c.identity for c in caps) + 1
    split = {"trainval": sorted(sets["train"] | sets["val"]), "train": sorted(sets["train"]),
             "val": sorted(sets["val"]), "query": sorted(sets["test"]), "gallery": sorted(sets["test"])}
    for folder, modality, ext in ((color, "rgb", COLOR_EXT), (depth, "depth", DEPTH_EXT)):
        identities = [[[] for _ in cams] for _ in range(n_ids)]
        for (pid, camid), group in sorted(groups.items()):
            for idx, c in enumerate(group):
                name = file_name(pid, camid, idx, ext)
                identities[pid][camid].append(name)
                writer = _io.write_rgb if modality == "rgb" else _io.write_depth
                writer(folder / IMAGES_DIR / name, c.image(modality))
        meta = {"name": folder.name, "shot": "multiple", "num_cameras": len(cams), "identities": identities,
                "cameras": [{"camera": cam, "sequence": seq} for cam, seq in cams]}
        (folder / META_FILE).write_text(json.dumps(meta) + "\n", encoding="utf-8")
        (folder / SPLITS_FILE).write_text(json.dumps([split], indent=1) + "\n", encoding="utf-8")
    return read(color)


def _load_json(path: Path, what: str) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: malformed {what} ({e})") from None


def _meta_names(path: Path) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """Stem -> (pid, camid) of every file ``meta.json`` lists, and the cameras' sequence names."""
    meta = _load_json(path, META_FILE)
    expected = '{"identities": [[[file names of camera 0], ...] per pid]}'
    ids = meta.get("identities") if isinstance(meta, dict) else None
    if not isinstance(ids, list) or not all(isinstance(p, list) and all(isinstance(c, list) for c in p) for p in ids):
        raise ValueError(f"{path}: malformed {META_FILE}; expected {expected}")
    out: dict[str, tuple[int, int]] = {}
    for pid, per_cam in enumerate(ids):
        for camid, names in enumerate(per_cam):
            for name in names:
                m = _STEM.match(Path(name).stem) if isinstance(name, str) else None
                if m is None or int(m["pid"]) != pid or int(m["camid"]) != camid:
                    raise ValueError(f"{path}: file name {name!r} listed under identities[{pid}][{camid}]; "
                                     f"expected {file_name(pid, camid, 0)!r}-style <pid>_<camid>_<idx> names")
                out[Path(name).stem] = (pid, camid)
    cams = meta.get("cameras")
    seqs = [str(c.get("sequence", "")) if isinstance(c, dict) else "" for c in cams] if isinstance(cams, list) else []
    return out, seqs


def _read_split(path: Path, split_id: int) -> dict[str, frozenset[int]]:
    doc = _load_json(path, SPLITS_FILE)
    if not isinstance(doc, list) or not doc:
        raise ValueError(f"{path}: malformed {SPLITS_FILE}; expected a non-empty JSON list of "
                         f'{{"trainval", "train", "val", "query", "gallery"}} dicts of pids')
    if not 0 <= split_id < len(doc):
        raise ValueError(f"{path}: split_id {split_id} out of range; the file holds splits 0..{len(doc) - 1}")
    entry = doc[split_id]
    try:
        sets = {k: frozenset(int(i) for i in entry[k]) for k in _KEYS if k in entry}
        if "query" not in sets or "gallery" not in sets or not ({"train", "trainval"} & set(sets)):
            raise KeyError("query, gallery and train or trainval")
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise ValueError(f"{path}: malformed split {split_id} ({e}); expected lists of integer pids under "
                         f"{list(_KEYS)}") from None
    val = sets.get("val", frozenset())
    train = sets["train"] if "train" in sets else sets["trainval"] - val
    return {"train": train, "val": val, "test": sets["query"] | sets["gallery"]}


def read(root: str | Path, *, depth_root: str | Path | None = None, split_id: int = 0) -> DatasetIndex:
    """Indexes an open-reid colour copy and its depth copy, pairing files by name.

    Args:
        root: The colour folder (``datasets/biwi``); given the depth folder
            (``..._depth``) instead, its colour sibling is used.
        depth_root: The depth folder; default ``<root>_depth``.
        split_id: Entry of ``splits.json`` (colour folder's, else the depth folder's).

    Returns:
        Records pairing ``rgb`` + ``depth`` in splits ``train``, ``val``, ``test``
        (query + gallery ids); ``dropped`` holds files present in one copy only or
        not listed in ``meta.json``; ``meta["missing"]`` counts listed files absent
        from ``images/``. A folder without ``meta.json`` uses the other's.

    Raises:
        FileNotFoundError: A folder, its ``images/``, both ``meta.json`` or both
            ``splits.json`` are missing.
        ValueError: Malformed JSON, a name not matching its pid/camid, no pair
            found, or a split listing ids without pairs (naming the file).
    """
    root = Path(root).expanduser().resolve()
    if depth_root is None and root.name.endswith(DEPTH_SUFFIX) and not depth_root_of(root).is_dir():
        depth_root, root = root, root.with_name(root.name[: -len(DEPTH_SUFFIX)])
    depth = Path(depth_root).expanduser().resolve() if depth_root is not None else depth_root_of(root)
    folders = {Modality.RGB: root, Modality.DEPTH: depth}
    for m, folder in folders.items():
        _io.require_dir(folder, f"open-reid {'colour' if m is Modality.RGB else 'depth'} copy")
        _io.require_dir(folder / IMAGES_DIR, f"open-reid {m.value} {IMAGES_DIR}")
    metas = {m: f / META_FILE for m, f in folders.items() if (f / META_FILE).is_file()}
    if not metas:
        raise FileNotFoundError(f"{root / META_FILE}: expected the open-reid {META_FILE} file (or "
                                f"{depth / META_FILE}), neither found")
    parsed = {m: _meta_names(p) for m, p in metas.items()}
    found: dict[Modality, dict[str, Path]] = {}
    dropped: list[Path] = []
    missing: dict[str, int] = {}
    for m, folder in folders.items():
        listed, _ = parsed.get(m) or next(iter(parsed.values()))
        on_disk = {}
        for f in sorted((folder / IMAGES_DIR).iterdir()):
            if f.is_file() and f.suffix.lower() in IMAGE_EXTS and f.stem in listed and f.stat().st_size > 0:
                on_disk[f.stem] = f
            else:
                dropped.append(f)
        found[m] = on_disk
        missing[m.value] = len(listed.keys() - on_disk.keys())
    rgb, dep = found[Modality.RGB], found[Modality.DEPTH]
    dropped.extend(rgb[s] for s in sorted(rgb.keys() - dep.keys()))
    dropped.extend(dep[s] for s in sorted(dep.keys() - rgb.keys()))
    seqs = parsed.get(Modality.RGB, parsed.get(Modality.DEPTH))[1]
    records = []
    for stem in sorted(rgb.keys() & dep.keys()):
        m = _STEM.match(stem)
        pid, camid = int(m["pid"]), int(m["camid"])
        records.append(Record({Modality.RGB: rgb[stem], Modality.DEPTH: dep[stem]}, pid, camid,
                              seqs[camid] if camid < len(seqs) else "", int(m["idx"])))
    if not records:
        raise ValueError(f"{root}: no colour/depth pairs (the same <pid>_<camid>_<idx> name in {IMAGES_DIR}/ "
                         f"of both {root.name} and {depth.name})")
    split_path = next((f / SPLITS_FILE for f in (root, depth) if (f / SPLITS_FILE).is_file()), None)
    if split_path is None:
        raise FileNotFoundError(f"{root / SPLITS_FILE}: expected the open-reid {SPLITS_FILE} file (or "
                                f"{depth / SPLITS_FILE}), neither found")
    sets = _read_split(split_path, split_id)
    splits = _io.assign_splits(records, sets, split_path, NAME)
    return DatasetIndex(NAME, root, MODALITIES, splits, tuple(dropped),
                        {"depth_root": str(depth), "split_file": str(split_path), "split_id": split_id,
                         "missing": missing, "sequences": seqs,
                         "depth_formats": sorted({r.paths[Modality.DEPTH].suffix.lower() for r in records})})
