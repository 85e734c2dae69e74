"""Sinks of the live pipeline: where each :class:`~reidstream.pipeline.result.FrameResult` goes.

A sink is a callable ``sink(result) -> None`` with an idempotent ``close()`` and a ``name``
(:class:`Sink`); results arrive in frame order and file sinks append and flush per frame.
:class:`FanOut` feeds many sinks and isolates their failures; :class:`PrivacyFilter` keeps colour
pixels away from any sink. ``SINKS`` maps the short names used on the command line to the classes.
"""

from reidstream.pipeline.sinks.display import WindowSink
from reidstream.pipeline.sinks.draw import identity_colour, render_mosaic
from reidstream.pipeline.sinks.fanout import FanOut, Sink, SinkBase, SinkCloseError
from reidstream.pipeline.sinks.jsonl import EventLogSink
from reidstream.pipeline.sinks.mot import GroundTruthMotSink, MotSink
from reidstream.pipeline.sinks.privacy import DepthRecordingSink, PrivacyFilter, strip_colour
from reidstream.pipeline.sinks.summary import SummarySink, format_summary
from reidstream.pipeline.sinks.video import AnnotatedVideoSink

SINKS: dict[str, type] = {
    "events": EventLogSink,
    "mot": MotSink,
    "mot_gt": GroundTruthMotSink,
    "video": AnnotatedVideoSink,
    "window": WindowSink,
    "depth_recording": DepthRecordingSink,
    "summary": SummarySink,
}

__all__ = ["AnnotatedVideoSink", "DepthRecordingSink", "EventLogSink", "FanOut", "GroundTruthMotSink", "MotSink",
           "PrivacyFilter", "SINKS", "Sink", "SinkBase", "SinkCloseError", "SummarySink", "WindowSink",
           "format_summary", "identity_colour", "render_mosaic", "strip_colour"]
