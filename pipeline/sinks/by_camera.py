"""One sink per camera: results of a multi-camera run routed by ``result.frame.camera_id``.

MOT files, videos and windows are per camera (``tracks-<id>.txt``, ``annotated-<id>.mp4``); a
:class:`ByCamera` creates each camera's sink when its first result arrives.
"""

from __future__ import annotations

from typing import Callable

from reidstream.pipeline.result import FrameResult
from reidstream.pipeline.sinks.fanout import SinkBase, SinkCloseError


class ByCamera(SinkBase):
    """Routes each result to its camera's own sink.

    Args:
        make: Camera id -> a new sink for that camera.
        name: Name in reports.
        cameras: Camera ids whose sinks are created at once (the others on their first result).
    """

    def __init__(self, make: Callable[[str], object], *, name: str = "by-camera",
                 cameras: tuple[str, ...] | list[str] = ()) -> None:
        self.make, self.name = make, name
        self.sinks: dict[str, object] = {}
        first = [make(c) for c in cameras]
        self.sinks = dict(zip(cameras, first))
        self.needs_images = any(getattr(s, "needs_images", False) for s in first)

    def _sink(self, camera: str):
        sink = self.sinks.get(camera)
        if sink is None:
            sink = self.sinks[camera] = self.make(camera)
        return sink

    def _write(self, result: FrameResult) -> None:
        self._sink(result.frame.camera_id)(result)

    def resolve(self, camera: str, resolved: dict[int, str]) -> None:
        """Passes decisions made after the stream ended to that camera's sink (if it takes them)."""
        resolve = getattr(self.sinks.get(camera), "resolve", None)
        if resolve is not None:
            resolve(camera, resolved)

    def _close(self) -> None:
        errors = {}
        for camera, sink in self.sinks.items():
            try:
                sink.close()
            except Exception as e:  # noqa: BLE001 - close every camera's sink, report them together
                errors[f"{getattr(sink, 'name', 'sink')}[{camera}]"] = e
        if errors:
            raise SinkCloseError(errors)


__all__ = ["ByCamera"]
