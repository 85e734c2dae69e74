"""Atomic file writes: a temporary file in the destination's folder, flushed, synced, then renamed over it.

A crash or kill at any moment leaves either the previous file or the new one, never
a half-written file; the temporary file is removed when writing fails.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None,
                fsync: bool = True) -> Iterator[IO]:
    """Opens a temporary file that replaces ``path`` when the ``with`` block ends without an exception.

    Args:
        path: The destination (parent folders are created).
        mode: ``"wb"`` or ``"w"``.
        encoding: Text encoding for ``"w"`` (default UTF-8).
        fsync: Sync the file (and, where the OS allows, its folder) to disk before and after the rename.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_file: expected mode 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": encoding or "utf-8"} if mode == "w" else {})) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if fsync:
        _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes | memoryview, *, fsync: bool = True) -> Path:
    """Writes ``data`` to ``path`` atomically; returns the path."""
    with atomic_file(path, "wb", fsync=fsync) as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, *, fsync: bool = True) -> Path:
    """Writes UTF-8 ``text`` to ``path`` atomically; returns the path."""
    with atomic_file(path, "w", fsync=fsync) as f:
        f.write(text)
    return Path(path)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not possible on every OS / file system
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
