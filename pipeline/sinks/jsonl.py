"""The identity event log: one JSON line per :class:`~reidstream.pipeline.result.Event`."""

from __future__ import annotations

import errno
import json
import os
import warnings
from pathlib import Path
from typing import TextIO

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
"""``errno`` values of a full disk (or an exhausted quota)."""


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` is an :class:`OSError` of a full disk (``ENOSPC``, ``EDQUOT``)."""
    return isinstance(error, OSError) and error.errno in DISK_FULL


class LineFile:
    """A text file written in whole lines only: a failed write leaves the file at its last complete line.

    Each :meth:`write` is one or more complete lines, written straight to the file (no buffer) in the
    file's append mode; when the OS refuses part of it (a full disk), the file is truncated back to
    where the write began and the error, naming the file, is raised. A reader (or a resumed run that
    appends) therefore never sees a line cut off mid-way.

    Args:
        path: The file (created if missing).
        append: Keep what the file holds (else truncate it).
    """

    encoding = "utf-8"

    def __init__(self, path: str | os.PathLike, *, append: bool) -> None:
        self.path = Path(path)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND
                                       | (0 if append else os.O_TRUNC), 0o666)
        self._size = os.fstat(self._fd).st_size

    @property
    def closed(self) -> bool:
        return self._fd is None

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError(f"{self.path}: the file is closed")
        return self._fd

    def write(self, text: str) -> int:
        """Writes complete lines (``text`` ends with a newline); returns the characters written.

        Raises:
            ValueError: ``text`` does not end with a newline, or the file is closed.
            OSError: the OS refused the write (``errno`` kept; the file ends at its last complete line).
        """
        if not text:
            return 0
        if not text.endswith("\n"):
            raise ValueError(f"{self.path}: expected whole lines ending with a newline, got ...{text[-40:]!r}")
        fd, data = self.fileno(), text.encode(self.encoding)
        done = 0
        try:
            while done < len(data):
                done += os.write(fd, data[done:])
        except OSError as e:
            if done:
                os.ftruncate(fd, self._size)  # back to the last complete line
            raise OSError(e.errno, f"{e.strerror} (writing {self.path}; it ends at its last complete line)",
                          str(self.path)) from e
        self._size += len(data)
        return len(text)

    def flush(self) -> None:
        """Nothing to do: every write goes straight to the file."""

    def close(self) -> None:
        """Closes the file; idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _cut_partial_line(p: Path, owner: str) -> None:
    """Truncates ``p`` after its last newline (an earlier run cut off mid-line), with a warning."""
    with open(p, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 65536))
        tail = f.read()
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        keep = size - len(tail) + cut + 1 if cut >= 0 else (0 if size <= 65536 else None)
        if keep is None:
            raise ValueError(f"{owner}: {p}: its last line is incomplete and longer than 64 KiB; expected whole "
                             f"lines to append to")
        f.truncate(keep)
    warnings.warn(f"{owner}: {p}: its last line was incomplete (cut off mid-write, e.g. by a full disk); removed "
                  f"the {size - keep} bytes after the last complete line before appending", RuntimeWarning,
                  stacklevel=3)

from reidstream.pipeline.result import FrameResult
from reidstream.pipeline.sinks.fanout import SinkBase


def open_text_output(path: str | os.PathLike, owner: str, *, append: bool = False,
                     overwrite: bool = False) -> TextIO | LineFile:
    """Opens a text file that a sink writes line by line (a :class:`LineFile`), creating its parent directories.

    When appending to a file whose last line is incomplete (an earlier run was cut off mid-write), that
    partial line is removed first (with a warning), so the new lines do not join onto it.

    Args:
        path: The file.
        owner: Name used in error messages (the sink class).
        append: Add to an existing file.
        overwrite: Truncate an existing file.

    Raises:
        ValueError: both ``append`` and ``overwrite``.
        FileExistsError: the file exists and is not empty, and neither option is set.
        IsADirectoryError: ``path`` is a directory.
    """
    if append and overwrite:
        raise ValueError(f"{owner}: {path}: expected at most one of append=True and overwrite=True")
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"{owner}: {p}: is a directory; expected a file path")
    if p.exists() and p.stat().st_size > 0 and not (append or overwrite):
        raise FileExistsError(f"{owner}: {p}: exists and is not empty; pass append=True to add to it or "
                              f"overwrite=True to replace it")
    p.parent.mkdir(parents=True, exist_ok=True)
    if append and p.is_file() and p.stat().st_size > 0:
        _cut_partial_line(p, owner)
    return LineFile(p, append=append)


class EventLogSink(SinkBase):
    """Appends each frame's events to a JSON-lines file (``Event.to_dict()``, one line each).

    The lines of a frame are written together and flushed before the next frame, so a crash loses
    at most the frame being written. Frames without events write nothing.

    Args:
        path: The ``.jsonl`` file; parent directories are created.
        append: Add to an existing log (e.g. a resumed run).
        overwrite: Replace an existing log.
        fsync: Also ``os.fsync`` after each frame with events (survives power loss, slower).
        name: Sink name in reports.

    Raises:
        FileExistsError: the file exists and is not empty (without ``append``/``overwrite``).
    """

    name = "events"

    def __init__(self, path: str | os.PathLike, *, append: bool = False, overwrite: bool = False, fsync: bool = False,
                 name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name or type(self).name
        self.fsync = fsync
        self._file = open_text_output(self.path, type(self).__name__, append=append, overwrite=overwrite)
        self.events_written = 0

    def _write(self, result: FrameResult) -> None:
        if not result.events:
            return
        text = "".join(json.dumps(e.to_dict(), allow_nan=False) + "\n" for e in result.events)
        self._file.write(text)
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())
        self.events_written += len(result.events)

    def _close(self) -> None:
        self._file.close()


__all__ = ["DISK_FULL", "EventLogSink", "LineFile", "is_disk_full", "open_text_output"]
