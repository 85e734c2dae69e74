"""Saving and loading a gallery: one ``.npz`` file, written atomically, read without pickle.

File layout (format ``reid-stream-gallery-v2``): the arrays of
:func:`gallery_state` (identity arrays; the visit table: per visit its owner,
times, body measures and light, and per feature ``f<i>`` its prototype block)
plus ``meta``, the UTF-8 bytes of a JSON object holding the format name, the
config, the calibration, the identity names per slot (``null`` for a free
slot), the id counter, the feature names and ``bundle``, the identity of the model bundle whose
embeddings fill the gallery (:func:`bundle_identity`; absent in files of older versions). A save writes a temporary file in the target's folder,
fsyncs it and renames it over the target, so a crash leaves either the previous
complete file or the new one, never a partial file.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from reidstream.pipeline.atomic import atomic_file
from reidstream.pipeline.config import config_from_mapping
from reidstream.pipeline.gallery.calibration import Calibration
from reidstream.pipeline.gallery.config import GalleryConfig
from reidstream.pipeline.gallery.evidence import VisitTable
from reidstream.pipeline.gallery.store import Gallery

FORMAT = "reid-stream-gallery-v2"


def bundle_identity(bundle: Any) -> dict[str, Any]:
    """The record of which bundle made a gallery's vectors: its path, each embedding model's checksum, a digest.

    A model's checksum is its ``checkpoint_sha256`` in the manifest (the trained weights all its exported
    files come from); a model id without a ``models`` entry gets a hash over its embedder files' ``sha256``.

    Args:
        bundle: A loaded :class:`~reidstream.pipeline.bundle.Bundle`.

    Returns:
        ``{"path": str, "models": {model id: sha256}, "digest": str}`` (``digest``: a SHA-256 over the
        sorted models and their checksums, the same for the same models wherever the bundle lies).
    """
    models = {m.id: m.checkpoint_sha256 for m in bundle.manifest.models}
    files: dict[str, list[str]] = {}
    for f in bundle.embedders():
        if f.model not in models:
            files.setdefault(f.model, []).append(f.sha256)
    models.update({k: hashlib.sha256("".join(sorted(v)).encode()).hexdigest() for k, v in files.items()})
    models = dict(sorted(models.items()))
    digest = hashlib.sha256(json.dumps(models, sort_keys=True).encode()).hexdigest()
    return {"path": str(bundle.root), "models": models, "digest": digest}


def _describe_bundle(record: dict) -> str:
    models = ", ".join(f"{k} {str(v)[:12]}" for k, v in sorted(dict(record.get("models") or {}).items()))
    return f"bundle {record.get('path', '?')} (models: {models or 'none'})"


def check_gallery_bundle(saved: dict | None, current: dict, path: str | Path) -> None:
    """Refuses a saved gallery whose vectors another bundle made (different models or checksums).

    Args:
        saved: The ``bundle`` record of the saved gallery (None: an older file without one: not checked).
        current: :func:`bundle_identity` of this run's bundle.
        path: The gallery file, named in the error.

    Raises:
        ValueError: naming the file, both bundles (paths, model ids and checksums) and the way out
            (``--overwrite`` to start a fresh gallery, or the bundle it was made with).
    """
    if saved is None or dict(saved.get("models") or {}) == dict(current["models"]):
        return
    raise ValueError(f"{path}: this gallery was made with {_describe_bundle(saved)}, but this run uses "
                     f"{_describe_bundle(current)}; their embeddings are not comparable. Pass --overwrite "
                     f"(output.existing=overwrite) to start a fresh gallery, or run with --bundle "
                     f"{saved.get('path', '?')} to keep it")


def gallery_state(g: Gallery) -> tuple[dict, dict[str, np.ndarray]]:
    """Metadata (JSON) and arrays that :func:`restore_gallery` turns back into ``g`` (live tracks left out)."""
    n = g.slots
    vmeta, arrays = g.visits.state()
    meta = {"config": g.config.to_dict(), "calibration": g.calibration.to_dict(), "names": list(g._names),
            "next_id": g.next_id, "serial": g._serial, "visits": vmeta, "bundle": g.bundle,
            "journal_seq": g.journal_seq}
    arrays.update({"last_seen": g.last_seen[:n].copy(), "pinned": g.pinned[:n].copy(), "created": g.created[:n].copy(),
                   "visit_row": np.flatnonzero(g.visits.used).astype(np.int64)})
    return meta, arrays


def restore_gallery(meta: dict, arrays: dict[str, np.ndarray], calibration: Calibration | None = None) -> Gallery:
    """Rebuilds a gallery from :func:`gallery_state` output (``calibration`` replaces the saved one when given).

    The first :meth:`Gallery.match` after it rebases the stored times if the new source's clock starts earlier.

    Raises:
        ValueError: naming the key or array that is missing or has the wrong shape/dtype.
    """
    cal = calibration if calibration is not None else Calibration.from_dict(meta["calibration"], "saved calibration")
    g = Gallery(cal, config_from_mapping(GalleryConfig, meta["config"], "saved gallery config"))
    names = [None if name is None else str(name) for name in meta["names"]]
    n = len(names)
    for key, dtype in (("last_seen", np.float64), ("pinned", np.bool_), ("created", np.int64)):
        a = arrays.get(key)
        if a is None or a.shape != (n,) or a.dtype != dtype:
            got = "nothing" if a is None else f"shape {a.shape} dtype {a.dtype}"
            raise ValueError(f"array '{key}': expected shape ({n},) dtype {np.dtype(dtype).name}, got {got}")
    g._names = names
    g._slot = {name: s for s, name in enumerate(names) if name is not None}
    if len(g._slot) != sum(name is not None for name in names):
        raise ValueError("metadata 'names': expected unique identity names")
    g._free = [s for s, name in enumerate(names) if name is None]
    heapq.heapify(g._free)
    g.last_seen, g.pinned, g.created = (np.array(arrays[k]) for k in ("last_seen", "pinned", "created"))
    g.next_id, g._serial = int(meta["next_id"]), int(meta["serial"])
    g.visits = _at_rows(VisitTable.restore(meta["visits"], arrays), arrays.get("visit_row"))
    g.journal_seq = int(meta.get("journal_seq", 0))
    bundle = meta.get("bundle")
    if bundle is not None and not (isinstance(bundle, dict) and isinstance(bundle.get("models"), dict)):
        raise ValueError(f"metadata 'bundle': expected an object with 'path', 'models' and 'digest', got {bundle!r}")
    g.bundle = bundle
    if g.visits.used.any() and int(g.visits.owner[g.visits.used].max()) >= n:
        raise ValueError("array 'visit_owner': refers to an identity slot that does not exist")
    g.settle()
    return g


def _at_rows(table: VisitTable, rows: np.ndarray | None) -> VisitTable:
    """The restored (compact) visit table with its visits back in the rows they had when saved (``visit_row``;
    None: files of older versions, compact), so that journal records naming rows apply to it."""
    n = len(table)
    if rows is None or np.array_equal(rows, np.arange(n)):
        return table
    if rows.shape != (n,) or rows.dtype.kind not in "iu" or len(np.unique(rows)) != n or (n and rows.min() < 0):
        raise ValueError(f"array 'visit_row': expected {n} distinct rows >= 0, got shape {rows.shape} dtype {rows.dtype}")
    out = VisitTable({key: v.shape[1] for key, v in table.vectors.items()})
    out._grow(int(rows.max()) + 1)
    for name in VisitTable.SCALARS:
        getattr(out, name)[rows] = getattr(table, name)[:n]
    for key in table.vectors:
        out.vectors[key][rows], out.has[key][rows] = table.vectors[key][:n], table.has[key][:n]
    out._free = [r for r in out._free if not out.used[r]]
    return out


def save_gallery(gallery: Gallery, path: str | Path) -> Path:
    """Writes ``gallery`` to ``path`` atomically (temp file in the same folder, fsync, ``os.replace``).

    Returns:
        The path written.
    """
    path = Path(path)
    meta, arrays = gallery_state(gallery)
    meta = {"format": FORMAT, **meta}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)
    with atomic_file(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def load_gallery(path: str | Path, calibration: Calibration | None = None,
                 bundle: dict[str, Any] | None = None) -> Gallery:
    """Reads a gallery written by :func:`save_gallery` (``allow_pickle=False``).

    Args:
        path: The ``.npz`` file.
        calibration: The bundle's calibration; replaces the one saved with the gallery when given.
        bundle: :func:`bundle_identity` of the bundle that will add to the gallery: a gallery saved with
            another bundle is refused (:func:`check_gallery_bundle`); None: not checked. The loaded
            gallery's ``bundle`` is the saved record (None in files of older versions).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: naming the file, when it is not a gallery of this format, is corrupt, or was made with
            another bundle than ``bundle``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: gallery file not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a readable gallery file ({FORMAT} .npz expected): {e}") from None
    if "meta" not in arrays:
        raise ValueError(f"{path}: not a gallery file: no 'meta' entry ({FORMAT} expected)")
    try:
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: gallery metadata is not valid JSON: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{path}: expected gallery format '{FORMAT}', got {got!r}")
    try:
        g = restore_gallery(meta, arrays, calibration)
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: gallery metadata lacks or mistypes key {e}") from None
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    if bundle is not None:
        check_gallery_bundle(g.bundle, bundle, path)
    return g
