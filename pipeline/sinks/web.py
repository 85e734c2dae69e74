"""The browser view's sink: annotated frames, per-camera statistics, identity thumbnails and events.

It runs on the sinks' thread and never waits for a browser: it hands JPEGs to
:class:`~reidstream.pipeline.web.state.WebState`, whose per-client queues drop frames for a slow client
only; it draws and encodes a camera's frame at most ``max_fps`` times a second, and only while someone
watches. In privacy mode it is wrapped in a :class:`~reidstream.pipeline.sinks.privacy.PrivacyFilter`
(no colour reaches it) and draws the colour tile as a grey placeholder.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Mapping

import cv2
import numpy as np

from reidstream.pipeline.result import FrameResult
from reidstream.pipeline.sinks.draw import DEFAULT_TILES, render_mosaic
from reidstream.pipeline.sinks.fanout import SinkBase
from reidstream.pipeline.types import Modality
from reidstream.pipeline.viz import colourize

THUMB_H = 96
THUMB_EVERY_S = 3.0
JPEG_QUALITY = 75


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """A BGR image as JPEG bytes."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {image.shape}")
    return buf.tobytes()


def thumbnails(result: FrameResult, k: int, privacy: bool) -> dict[str, bytes]:
    """JPEG crops of detection ``k`` per modality of the frame (no colour in privacy mode)."""
    f = result.frame
    w, h = f.size
    x1, y1, x2, y2 = (int(round(float(v))) for v in result.detections.boxes[k])
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 - x1 < 4 or y2 - y1 < 8:
        return {}
    out = {}
    for m in f.modalities:
        if m is Modality.RGB and privacy:
            continue
        img = getattr(f, m.value)
        if img is None or img.shape[:2] != (h, w):  # unaligned streams: no crop in the colour grid
            continue
        crop = colourize(m, img[y1:y2, x1:x2])
        scale = THUMB_H / crop.shape[0]
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), THUMB_H), interpolation=cv2.INTER_AREA)
        out[m.value] = encode_jpeg(crop, 85)
    return out


class WebSink(SinkBase):
    """Feeds a :class:`~reidstream.pipeline.web.state.WebState` from each result (see the module docstring).

    Args:
        state: The shared state the web server reads.
        max_fps: At most this many frames per second and camera are drawn and encoded.
        tiles: Modality tiles of the annotated frame.
        privacy: Never keep colour (also wrap the sink in a ``PrivacyFilter``).
        frame_counts: ``frame_counts(camera) -> {"read", "dropped"}`` (frames read and dropped); None: unknown.
        clock: Monotonic time source.
    """

    name = "web"
    needs_images = True

    def __init__(self, state, *, max_fps: float = 8.0, tiles: Iterable[str] = DEFAULT_TILES, privacy: bool = False,
                 frame_counts: Callable[[str], Mapping | None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not max_fps > 0:
            raise ValueError(f"WebSink: expected max_fps > 0, got {max_fps!r}")
        self.state, self.max_fps, self.tiles, self.privacy = state, float(max_fps), tuple(tiles), privacy
        self.frame_counts, self.clock = frame_counts, clock
        self._last_draw: dict[str, float] = {}
        self._times: dict[str, list[float]] = {}

    def _write(self, result: FrameResult) -> None:
        cam_id = result.frame.camera_id
        now = self.clock()
        times = self._times.setdefault(cam_id, [])
        times.append(now)
        del times[:-30]
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        counts = self.frame_counts(cam_id) if self.frame_counts is not None else None
        by_id = {m.track_id: m for m in result.matches}
        in_view = [{"track": int(t), "identity": result.identities[k],
                    "pending": bool(by_id.get(int(t)) is not None and by_id[int(t)].pending)}
                   for k, t in enumerate(result.detections.track_ids.tolist())]
        from reidstream.pipeline.web.state import CameraView

        with self.state.lock:
            cam = self.state.cameras.setdefault(cam_id, CameraView())
            cam.frame, cam.fps, cam.processed = result.index, fps, cam.processed + 1
            cam.latency_ms = {k: round(float(v), 2) for k, v in result.latency_ms.items()}
            cam.people, cam.in_view = len(result.detections), in_view
            if counts:
                cam.read, cam.dropped = counts.get("read"), dict(counts.get("dropped") or {})
        if result.events:
            self.state.add_events([e.to_dict() for e in result.events])
        for k, ident in enumerate(result.identities):
            if not ident:
                continue
            due = now - self.state.thumb_time.get(ident, -1e9) >= THUMB_EVERY_S
            self.state.set_thumbs(ident, cam_id, thumbnails(result, k, self.privacy) if due else None)
        if now - self._last_draw.get(cam_id, -1e9) >= 1.0 / self.max_fps and self.state.wanted():
            self._last_draw[cam_id] = now
            mosaic = render_mosaic(result, self.tiles, privacy=self.privacy, fps=fps)
            self.state.publish(cam_id, encode_jpeg(mosaic))

    def _close(self) -> None:
        self.state.close()


__all__ = ["WebSink", "encode_jpeg", "thumbnails"]
