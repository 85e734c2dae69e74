"""Short-term tracking of the people of one camera: stable ids for a person from frame to frame.

Two trackers with one contract (``update(detections, timestamp=None, measures=None,
appearance=None) -> Detections``: the tracked subset in input order, ids >= 0,
``last_index`` the input indices of the returned rows):

* :class:`Tracker`: ByteTrack on image boxes (the ``trackers`` package); needs nothing but boxes.
* :class:`FloorTracker`: association on the floor plane with height (and optional appearance)
  gates, from body measures in metres; falls back to image boxes for detections without depth.
"""

from reidstream.pipeline.track.bytetrack import Tracker, TrackerConfig
from reidstream.pipeline.track.floor import FloorTracker, FloorTrackerConfig

__all__ = ["FloorTracker", "FloorTrackerConfig", "Tracker", "TrackerConfig"]
