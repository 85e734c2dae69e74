"""The sinks a ``reid-stream`` config asks for, behind one fan-out that never lets a failing sink stop the rest."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Sequence

from reidstream.pipeline.result import FrameResult
from reidstream.pipeline.sinks.fanout import FanOut
from reidstream.pipeline.app.config import StreamConfig


def _report(name: str, result: FrameResult, exc: Exception) -> None:
    """Reports a failing sink; a full disk is raised on (the runner then stops the run: see
    :func:`~reidstream.pipeline.loop.run`), the other failures only disable the sink after a few."""
    from reidstream.pipeline.sinks.jsonl import is_disk_full

    if not getattr(exc, "_reid_reported", False):
        print(f"reid-stream: sink {name} failed on frame {result.index}: {type(exc).__name__}: {exc}",
              file=sys.stderr)
    if is_disk_full(exc):
        exc._reid_reported = True
        raise exc


def build_sinks(cfg: StreamConfig, out: Path | None, fps: float, *,
                extra: Sequence[Callable[[FrameResult], None]] = (), registry=None,
                frame_counts: Callable[[str], dict | None] | None = None,
                gallery: object | None = None,
                cameras: Sequence[str] = (), web=None) -> tuple[FanOut, Callable[[], bool]]:
    """The fan-out of every configured sink, and a ``should_stop()`` that is true once the window asks to stop.

    Outputs under ``out`` are appended to when they exist, so a resumed run (``output.existing: resume``,
    the gallery reloaded from the same directory) continues its logs instead of losing them; its
    ``frames.jsonl`` gets a restart marker first. (:func:`reidstream.pipeline.app.stream.stream` checks the
    directory first: see :mod:`reidstream.pipeline.app.outputs`.)

    With ``output.privacy`` no sink receives colour pixels: image-writing sinks get frames without
    colour (:class:`~reidstream.pipeline.sinks.privacy.PrivacyFilter`) and the video shows depth / IR only.

    With a Prometheus ``registry`` (``output.metrics``; the caller starts the server) a
    :class:`~reidstream.pipeline.sinks.metrics.MetricsSink` fills it, polling ``frame_counts(camera)``
    (frames read / dropped) and the ``gallery``'s size.

    With a browser view's ``web`` state (``output.serve``; the caller starts the server) a
    :class:`~reidstream.pipeline.sinks.web.WebSink` feeds it (behind a ``PrivacyFilter`` in privacy mode).

    With several ``cameras`` (a site), the MOT files, videos and windows are per camera
    (``tracks-<id>.txt``, ``gt-<id>.txt``, ``annotated-<id>.mp4``); events and frames logs are shared (each
    line names its camera).
    """
    from reidstream.pipeline.sinks.by_camera import ByCamera
    from reidstream.pipeline.sinks.score_log import FRAMES_FILE, ScoreLogSink
    from reidstream.pipeline.sinks.jsonl import EventLogSink
    from reidstream.pipeline.sinks.mot import GroundTruthMotSink, MotSink
    from reidstream.pipeline.sinks.privacy import PrivacyFilter
    from reidstream.pipeline.sinks.relabel import Relabel

    o = cfg.output
    sinks: list = list(extra)
    windows: list = []
    site = len(cameras) > 1

    def per_camera(make: Callable[[str], object], stem: str, suffix: str):
        """``make(path)`` once (``stem + suffix``), or once per camera (``stem-<id> + suffix``) in a site."""
        if not site:
            return make(f"{stem}{suffix}")
        return ByCamera(lambda cam: make(f"{stem}-{cam}{suffix}"), name=stem, cameras=list(cameras))

    if out is not None:
        logs: list = []
        if o.events:
            logs.append(EventLogSink(out / "events.jsonl", append=True))
        if o.mot:
            logs.append(per_camera(lambda name: MotSink(out / name, append=True), "tracks", ".txt"))
            logs.append(per_camera(lambda name: GroundTruthMotSink(out / name, append=True), "gt", ".txt"))
            logs.append(ScoreLogSink(out / FRAMES_FILE, dark_luma=cfg.detector.dark_luma,
                                     restart=o.existing == "resume"))
        if logs:  # the logs carry each track's decided identity from its first frame on
            g = cfg.gallery  # a cut moves frames back to the start of its first contrary re-check window;
            # one at a track's end comes lost_s after its last frame
            hold = (g.cut_after + 0.5) * g.recheck_s + g.lost_s if g.cut_after > 0 and o.revise_s > 0 else 0.0
            sinks.append(Relabel(FanOut(logs, on_error=_report), revise_s=o.revise_s, hold_s=hold,
                                 strip_pixels=True))  # the logs read no pixels
        if o.video:
            from reidstream.pipeline.sinks.video import AnnotatedVideoSink

            def video(name: str):
                v = AnnotatedVideoSink(out / name, fps=fps, privacy=o.privacy)
                return PrivacyFilter(v) if o.privacy else v

            sinks.append(per_camera(video, "annotated", ".mp4"))
    if o.show:
        from reidstream.pipeline.sinks.display import WindowSink

        def window(title: str):
            w = WindowSink(title, privacy=o.privacy)
            windows.append(w)
            return PrivacyFilter(w) if o.privacy else w

        sinks.append(per_camera(window, "reid-stream", ""))
    if registry is not None:
        from reidstream.pipeline.sinks.metrics import MetricsSink

        sinks.append(MetricsSink(registry, frame_counts=frame_counts, gallery=gallery))
    if web is not None:
        from reidstream.pipeline.sinks.web import WebSink

        ws = WebSink(web, max_fps=o.serve_fps, privacy=o.privacy, frame_counts=frame_counts)
        sinks.append(PrivacyFilter(ws) if o.privacy else ws)
    fan = FanOut(sinks, on_error=_report)
    return fan, (lambda: any(w.stop_requested for w in windows))
