"""``reid-stream`` assembled from its config: source, detector, tracker, embedders, gallery and sinks."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

from reidstream.pipeline.bundle import Bundle, BundleError, load_bundle
from reidstream.pipeline.embed.stage import EmbedStage
from reidstream.pipeline.gallery import Gallery, load_gallery
from reidstream.pipeline.gallery.calibration import Calibration
from reidstream.pipeline.atomic import atomic_write_text
from reidstream.pipeline.loop import OutputError, disk_full_error, run
from reidstream.pipeline.runner import Pipeline
from reidstream.pipeline.app.config import StreamConfig
from reidstream.pipeline.types import Modality

DEFAULT_BUNDLE = Path(__file__).parent.parent / "models" / "default"
"""The small bundle shipped with the package (trained on synthetic data only; see its manifest)."""
SIM_RECORDING_SOURCES = ("reid-synth", "reid-record --camera sim", "SimSource")
"""How ``recording.json``'s ``source`` begins in a recording of the simulated camera."""
MAX_SKIPPED_LISTED = 100
"""Skipped frames listed one by one in the summary (all are counted)."""


def bundle_of(cfg: StreamConfig) -> Bundle:
    """The configured bundle, or the embedded default."""
    path = Path(cfg.bundle) if cfg.bundle else DEFAULT_BUNDLE
    if not cfg.bundle and not (path / "manifest.json").is_file():
        raise BundleError(f"{path}: the embedded default bundle is missing from this installation; pass --bundle")
    return load_bundle(path)


def build_detector(cfg: StreamConfig, bundle: Bundle):
    """The detector the config asks for: YOLO (from ``detector.yolo`` or the bundle, keeping ``detector.classes``),
    depth, or both (auto).

    Raises:
        ValueError: the YOLO model has no ``person`` class and ``detector.classes`` is not set, or
            ``detector.classes`` names a class it lacks (listing the model's classes).
    """
    from reidstream.pipeline.detect.depth_people import DepthPeopleDetector
    from reidstream.pipeline.detect.switch import AutoDetector

    d = cfg.detector
    yolo = None
    if d.kind in ("auto", "yolo"):
        from reidstream.pipeline.detect.yolo import YoloDetector

        if d.yolo:
            yolo = YoloDetector(d.yolo, conf=d.conf, device=cfg.device, classes=d.classes)
        elif bundle.detectors():
            yolo = YoloDetector.from_bundle(bundle, _preferred_detector(bundle, cfg.device), conf=d.conf,
                                            device=cfg.device, classes=d.classes)
        elif d.kind == "yolo":
            raise BundleError(f"{bundle.root}: detector.kind is 'yolo' but the bundle has no detector; pass "
                              f"detector.yolo=PATH (a YOLO .pt / .onnx / .engine) or use detector.kind=depth")
    if d.kind == "yolo":
        return yolo
    depth = DepthPeopleDetector.from_config(d.depth)
    if d.kind == "depth" or yolo is None:
        return AutoDetector(None, depth, dark_threshold=d.dark_luma)
    return AutoDetector(yolo, depth, dark_threshold=d.dark_luma)


def is_default_bundle(bundle: Bundle) -> bool:
    """Whether ``bundle`` is the embedded default bundle (:data:`DEFAULT_BUNDLE`)."""
    try:
        return Path(bundle.root).resolve() == DEFAULT_BUNDLE.resolve()
    except OSError:
        return False


def detector_modalities(detector) -> set[Modality]:
    """The streams ``detector`` finds people in; for an :class:`~reidstream.pipeline.detect.switch.AutoDetector`,
    those of the detectors it holds (its colour detector runs on colour frames only)."""
    parts = getattr(detector, "detectors", None)
    if not isinstance(parts, dict):
        return {Modality(getattr(detector, "modality", Modality.RGB))}
    roles = {"colour": lambda d: Modality.RGB, "depth": lambda d: Modality.DEPTH,
             "ir": lambda d: Modality(getattr(d, "modality", Modality.IR))}
    return {roles[role](d) for role, d in parts.items() if d is not None and role in roles}


def check_detector(cfg: StreamConfig, bundle: Bundle, detector, modalities) -> None:
    """Refuses a run whose detector can find people in none of the source's streams: it would detect nothing.

    Args:
        cfg: The run's config (names the source in the message).
        bundle: The run's bundle.
        detector: The run's detector (:func:`build_detector`).
        modalities: The streams the source delivers; None (not known before the first frame): no check.

    Raises:
        BundleError: naming the source, its streams, the detector's and what to pass instead (a YOLO
            ``detector.yolo``, a bundle with a detector, or a source with depth).
    """
    from reidstream.pipeline.app.sources import source_name

    if modalities is None:
        return
    can = detector_modalities(detector)
    if can & set(modalities):
        return
    which = f"the embedded default bundle ({bundle.root})" if is_default_bundle(bundle) else f"bundle {bundle.root}"
    why = ("detector.kind is 'depth'" if cfg.detector.kind == "depth" else
           f"{which} has no YOLO detector: it detects people in depth" if not bundle.detectors() else
           f"the detectors of {which} work on {', '.join(sorted(m.value for m in can))}")
    hints = []
    if Modality.RGB in modalities:
        hints += ["pass detector.yolo=yolo11n.pt (a YOLO .pt / .onnx / .engine file; "
                  "pip install 'reid-stream[detect]')", "--bundle DIR with a detector (reid-export bundle --detector)"]
    hints.append("use a source with depth (--camera realsense or kinect, or a recording with depth)")
    advice = ", or ".join(hints)
    raise BundleError(f"source {source_name(cfg)} delivers {', '.join(m.value for m in modalities)} frames only, "
                      f"but the person detector of this run works on {', '.join(sorted(m.value for m in can))} "
                      f"only ({why}), so it would detect nobody. {advice[:1].upper()}{advice[1:]}")


def is_simulated_source(cfg: StreamConfig) -> bool:
    """Whether the configured source is the simulated camera, or a recording made from it."""
    from reidstream.pipeline.recording import read_meta
    from reidstream.pipeline.sources.base import SourceError

    s = cfg.source
    if s.camera == "sim":
        return True
    if s.camera != "recording" or not s.uri:
        return False
    try:
        return read_meta(s.uri).source.startswith(SIM_RECORDING_SOURCES)
    except SourceError:
        return False


def synthetic_bundle_warning(cfg: StreamConfig, bundle: Bundle) -> str | None:
    """The warning a run prints at start when it uses the embedded default bundle on other people than the
    simulator's (a camera, a video, a recording not made from the simulator); None otherwise.

    The embedded models were trained on the simulator's people only (see its manifest), so on real
    people their identities are not to be trusted.
    """
    if not is_default_bundle(bundle) or is_simulated_source(cfg):
        return None
    return (f"the embedded default bundle ({bundle.root}) was trained on synthetic people from the simulator only; "
            f"on a real camera its identities are unreliable. Train a bundle on real data and export it "
            f"(docs/training.md, reid-export bundle), then pass it with --bundle DIR")


def _preferred_detector(bundle: Bundle, device: str):
    order = ("tensorrt", "onnx", "torch") if device.startswith("cuda") else ("onnx", "torch")
    for rt in order:
        found = bundle.detectors(rt)
        if found:
            return found[0]
    return bundle.detectors()[0]


def build_tracker(cfg: StreamConfig, fps: float):
    """The configured tracker: on the floor plane (default) or ByteTrack on image boxes."""
    if cfg.tracker.kind == "floor":
        from reidstream.pipeline.track.floor import FloorTracker

        return FloorTracker.from_config(cfg.tracker.floor)
    from reidstream.pipeline.track import Tracker

    return Tracker(frame_rate=fps, lost_track_buffer=cfg.tracker.lost_track_buffer,
                   minimum_consecutive_frames=cfg.tracker.minimum_consecutive_frames)


def build_body(cfg: StreamConfig):
    """The body meter (height and width from depth)."""
    from reidstream.pipeline.body.measure import BodyMeter

    return BodyMeter.from_config(cfg.body)


def pipeline_options(cfg: StreamConfig) -> dict:
    """The :class:`~reidstream.pipeline.runner.Pipeline` settings of ``cfg`` besides its stages (the same
    for a live run, the bench and the calibration, so that the calibration sees what a run sees)."""
    return {"min_box_height": cfg.detector.min_box_height, "body": build_body(cfg), "embed_every": cfg.embed.every,
            "track_appearance": "" if cfg.tracker.appearance == "none" else cfg.tracker.appearance}


def calibration_of(bundle: Bundle) -> Calibration:
    """The bundle's evidence calibration; without one, a warning and an empty calibration (every track is new)."""
    cal = bundle.calibration()
    if cal is None:
        print(f"reid-stream: warning: bundle {bundle.root} has no evidence calibration, so no track can be "
              f"matched to an earlier identity; run `reid-export calibrate {bundle.root}` first", file=sys.stderr)
        return Calibration()
    return cal


def build_gallery(cfg: StreamConfig, out: Path | None, embed: EmbedStage, bundle: Bundle) -> Gallery:
    """A fresh gallery, or with ``output.existing: resume`` (``--resume``) the one saved in the output
    directory (a restart keeps the identities), plus enrolments.

    A reloaded gallery takes this run's ``gallery`` settings and the bundle's calibration (the log names
    the settings that differ from the saved ones). The gallery records the bundle that fills it
    (:func:`~reidstream.pipeline.gallery.persist.bundle_identity`); a file saved without that record (an
    older version) is reloaded with a warning. On resume, the journal of the changes since that save
    (``gallery.journal``, :mod:`~reidstream.pipeline.gallery.journal`) is replayed on top of it (onto an
    empty gallery when no ``gallery.npz`` was saved yet), so identities created after the last save (a
    ``kill -9``) are kept and their names never handed out again.

    Raises:
        ValueError: the saved gallery was made with another bundle (naming both, and ``--overwrite``), or
            the journal is corrupt before its last line (naming the file and line).
    """
    from reidstream.pipeline.gallery.journal import journal_path, replay
    from reidstream.pipeline.gallery.persist import bundle_identity

    path = out / "gallery.npz" if out is not None and cfg.output.gallery else None
    calibration = calibration_of(bundle)
    identity = bundle_identity(bundle)
    if cfg.gallery.url is not None:  # shared through Redis: the identities live there, not in gallery.npz
        from reidstream.pipeline.gallery.shared import SharedGallery

        gallery = SharedGallery(cfg.gallery.url, calibration, cfg.gallery)
        gallery.bundle = identity
        print(f"reid-stream: gallery shared through {cfg.gallery.url} as worker {gallery.key} "
              f"({len(gallery)} identities)", file=sys.stderr)
        path = None
    elif path is not None and cfg.output.existing == "resume" and path.is_file():
        gallery = load_gallery(path, calibration, bundle=identity)
        if gallery.bundle is None:
            print(f"reid-stream: warning: {path} does not record the bundle that made it (saved by an older "
                  f"version); reloading it for bundle {bundle.root} unchecked", file=sys.stderr)
        saved, gallery.config, gallery.bundle = gallery.config.to_dict(), cfg.gallery, identity
        changed = [f"{k} {saved.get(k)!r} -> {v!r}" for k, v in cfg.gallery.to_dict().items() if saved.get(k) != v]
        print(f"reid-stream: gallery reloaded from {path} ({len(gallery)} identities)"
              + (f"; this run's settings replace the saved ones: gallery.{', gallery.'.join(changed)}" if changed
                 else ""), file=sys.stderr)
    else:
        gallery = Gallery.from_config(cfg.gallery, calibration)
        gallery.bundle = identity
    journal = journal_path(path) if path is not None else None
    if journal is not None and cfg.output.existing == "resume" and journal.is_file():
        done = replay(gallery, journal,
                      on_warning=lambda m: print(f"reid-stream: warning: {m}", file=sys.stderr, flush=True))
        print(f"reid-stream: replayed {done.applied} change batch(es) from {journal} onto the "
              f"{'saved' if path.is_file() else 'empty'} gallery ({len(gallery)} identities, next id "
              f"{gallery.next_id})", file=sys.stderr)
    for name, files in cfg.enrol.items():
        if name in gallery:
            continue
        from reidstream.pipeline.tools.enrol import enrol_images

        enrol_images(gallery, embed, name, files)
    return gallery


def frame_counts(source, skipped: int = 0) -> dict:
    """What became of the source's frames: ``read`` and ``dropped`` (reason -> frames).

    Args:
        source: The run's source (a :class:`~reidstream.pipeline.sources.live.BufferedSource` counts its
            frames; another source: nothing is known to be dropped, ``read`` is None).
        skipped: Frames of a recording skipped as unreadable (missing or corrupt image files).

    Returns:
        ``read`` (frames read from the source, unreadable ones included) and ``dropped``: ``buffer_full``
        (``buffer.policy`` ``drop_oldest`` / ``drop_newest``), ``realtime`` (late for real-time playback),
        ``at_stop`` (still buffered when the run stopped) and ``unreadable`` (``skipped``). Once the run
        has ended, ``read = frames_processed + sum(dropped.values())``.
    """
    counts = source.counts() if callable(getattr(source, "counts", None)) else {"read": None, "dropped": {}}
    read = None if counts["read"] is None else counts["read"] + skipped
    return {"read": read, "dropped": {**counts["dropped"], "unreadable": skipped}}


def frame_counts_text(counts: dict) -> str:
    """``frames read R, dropped D (buffer full a, ...)`` for the progress line."""
    dropped = counts["dropped"]
    why = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in dropped.items() if v)
    return (f"frames read {counts['read'] if counts['read'] is not None else '?'}, "
            f"dropped {sum(dropped.values())}" + (f" ({why})" if why else ""))


def start_endpoints(cfg: StreamConfig, token: str | None, opened: list) -> tuple:
    """The run's HTTP endpoints: Prometheus ``/metrics`` + ``/healthz`` (``output.metrics``) and the browser view
    (``output.serve``, docs/web.md), each None when not asked for. Each one started is appended to ``opened``
    (the caller stops them if the start fails later)."""
    metrics = web = None
    if cfg.output.metrics is not None:
        from reidstream.pipeline.app.metrics import MetricsServer

        metrics = MetricsServer(cfg.output.metrics, stale_after_s=cfg.output.metrics_stale_s)
        opened.append(metrics)
        print(f"reid-stream: metrics on {metrics.url}/metrics, health on {metrics.url}/healthz",
              file=sys.stderr, flush=True)
    if cfg.output.serve is not None:
        from reidstream.pipeline.web import LiveServer

        web = LiveServer(cfg.output.serve, token, privacy=cfg.output.privacy)
        opened.append(web)
        print(f"reid-stream: browser view on {web.url}", file=sys.stderr, flush=True)
    return metrics, web


def prepare_output_dir(cfg: StreamConfig, out: Path, found: list[str]) -> None:
    """Makes ``out`` ready for the run: the earlier run's outputs deleted under ``--overwrite``, the directory made,
    ``config.json`` written (the access token of the browser view is never in it)."""
    from reidstream.pipeline.app.outputs import clear_outputs

    if cfg.output.existing == "overwrite" and found:
        clear_outputs(out, found)
        print(f"reid-stream: --overwrite: deleted the earlier run's {', '.join(found)} in {out}",
              file=sys.stderr, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")


def run_to_end(cfg: StreamConfig, out: Path | None, source, pipeline, sinks, summary, *, max_frames: int | None,
               should_stop: Callable[[], bool], progress: Callable, web, opened: list) -> int:
    """:func:`~reidstream.pipeline.loop.run` with the run's settings; then the endpoints are stopped and a
    shared gallery closed (what it still buffers published). On a full disk the summary of what was done is
    written if it still fits, then :class:`OutputError` is raised. Returns the frames processed."""
    gallery = pipeline.gallery
    try:
        return run(source, pipeline, sinks, max_frames=max_frames,
                   gallery_path=out / "gallery.npz" if out is not None and cfg.output.gallery else None,
                   save_every_s=cfg.output.save_every_s, should_stop=should_stop, progress=progress,
                   between_frames=(lambda: web.between_frames(gallery)) if web is not None else None)
    except OutputError as e:  # a full disk: the summary of what was done, if it still fits, then the error
        if out is not None:
            result = {**summary.summary(), "frames_processed": summary.frames, "error": str(e)}
            try:
                atomic_write_text(out / "summary.json", json.dumps(result, indent=2, default=float) + "\n")
            except OSError:
                pass  # no space for it either: no summary.json rather than a partial one
        raise
    finally:
        for endpoint in opened:
            endpoint.stop()
        close = getattr(gallery, "close", None)
        if close is not None:  # a shared gallery: publish what is still buffered, stop its link
            close()


def stream(cfg: StreamConfig, *, progress: Callable[[str], None] | None = None, token: str | None = None) -> dict:
    """Runs ``reid-stream`` with ``cfg``; returns the summary.

    Nothing is written before the run can start: the output directory is checked
    (:func:`~reidstream.pipeline.app.outputs.check_output_dir`), the bundle loaded, the source opened and
    the detector checked against the source's streams (:func:`check_detector`). Then, with
    ``output.existing: overwrite``, the outputs of the earlier run are deleted. A frame of a recording
    whose image file is missing or corrupt is skipped and reported on stderr.

    Returns:
        The :class:`~reidstream.pipeline.sinks.summary.SummarySink` summary plus ``frames_processed``,
        ``frames_skipped`` (frames of the source skipped as missing or corrupt), ``skipped`` (the first
        :data:`MAX_SKIPPED_LISTED` of them: ``frame``, ``modality``, ``file``, ``reason``), ``frames_read``
        and ``frames_dropped`` (reason -> frames; see :func:`frame_counts`): ``frames_read =
        frames_processed + sum(frames_dropped.values())``.

    Raises:
        FileExistsError: the output directory is or holds a recording, or holds a run's outputs and
            ``output.existing`` is ``refuse``.
        BundleError: the bundle is bad, or no detector of the run fits the source's streams.
        MetricsServerError: ``output.metrics`` names an address in use or not of this machine (naming it).
        WebServerError: ``output.serve`` (the browser view; ``token`` is its access token) names an address in
            use, or one beyond loopback without a token.
        OutputError: an output could not be written for lack of space (naming the file); the logs end at
            their last complete line, gallery.npz is the last one saved, summary.json is written (atomically)
            with an ``error`` if it still fits.
    """
    from reidstream.pipeline.app.outputs import check_output_dir
    from reidstream.pipeline.sinks.summary import SummarySink, format_summary
    from reidstream.pipeline.app.sources import open_stream_source, source_modalities
    from reidstream.pipeline.app.sinks import build_sinks

    out = Path(cfg.output.dir) if cfg.output.dir else None
    existing = cfg.output.existing
    replay = cfg.source.uri if cfg.source.camera == "recording" else None
    found = check_output_dir(out, existing, replay=replay) if out is not None else []
    bundle = bundle_of(cfg)
    embed = EmbedStage.from_bundle(bundle, device=cfg.device, workers=cfg.embed.workers)
    skipped: list = []

    def on_skip(frame) -> None:
        skipped.append(frame)
        print(f"reid-stream: warning: {frame.message(Path(cfg.source.uri or ''))}", file=sys.stderr, flush=True)

    source, fps = open_stream_source(cfg, on_skip=on_skip)
    metrics = web = None
    opened: list = []  # the HTTP endpoints started: stopped at the end, or when the start fails
    try:
        detector = build_detector(cfg, bundle)
        check_detector(cfg, bundle, detector, source_modalities(cfg, source))
        warning = synthetic_bundle_warning(cfg, bundle)
        if warning is not None:
            print(f"reid-stream: warning: {warning}", file=sys.stderr, flush=True)
        metrics, web = start_endpoints(cfg, token, opened)
        if out is not None:
            prepare_output_dir(cfg, out, found)
        gallery = build_gallery(cfg, out, embed, bundle)
        summary = SummarySink()
        sinks, stop = build_sinks(cfg, out, fps, extra=[summary],
                                  frame_counts=lambda camera: frame_counts(source, len(skipped)),
                                  registry=metrics.registry if metrics is not None else None, gallery=gallery,
                                  web=web.state if web is not None else None)
        pipeline = Pipeline(detector, build_tracker(cfg, fps), embed, gallery, **pipeline_options(cfg))
    except BaseException:
        source.close()
        for endpoint in opened:
            endpoint.stop()
        raise

    processed = [0]

    def report(result) -> None:
        processed[0] += 1
        if progress is not None and (processed[0] - 1) % 25 == 0:
            progress(f"frame {result.index}: {len(result.detections)} people, {len(gallery)} identities, "
                     f"detector {result.detector}; {frame_counts_text(frame_counts(source, len(skipped)))}")

    n = run_to_end(cfg, out, source, pipeline, sinks, summary, max_frames=cfg.source.max_frames, should_stop=stop,
                   progress=report, web=web, opened=opened)
    result = summary.summary()
    result["frames_processed"] = n
    result["frames_skipped"] = len(skipped)
    counts = frame_counts(source, len(skipped))
    result["frames_read"], result["frames_dropped"] = counts["read"], counts["dropped"]
    result["skipped"] = [{"frame": f.index, "modality": f.modality.value, "file": f.file, "reason": f.reason}
                         for f in skipped[:MAX_SKIPPED_LISTED]]
    print(format_summary(result))
    if out is not None:
        path = out / "summary.json"
        try:  # atomic: never a partial or empty summary.json
            atomic_write_text(path, json.dumps(result, indent=2, default=float) + "\n")
        except OSError as e:
            if disk_full_error(e) is None:
                raise
            raise OutputError(f"{path}: no space left on device; summary.json not written (the other outputs "
                              f"are complete)", str(path)) from e
    return result
