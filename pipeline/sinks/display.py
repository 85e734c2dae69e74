"""The live window (``--show``): the annotated mosaic in an OpenCV window, ``q`` or Esc to stop."""

from __future__ import annotations

import os
import sys
import time
from typing import Callable, Iterable

import cv2

from reidstream.pipeline.result import FrameResult
from reidstream.pipeline.sinks.draw import DEFAULT_TILES, parse_tiles, render_mosaic
from reidstream.pipeline.sinks.fanout import SinkBase
from reidstream.pipeline.sinks.video import ThroughputMeter
from reidstream.pipeline.types import Modality

NO_GUI = "--show needs a desktop OpenCV build (opencv-python, not opencv-python-headless) and a display"
STOP_KEYS = (ord("q"), ord("Q"), 27)


def gui_backend() -> str:
    """The GUI backend OpenCV was built with (``"NONE"`` for headless builds), from its build information."""
    for line in cv2.getBuildInformation().splitlines():
        key, sep, value = line.strip().partition(":")
        if sep and key.strip() == "GUI":
            return value.strip() or "NONE"
    return "UNKNOWN"


def gui_problem() -> str | None:
    """Why a window cannot be opened here, or None if it may be tried.

    Checked before any window call because a Qt/GTK build without a reachable display aborts the
    whole process (no Python exception) on Linux.
    """
    backend = gui_backend()
    if backend.upper() == "NONE":
        return "this OpenCV build has no GUI backend"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display: neither DISPLAY nor WAYLAND_DISPLAY is set"
    return None


class WindowSink(SinkBase):
    """Shows each result in a window (``cv2.imshow`` + ``cv2.waitKey(1)``).

    Pressing ``q`` or Esc, or closing the window, sets :attr:`stop_requested`; the runner checks it
    after each frame and ends the run cleanly.

    Args:
        title: Window title.
        tiles: Modalities shown left to right.
        privacy: Never draw colour pixels (grey rgb tile).
        name: Sink name in reports.
        clock: Time source of the FPS overlay.

    Raises:
        RuntimeError: at construction, when OpenCV has no GUI or there is no display (message starts
            with :data:`NO_GUI`).
    """

    name = "window"
    needs_images = True

    def __init__(self, title: str = "reid-stream", *, tiles: Iterable[Modality | str] = DEFAULT_TILES,
                 privacy: bool = False, name: str | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.title = str(title)
        self.tiles = parse_tiles(tiles, "WindowSink")
        self.privacy = bool(privacy)
        self.name = name or type(self).name
        self.meter = ThroughputMeter(clock)
        self.stop_requested = False
        problem = gui_problem()
        if problem is not None:
            raise RuntimeError(f"{NO_GUI} ({problem})")
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error as e:
            raise RuntimeError(f"{NO_GUI} (cv2.namedWindow failed: {str(e).strip()})") from None
        self._open = True

    def _write(self, result: FrameResult) -> None:
        img = render_mosaic(result, self.tiles, self.privacy, self.meter.tick())
        cv2.imshow(self.title, img)
        key = cv2.waitKey(1)
        if key != -1 and (key & 0xFF) in STOP_KEYS:
            self.stop_requested = True
        try:
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                self.stop_requested = True  # closed with the mouse
        except cv2.error:
            self.stop_requested = True

    def _close(self) -> None:
        if getattr(self, "_open", False):
            self._open = False
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass


__all__ = ["NO_GUI", "WindowSink", "gui_backend", "gui_problem"]
