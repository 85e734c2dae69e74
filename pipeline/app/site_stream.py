"""A site run: every camera of a :class:`~reidstream.pipeline.app.site.SiteConfig` into one gallery."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

from reidstream.pipeline.app.site import SiteConfig
from reidstream.pipeline.app.stream import (MAX_SKIPPED_LISTED, build_detector, build_gallery, build_tracker,
                                            bundle_of, check_detector, frame_counts_text, pipeline_options,
                                            prepare_output_dir, run_to_end, start_endpoints,
                                            synthetic_bundle_warning)
from reidstream.pipeline.atomic import atomic_write_text
from reidstream.pipeline.embed.stage import EmbedStage
from reidstream.pipeline.multicam import SitePipeline, SiteSource
from reidstream.pipeline.loop import OutputError, disk_full_error
from reidstream.pipeline.runner import Pipeline


def _is_replay(cfg) -> bool:
    from reidstream.pipeline.app.sources import PLAYBACK_SUFFIXES

    s = cfg.source
    return s.camera == "recording" or (s.uri is not None and Path(s.uri).suffix.lower() in PLAYBACK_SUFFIXES) or \
        (s.camera == "video" and s.uri is not None)


def stream_site(cfg: SiteConfig, *, progress: Callable[[str], None] | None = None,
                token: str | None = None) -> dict:
    """Runs every camera of ``cfg`` into one gallery; returns the summary (with a ``cameras`` section).

    Like :func:`~reidstream.pipeline.app.stream.stream`, nothing is written before every camera is open and
    its detector checked against its streams. A camera whose source fails later is reported and the others
    go on (``camera_failures`` in the summary).

    Raises:
        FileExistsError / BundleError / SourceError / ValueError: as for a single camera, naming the camera.
        OutputError: an output could not be written for lack of space.
    """
    from reidstream.pipeline.app.outputs import check_output_dir
    from reidstream.pipeline.app.sinks import build_sinks
    from reidstream.pipeline.app.sources import open_stream_source, source_modalities
    from reidstream.pipeline.sinks.by_camera import ByCamera
    from reidstream.pipeline.sinks.summary import SummarySink, format_summary

    out = Path(cfg.output.dir) if cfg.output.dir else None
    existing = cfg.output.existing
    ids = cfg.running
    cams = {cid: cfg.camera(cid) for cid in ids}
    for cid, c in cams.items():
        if out is not None and c.source.camera == "recording":
            check_output_dir(out, existing, replay=c.source.uri)
    found = check_output_dir(out, existing) if out is not None else []
    bundle = bundle_of(cfg)
    embed = EmbedStage.from_bundle(bundle, device=cfg.device, workers=cfg.embed.workers)
    skipped: list = []
    sources: dict = {}
    fps: dict[str, float] = {}
    pipelines: dict[str, Pipeline] = {}
    metrics = web = None
    opened: list = []  # the HTTP endpoints started: stopped at the end, or when the start fails
    try:
        detectors = {}
        for cid, c in cams.items():
            def on_skip(frame, cid=cid, uri=c.source.uri) -> None:
                skipped.append((cid, frame))
                print(f"reid-stream: warning: camera {cid}: {frame.message(Path(uri or ''))}", file=sys.stderr,
                      flush=True)

            try:
                sources[cid], fps[cid] = open_stream_source(c, on_skip=on_skip)
                detectors[cid] = build_detector(c, bundle)
                check_detector(c, bundle, detectors[cid], source_modalities(c, sources[cid]))
            except Exception as e:
                raise type(e)(f"camera {cid}: {e}") from e
        warnings = {w for c in cams.values() if (w := synthetic_bundle_warning(c, bundle)) is not None}
        for w in sorted(warnings):
            print(f"reid-stream: warning: {w}", file=sys.stderr, flush=True)
        metrics, web = start_endpoints(cfg, token, opened)
        if out is not None:
            prepare_output_dir(cfg, out, found)
        gallery = build_gallery(cfg, out, embed, bundle)
        gallery.topology = cfg.topology()
        summary = SummarySink()
        per_camera = ByCamera(lambda cid: SummarySink(name=f"summary[{cid}]"), name="summary-per-camera",
                              cameras=ids)
        merged = SiteSource(sources, live=not all(_is_replay(c) for c in cams.values()),
                            window_s=0.5 / max(fps.values()))
        sinks, stop = build_sinks(cfg, out, max(fps.values()), extra=[summary, per_camera], cameras=ids,
                                  registry=metrics.registry if metrics is not None else None, gallery=gallery,
                                  frame_counts=lambda camera: merged.counts()["cameras"].get(camera),
                                  web=web.state if web is not None else None)
        for cid, c in cams.items():
            pipelines[cid] = Pipeline(detectors[cid], build_tracker(c, fps[cid]), embed, gallery,
                                      **pipeline_options(c))
        site = SitePipeline(pipelines)
    except BaseException:
        for s in sources.values():
            s.close()
        for endpoint in opened:
            endpoint.stop()
        raise
    print(f"reid-stream: site of {len(ids)} cameras: {', '.join(ids)}", file=sys.stderr, flush=True)
    processed = [0]

    def report(results) -> None:
        processed[0] += 1
        if progress is not None and (processed[0] - 1) % 25 == 0:
            people = sum(len(r.detections) for r in results)
            progress(f"round {processed[0]}: {len(results)} frames, {people} people, {len(gallery)} identities; "
                     f"{frame_counts_text(merged.counts())}")

    run_to_end(cfg, out, merged, site, sinks, summary, max_frames=None,  # source.max_frames: per camera
               should_stop=stop, progress=report, web=web, opened=opened)
    counts = merged.counts()
    result = summary.summary()
    result["frames_processed"] = summary.frames
    result["frames_skipped"] = len(skipped)
    result["frames_read"] = None if counts["read"] is None else counts["read"] + len(skipped)
    result["frames_dropped"] = {**counts["dropped"], "unreadable": len(skipped)}
    result["skipped"] = [{"camera": cid, "frame": f.index, "modality": f.modality.value, "file": f.file,
                          "reason": f.reason} for cid, f in skipped[:MAX_SKIPPED_LISTED]]
    result["camera_failures"] = {f.camera_id: f"{type(f.error).__name__}: {f.error}" for f in merged.failures}
    result["cameras"] = {}
    for cid in ids:
        s = per_camera.sinks[cid]
        c = counts["cameras"][cid]
        n_skip = sum(1 for k, _ in skipped if k == cid)
        result["cameras"][cid] = {**s.summary(), "frames_processed": s.frames, "frames_skipped": n_skip,
                                  "frames_read": None if c["read"] is None else c["read"] + n_skip,
                                  "frames_dropped": {**c["dropped"], "unreadable": n_skip}}
    print(format_summary(result))
    for cid in ids:
        cs = result["cameras"][cid]
        ids_ = cs["identities"]
        print(f"camera {cid}: {cs['frames_processed']} frames, {cs['detections']} detections, identities "
              f"{ids_['created']} created, {ids_['matched_identities']} matched, {ids_['seen']} seen"
              + (f"; failed: {result['camera_failures'][cid]}" if cid in result["camera_failures"] else ""))
    if out is not None:
        path = out / "summary.json"
        try:
            atomic_write_text(path, json.dumps(result, indent=2, default=float) + "\n")
        except OSError as e:
            if disk_full_error(e) is None:
                raise
            raise OutputError(f"{path}: no space left on device; summary.json not written", str(path)) from e
    return result
