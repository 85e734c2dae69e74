"""Saving and loading a gallery: one ``.npz`` file, written atomically, read without pickle.

File layout (format ``reid-stream-gallery-v2``): the arrays of
:meth:`Gallery.state` (identity arrays; the visit table: per visit its owner,
times, body measures and light, and per feature ``f<i>`` its prototype block)
plus ``meta``, the UTF-8 bytes of a JSON object holding the format name, the
config, the calibration, the identity names per slot (``null`` for a free
slot), the id counter and the feature names. A save writes a temporary file in the target's folder,
fsyncs it and renames it over the target, so a crash leaves either the previous
complete file or the new one, never a partial file.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from reidstream.pipeline.atomic import atomic_file
from reidstream.pipeline.gallery.calibration import Calibration
from reidstream.pipeline.gallery.store import Gallery

FORMAT = "reid-stream-gallery-v2"


def save_gallery(gallery: Gallery, path: str | Path) -> Path:
    """Writes ``gallery`` to ``path`` atomically (temp file in the same folder, fsync, ``os.replace``).

    Returns:
        The path written.
    """
    path = Path(path)
    meta, arrays = gallery.state()
    meta = {"format": FORMAT, **meta}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)
    with atomic_file(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def load_gallery(path: str | Path, calibration: Calibration | None = None) -> Gallery:
    """Reads a gallery written by :func:`save_gallery` (``allow_pickle=False``).

    ``calibration`` (the bundle's) replaces the one saved with the gallery when given.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: naming the file, when it is not a gallery of this format or is corrupt.
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
        return Gallery.restore(meta, arrays, calibration)
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: gallery metadata lacks or mistypes key {e}") from None
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
