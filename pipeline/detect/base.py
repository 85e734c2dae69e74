"""The detector protocol: one frame in, the people in it out."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from reidstream.pipeline.types import Detections, Frame


@runtime_checkable
class Detector(Protocol):
    """Finds people in a frame.

    Contract: ``detect(frame)`` returns a :class:`~reidstream.pipeline.types.Detections`
    whose boxes are ``x1, y1, x2, y2`` in the frame's *reference* pixel grid (the
    colour image when the frame has one, else its first stream; see
    :func:`reidstream.pipeline.crops.reference_modality`), whatever stream the
    detector looked at. ``Detections.modality`` names that stream (which sensor
    found the people), ``frame_index`` is ``frame.index`` and ``track_ids`` are
    all -1 (the tracker assigns them). Scores are in [0, 1]. A detector raises
    ``ValueError`` for a frame that lacks the stream it needs.

    Attributes:
        name: Short name for logs and events (``"depth-people"``, ``"yolo-rgb"``, ...).
    """

    name: str

    def detect(self, frame: Frame) -> Detections: ...
