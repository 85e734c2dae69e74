"""The identity event log: one JSON line per :class:`~reidstream.pipeline.result.Event`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TextIO

from reidstream.pipeline.result import FrameResult
from reidstream.pipeline.sinks.fanout import SinkBase


def open_text_output(path: str | os.PathLike, owner: str, *, append: bool = False, overwrite: bool = False) -> TextIO:
    """Opens a text file that a sink writes line by line, creating its parent directories.

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
    return open(p, "a" if append else "w", encoding="utf-8", newline="\n")


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


__all__ = ["EventLogSink", "open_text_output"]
