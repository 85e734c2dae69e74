"""Person detectors of the live pipeline.

* :class:`DepthPeopleDetector`: depth alone, no weights (floor plane + clustering
  of the points above it); works in the dark.
* :class:`YoloDetector`: an ultralytics YOLO on colour, IR or thermal, from a file
  or a model bundle entry (ultralytics is imported only when one is built).
* :class:`AutoDetector`: picks colour, IR or depth per frame from the light level.

All return boxes in the frame's reference (colour) pixel grid; see :class:`Detector`.
"""

from __future__ import annotations

from reidstream.pipeline.detect.base import Detector
from reidstream.pipeline.detect.depth_people import DepthPeopleConfig, DepthPeopleDetector, FloorPlane
from reidstream.pipeline.detect.switch import AutoDetector, SwitchConfig
from reidstream.pipeline.detect.yolo import YoloDetector

__all__ = ["AutoDetector", "DepthPeopleConfig", "DepthPeopleDetector", "Detector", "FloorPlane", "SwitchConfig",
           "YoloDetector"]
