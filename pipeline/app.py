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
from reidstream.pipeline.runner import Pipeline, run
from reidstream.pipeline.stream_config import StreamConfig

DEFAULT_BUNDLE = Path(__file__).parent / "models" / "default"
"""The small bundle shipped with the package (trained on synthetic data only; see its manifest)."""


def bundle_of(cfg: StreamConfig) -> Bundle:
    """The configured bundle, or the embedded default."""
    path = Path(cfg.bundle) if cfg.bundle else DEFAULT_BUNDLE
    if not cfg.bundle and not (path / "manifest.json").is_file():
        raise BundleError(f"{path}: the embedded default bundle is missing from this installation; pass --bundle")
    return load_bundle(path)


def build_detector(cfg: StreamConfig, bundle: Bundle):
    """The detector the config asks for: YOLO (from ``detector.yolo`` or the bundle), depth, or both (auto)."""
    from reidstream.pipeline.detect.depth_people import DepthPeopleDetector
    from reidstream.pipeline.detect.switch import AutoDetector

    d = cfg.detector
    yolo = None
    if d.kind in ("auto", "yolo"):
        from reidstream.pipeline.detect.yolo import YoloDetector

        if d.yolo:
            yolo = YoloDetector(d.yolo, conf=d.conf, device=cfg.device)
        elif bundle.detectors():
            yolo = YoloDetector.from_bundle(bundle, _preferred_detector(bundle, cfg.device), conf=d.conf,
                                            device=cfg.device)
        elif d.kind == "yolo":
            raise BundleError(f"{bundle.root}: detector.kind is 'yolo' but the bundle has no detector; pass "
                              f"detector.yolo=PATH (a YOLO .pt / .onnx / .engine) or use detector.kind=depth")
    if d.kind == "yolo":
        return yolo
    depth = DepthPeopleDetector()
    if d.kind == "depth" or yolo is None:
        return AutoDetector(None, depth, dark_threshold=d.dark_luma)
    return AutoDetector(yolo, depth, dark_threshold=d.dark_luma)


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


def calibration_of(bundle: Bundle) -> Calibration:
    """The bundle's evidence calibration; without one, a warning and an empty calibration (every track is new)."""
    cal = bundle.calibration()
    if cal is None:
        print(f"reid-stream: warning: bundle {bundle.root} has no evidence calibration, so no track can be "
              f"matched to an earlier identity; run `reid-export calibrate {bundle.root}` first", file=sys.stderr)
        return Calibration()
    return cal


def build_gallery(cfg: StreamConfig, out: Path | None, embed: EmbedStage, bundle: Bundle) -> Gallery:
    """A fresh gallery, or the one saved in the output directory (restart after a crash), plus enrolments."""
    path = out / "gallery.npz" if out is not None and cfg.output.gallery else None
    calibration = calibration_of(bundle)
    if path is not None and path.is_file():
        gallery = load_gallery(path, calibration)
        gallery.config = cfg.gallery
        print(f"reid-stream: gallery reloaded from {path} ({len(gallery)} identities)", file=sys.stderr)
    else:
        gallery = Gallery.from_config(cfg.gallery, calibration)
    for name, files in cfg.enrol.items():
        if name in gallery:
            continue
        from reidstream.pipeline.enrol import enrol_images

        enrol_images(gallery, embed, name, files)
    return gallery


def stream(cfg: StreamConfig, *, progress: Callable[[str], None] | None = None) -> dict:
    """Runs ``reid-stream`` with ``cfg``; returns the summary."""
    from reidstream.pipeline.sinks.summary import SummarySink, format_summary
    from reidstream.pipeline.stream_sources import open_stream_source
    from reidstream.pipeline.stream_sinks import build_sinks

    bundle = bundle_of(cfg)
    embed = EmbedStage.from_bundle(bundle, device=cfg.device)
    out = Path(cfg.output.dir) if cfg.output.dir else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    gallery = build_gallery(cfg, out, embed, bundle)
    source, fps = open_stream_source(cfg)
    summary = SummarySink()
    sinks, stop = build_sinks(cfg, out, fps, extra=[summary])
    pipeline = Pipeline(build_detector(cfg, bundle), build_tracker(cfg, fps), embed, gallery,
                        min_box_height=cfg.detector.min_box_height, body=build_body(cfg))

    def report(result) -> None:
        if progress is not None and result.index % 25 == 0:
            progress(f"frame {result.index}: {len(result.detections)} people, {len(gallery)} identities, "
                     f"detector {result.detector}")

    n = run(source, pipeline, sinks, max_frames=cfg.source.max_frames,
            gallery_path=out / "gallery.npz" if out is not None and cfg.output.gallery else None,
            save_every_s=cfg.output.save_every_s, should_stop=stop, progress=report)
    result = summary.summary()
    result["frames_processed"] = n
    print(format_summary(result))
    if out is not None:
        (out / "summary.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    return result
