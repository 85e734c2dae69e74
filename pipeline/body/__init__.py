"""Metric body measures from depth: the floor plane, and per-person height, width and floor position.

* :class:`FloorPlane`, :class:`FloorEstimator`: the floor in camera coordinates, found
  and tracked from depth points (shared with the depth people detector).
* :class:`BodyMeter`: :class:`BodyMeasures` (floor position, distance, height, width,
  with 1-sigma uncertainties) of detected people; cues that work lit or dark.
"""

from __future__ import annotations

from reidstream.pipeline.body.floor import FloorEstimator, FloorPlane
from reidstream.pipeline.body.measure import BodyConfig, BodyMeasures, BodyMeter

__all__ = ["BodyConfig", "BodyMeasures", "BodyMeter", "FloorEstimator", "FloorPlane"]
