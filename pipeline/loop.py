"""The run loop: frames from a source through a :class:`~reidstream.pipeline.runner.Pipeline` to the sinks.

Three threads: a reader (inside the buffered source) keeps a live camera from
ever waiting for processing; processing runs in :func:`run`; a :class:`SinkWorker`
writes results (video encoding, files, window) while the next frame is
processed. One result per input frame, in order; a failing sink is reported and
disabled by the fan-out, the others go on. The gallery's changes are journalled
before the sinks announce them,
Ctrl-C and SIGTERM end a run the way the end of the source does, and a full disk
stops it with an :class:`OutputError` that names the file.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from reidstream.pipeline.gallery import GalleryJournal, journal_path, save_gallery
from reidstream.pipeline.result import FrameResult
from reidstream.pipeline.sources.base import AnnotatedFrame

if TYPE_CHECKING:
    from reidstream.pipeline.runner import Pipeline


class OutputError(RuntimeError):
    """An output of the run could not be written (a full disk); the message names the file.

    Attributes:
        path: The file that could not be written ("" when unknown).
    """

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


def disk_full_error(error: BaseException | None) -> OSError | None:
    """The full-disk :class:`OSError` (``ENOSPC``, ``EDQUOT``) behind ``error``, if any: ``error`` itself,
    one of the sink errors of a :class:`~reidstream.pipeline.sinks.fanout.SinkCloseError`, or its cause."""
    from reidstream.pipeline.sinks.fanout import SinkCloseError
    from reidstream.pipeline.sinks.jsonl import is_disk_full

    seen: set[int] = set()
    todo = [error]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if is_disk_full(e):
            return e
        if isinstance(e, SinkCloseError):
            todo.extend(e.errors.values())
        todo.extend([e.__cause__, e.__context__])
    return None


def disk_full_message(error: OSError, gallery_path: str | Path | None = None) -> OutputError:
    """The :class:`OutputError` of a full disk, naming the file and what was kept."""
    path = str(error.filename or "")
    kept = (f"; {gallery_path} holds the gallery as last saved" if gallery_path is not None else "")
    return OutputError(f"{path or 'an output file'}: no space left on device (errno {error.errno}); the run "
                       f"stopped; the logs end at their last complete line{kept}. Free space, then continue "
                       f"with --resume", path)


class SinkWorker:
    """Hands results to a sink (the fan-out) on its own thread, in order, never dropping one."""

    def __init__(self, sink: Callable[[FrameResult], None], maxsize: int = 8) -> None:
        self.sink = sink
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="reid-stream-sinks", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self.sink(item)
            except BaseException as e:  # noqa: BLE001 - the fan-out already isolates sinks; keep the first
                self._error = self._error or e

    @property
    def error(self) -> BaseException | None:
        """The first exception the sink raised, if any."""
        return self._error

    def put(self, result: FrameResult) -> None:
        self._queue.put(result)

    def close(self) -> None:
        """Waits until every result is written."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            print(f"reid-stream: a sink failed: {self._error}", file=sys.stderr)


class _TerminateAsInterrupt:
    """While installed, SIGTERM (``docker stop``, systemd, ``kill``) ends a run the way Ctrl-C does.

    The first SIGTERM raises :class:`KeyboardInterrupt` in the main thread; once :meth:`finishing` is
    called (the outputs are being written), further ones are ignored so the writing completes. Only the
    main thread can install signal handlers: elsewhere this does nothing.
    """

    def __init__(self) -> None:
        self._previous = None
        self._finishing = self._signalled = self._installed = False
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
            self._installed = True

    def _handle(self, signum: int, frame) -> None:
        if self._finishing or self._signalled:
            print(f"reid-stream: {signal.Signals(signum).name} while finishing the outputs; finishing them first",
                  file=sys.stderr, flush=True)
            return
        self._signalled = True
        raise KeyboardInterrupt(signal.Signals(signum).name)

    def finishing(self) -> None:
        """From now on a SIGTERM no longer interrupts (the outputs are being written)."""
        self._finishing = True

    def restore(self) -> None:
        """Puts back the SIGTERM handler that was there before."""
        if self._installed:
            # None: the previous handler was not installed from Python; the default is the best guess.
            signal.signal(signal.SIGTERM, signal.SIG_DFL if self._previous is None else self._previous)
            self._installed = False


def run(source: Iterable[AnnotatedFrame], pipeline: Pipeline, sink: Callable[[FrameResult], None], *,
        max_frames: int | None = None, gallery_path: str | Path | None = None, save_every_s: float = 10.0,
        should_stop: Callable[[], bool] = lambda: False,
        progress: Callable[[FrameResult], None] | None = None,
        between_frames: Callable[[], tuple[bool, bool]] | None = None) -> int:
    """Processes frames until the source ends, ``max_frames``, ``should_stop()``, Ctrl-C or SIGTERM.

    The gallery is saved atomically to ``gallery_path`` every ``save_every_s`` seconds and at the end;
    in between, each frame's gallery changes are appended to the journal next to it
    (:mod:`~reidstream.pipeline.gallery.journal`) and fsynced before the frame's result reaches the sinks,
    so a crash (even ``kill -9``) loses no identity the logs announced; each save empties the journal.
    Ctrl-C and SIGTERM (``docker stop``, systemd; handled when ``run`` is called from the main thread) end
    the run the same way as the end of the source:
    pending tracks are decided, the sinks flushed and closed, the gallery saved.

    A full disk (``ENOSPC``, ``EDQUOT``) while a sink writes or the gallery is saved stops the run the
    same way; the sinks leave their files at their last complete line, a failed gallery save leaves the
    one saved before, and :class:`OutputError` is raised naming the file.

    ``between_frames()`` (the browser view's queued actions, :mod:`~reidstream.pipeline.web`) runs in this
    thread after each frame, so it never changes the gallery while it matches; it returns ``(changed,
    erase)``: changed: its gallery changes are journalled at once; erase: the gallery is also saved and the
    journal emptied, so no journal line keeps what was erased.

    Returns:
        Number of frames processed.

    Raises:
        OutputError: an output could not be written for lack of space.
    """
    gallery = getattr(pipeline, "gallery", None)
    journal = (GalleryJournal(journal_path(gallery_path), gallery.journal_seq)
               if gallery_path is not None and hasattr(gallery, "drain_mutations") else None)

    def commit() -> OSError | None:
        """The gallery's changes, appended to the journal and synced; the full-disk error if that failed."""
        if journal is None:
            return None
        try:
            gallery.journal_seq = journal.append(gallery.drain_mutations())
            journal.flush()
        except OSError as e:
            if disk_full_error(e) is None:
                raise
            return disk_full_error(e)
        return None

    worker = SinkWorker(sink)
    n, last_save = 0, time.monotonic()
    terminate = None
    full: OSError | None = None
    try:
        terminate = _TerminateAsInterrupt()
        for item in source:
            result = pipeline.process(item)  # a site's pipeline gives one result per camera of the round
            full = commit()  # durable before the sinks announce the frame's identities
            if full is not None:
                break
            for r in result if isinstance(result, list) else [result]:
                worker.put(r)
                n += 1
            if progress is not None:
                progress(result)
            changed, erase = between_frames() if between_frames is not None else (False, False)
            if changed:
                full = commit()
                if full is not None:
                    break
            if gallery_path is not None and (erase or time.monotonic() - last_save >= save_every_s):
                try:
                    save_gallery(pipeline.gallery, gallery_path)
                    if journal is not None:
                        journal.rotate()  # a kill before this: replay skips what the snapshot holds
                except OSError as e:
                    full = disk_full_error(e)
                    if full is None:
                        raise
                    full.filename = full.filename or str(gallery_path)
                    break
                last_save = time.monotonic()
            full = disk_full_error(worker.error)
            if full is not None or (max_frames is not None and n >= max_frames) or should_stop():
                break
    except KeyboardInterrupt as e:
        why = f"terminated ({e.args[0]})" if e.args and str(e.args[0]).startswith("SIG") else "interrupted"
        print(f"\nreid-stream: {why}; finishing the outputs", file=sys.stderr, flush=True)
    finally:
        if terminate is not None:
            terminate.finishing()
        try:
            close = getattr(source, "close", None)
            if close is not None:
                close()
            worker.close()
            finished = pipeline.finish()  # a site's pipeline: one (camera, resolved) per camera
            full = full or commit()  # the decisions of the end, durable before the sinks hear of them
            try:
                for camera, resolved in finished if isinstance(finished, list) else [finished]:
                    if resolved and hasattr(sink, "resolve"):
                        sink.resolve(camera, resolved)  # tracks still pending at the end are decided now
            except Exception as e:  # noqa: BLE001 - releasing held frames writes them: a full disk is reported below
                full = full or disk_full_error(e)
                if disk_full_error(e) is None:
                    raise
            full = full or disk_full_error(worker.error)
            close = getattr(sink, "close", None)
            if close is not None:
                try:
                    close()  # flushes what the sinks still hold (the relabelling waits for decisions)
                except Exception as e:  # noqa: BLE001 - a full disk is reported below, naming the file
                    full = full or disk_full_error(e)
                    if disk_full_error(e) is None:
                        raise
            if gallery_path is not None:
                try:
                    save_gallery(pipeline.gallery, gallery_path)
                    if journal is not None:
                        journal.rotate()
                except OSError as e:
                    if disk_full_error(e) is None:
                        raise
                    if full is None:
                        full = disk_full_error(e)
                        full.filename = full.filename or str(gallery_path)
        finally:
            if journal is not None:
                journal.close()
            if terminate is not None:
                terminate.restore()
    if full is not None:
        raise disk_full_message(full, gallery_path)
    return n
