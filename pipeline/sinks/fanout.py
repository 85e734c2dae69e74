"""The sink contract and :class:`FanOut`, which feeds one result to many sinks and isolates their failures.

A sink is any object with a ``name``, ``__call__(result: FrameResult) -> None`` and an idempotent
``close() -> None``. Results arrive in frame order; sinks that write files append and flush per frame
so that a crash loses at most the frame being written. Sinks that draw or store images set
``needs_images = True`` (see :class:`~reidstream.pipeline.sinks.privacy.PrivacyFilter`).
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable, Protocol, runtime_checkable

from reidstream.pipeline.result import FrameResult

log = logging.getLogger(__name__)


@runtime_checkable
class Sink(Protocol):
    """What the runner hands every :class:`FrameResult` to."""

    name: str

    def __call__(self, result: FrameResult) -> None: ...

    def close(self) -> None: ...


class SinkBase:
    """Shared plumbing of the sinks: a ``name``, a closed flag, context-manager use.

    Subclasses implement :meth:`_write` and :meth:`_close`; ``__call__`` refuses results after
    :meth:`close`, and :meth:`close` runs ``_close`` once.
    """

    name = "sink"
    needs_images = False

    _closed = False

    def __call__(self, result: FrameResult) -> None:
        if self._closed:
            raise RuntimeError(f"{self.name}: sink is closed; cannot write frame {result.index}")
        self._write(result)

    def _write(self, result: FrameResult) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        """Releases resources; called once by :meth:`close`."""

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Flushes and releases the sink's resources; idempotent."""
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SinkCloseError(RuntimeError):
    """One or more sinks failed to close; ``errors`` maps sink name -> exception."""

    def __init__(self, errors: dict[str, BaseException]) -> None:
        self.errors = dict(errors)
        detail = "; ".join(f"{n}: {type(e).__name__}: {e}" for n, e in self.errors.items())
        super().__init__(f"FanOut: {len(self.errors)} sink(s) failed to close ({detail})")


class FanOut(SinkBase):
    """Calls every sink for each result; a failing sink never stops the others.

    An exception (``Exception``, not ``KeyboardInterrupt``) raised by a sink is caught, logged as a
    warning naming the sink and the frame, and passed to ``on_error``. After ``max_failures``
    consecutive failures the sink is disabled (no longer called, still closed at the end); a success
    resets its consecutive count.

    Args:
        sinks: The sinks, called in this order. Duplicate names get a ``#2``, ``#3``... suffix. A plain
            function is accepted too (named after itself, nothing to close).
        on_error: Called as ``on_error(name, result, exc)`` for each failure; an exception it raises
            propagates (a runner may use that to abort).
        max_failures: Consecutive failures after which a sink is disabled (>= 1).

    Attributes:
        failures: Sink name -> total number of failed calls.
        disabled: Names of the sinks disabled so far.
    """

    name = "fanout"

    def __init__(self, sinks: Iterable[Sink], *, on_error: Callable[[str, FrameResult, Exception], None] | None = None,
                 max_failures: int = 3) -> None:
        if isinstance(max_failures, bool) or not isinstance(max_failures, int) or max_failures < 1:
            raise ValueError(f"FanOut: expected max_failures to be an integer >= 1, got {max_failures!r}")
        self._sinks: dict[str, Sink] = {}
        for s in sinks:
            if not callable(s):
                raise TypeError(f"FanOut: expected callable sinks, got {type(s).__name__}")
            base = str(getattr(s, "name", "") or getattr(s, "__name__", "") or type(s).__name__)
            name, k = base, 1
            while name in self._sinks:
                k += 1
                name = f"{base}#{k}"
            self._sinks[name] = s
        self.on_error = on_error
        self.max_failures = max_failures
        self.failures: dict[str, int] = {n: 0 for n in self._sinks}
        self._consecutive: dict[str, int] = {n: 0 for n in self._sinks}
        self.disabled: set[str] = set()

    @property
    def sinks(self) -> dict[str, Sink]:
        """Name -> sink, in call order."""
        return dict(self._sinks)

    @property
    def active(self) -> list[str]:
        """Names of the sinks still being called."""
        return [n for n in self._sinks if n not in self.disabled]

    @property
    def stop_requested(self) -> bool:
        """True when any sink asks the runner to stop (e.g. ``q`` pressed in the live window)."""
        return any(bool(getattr(s, "stop_requested", False)) for s in self._sinks.values())

    def _write(self, result: FrameResult) -> None:
        for name, sink in self._sinks.items():
            if name in self.disabled:
                continue
            try:
                sink(result)
            except Exception as e:  # noqa: BLE001 - isolating sinks is the point
                self._failed(name, result, e)
            else:
                self._consecutive[name] = 0

    def resolve(self, camera: str, resolved: dict[int, str]) -> None:
        """Passes late identity decisions to the sinks that take them (:class:`~reidstream.pipeline.sinks.relabel.Relabel`)."""
        for name, sink in self._sinks.items():
            if name not in self.disabled and hasattr(sink, "resolve"):
                sink.resolve(camera, resolved)

    def _failed(self, name: str, result: FrameResult, e: Exception) -> None:
        self.failures[name] += 1
        self._consecutive[name] += 1
        n = self._consecutive[name]
        log.warning("sink '%s' failed on frame %d (%d in a row): %s: %s", name, result.index, n, type(e).__name__, e)
        if n >= self.max_failures:
            self.disabled.add(name)
            log.warning("sink '%s' disabled after %d consecutive failures; the other sinks go on", name, n)
        if self.on_error is not None:
            self.on_error(name, result, e)

    def _close(self) -> None:
        errors: dict[str, BaseException] = {}
        for name, sink in self._sinks.items():
            close = getattr(sink, "close", None)
            if not callable(close):  # a plain function used as a sink has nothing to close
                continue
            try:
                close()
            except Exception as e:  # noqa: BLE001 - every sink gets closed
                log.warning("sink '%s' failed to close: %s: %s", name, type(e).__name__, e)
                errors[name] = e
        if errors:
            raise SinkCloseError(errors)


__all__ = ["FanOut", "Sink", "SinkBase", "SinkCloseError"]
