"""Command-line entry points of the live system: ``reid-stream`` and ``reid-record``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from reidstream.pipeline.config import ConfigError, load_config, parse_args_with_overrides

STREAM_CAMERAS = ("sim", "realsense", "kinect", "openni", "ir", "thermal", "webcam", "video")
EXIT_ERROR = 2
"""``reid-stream`` exit status: the run could not start (config, source, bundle, output directory)."""
EXIT_SKIPPED = 3
"""``reid-stream`` exit status: the run completed but skipped frames (missing or corrupt files of a recording)."""


def stream_parser() -> argparse.ArgumentParser:
    """The ``reid-stream`` argument parser."""
    p = argparse.ArgumentParser(
        prog="reid-stream",
        description="Real-time cross-modal person re-identification: read frames from a camera or a "
        "recording, detect people, embed each one in every modality the frame has (colour, depth, IR, "
        "thermal) and keep one identity per person across time and modalities.",
        epilog="Examples: reid-stream --camera sim --show | reid-stream --camera realsense --output runs/desk | "
        "reid-stream --replay recordings/hall --output runs/hall. Config values (configs/stream/default.yaml) "
        "can be overridden with key=value arguments anywhere on the line, e.g. gallery.threshold=0.3. "
        f"Exit status: 0 done; {EXIT_ERROR} the run could not start (bad config, source, bundle or output "
        f"directory, or no detector for the source's streams) or an output could not be written (no space left on "
        f"device: the file is named, the logs end at their last complete line, gallery.npz is the last saved); "
        f"{EXIT_SKIPPED} the run completed but skipped frames "
        "whose image files are missing or corrupt (each named on stderr, counted as frames_skipped in summary.json).")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--camera", choices=STREAM_CAMERAS, default=None,
                     help="live source: the simulated RGB-D/IR/thermal camera (no hardware), an Intel "
                     "RealSense, an Azure Kinect, an OpenNI2 Kinect, an IR/thermal/UVC camera or a video file "
                     "through OpenCV (default: sim)")
    src.add_argument("--replay", type=Path, metavar="PATH", help="replay a recording made by reid-record "
                     "or reid-synth sequence, or a RealSense .bag/.db3 or Kinect .mkv (no frame dropped)")
    p.add_argument("--uri", help="device index/path, URL or file of --camera (e.g. 0, /dev/video2, rtsp://...)")
    p.add_argument("--serial", help="RealSense serial number")
    p.add_argument("--config", type=Path, help="stream config YAML (configs/stream/*.yaml)")
    p.add_argument("--bundle", type=Path, help="model bundle directory (default: the embedded bundle)")
    p.add_argument("--output", type=Path, help="directory for events (JSON lines), tracks, gallery and video; "
                   "one that already holds a run's outputs is refused unless --overwrite or --resume")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--overwrite", action="store_true", help="delete the outputs of an earlier run in --output "
                       "and start afresh (output.existing=overwrite)")
    again.add_argument("--resume", action="store_true", help="continue the earlier run in --output: reload its "
                       "gallery.npz (identities kept) and append to its logs (output.existing=resume)")
    p.add_argument("--show", action="store_true", help="open a live window")
    p.add_argument("--video", action="store_true", help="write an annotated video to the output directory")
    p.add_argument("--privacy", action="store_true", help="never write colour pixels to disk")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--device", help="cpu (default), cuda or cuda:N for the embedders")
    return p


def stream_config_from_args(args: argparse.Namespace):
    """The :class:`StreamConfig` of a parsed command line (file, then flags, then key=value overrides)."""
    from reidstream.pipeline.app.config import StreamConfig

    flags: dict = {}
    if args.replay is not None:
        from reidstream.pipeline.app.sources import PLAYBACK_SUFFIXES

        kind = "recording" if args.replay.is_dir() else PLAYBACK_SUFFIXES.get(args.replay.suffix.lower())
        if kind is None:
            raise ValueError(f"--replay {args.replay}: expected a recording directory or a "
                             f"{', '.join(sorted(PLAYBACK_SUFFIXES))} file")
        flags["source.camera"] = kind
        flags["source.uri"] = str(args.replay)
    elif args.camera is not None:
        flags["source.camera"] = args.camera
    for key, value in (("source.uri", args.uri), ("source.serial", args.serial), ("bundle", args.bundle),
                       ("output.dir", args.output), ("source.max_frames", args.max_frames),
                       ("device", args.device)):
        if value is not None:
            flags[key] = str(value) if isinstance(value, Path) else value
    for key, on in (("output.show", args.show), ("output.video", args.video), ("output.privacy", args.privacy)):
        if on:
            flags[key] = True
    if args.overwrite or args.resume:
        flags["output.existing"] = "overwrite" if args.overwrite else "resume"
    # JSON values are YAML too, and keep a device index such as "0" a string.
    try:
        return load_config(StreamConfig, args.config, [*(f"{k}={json.dumps(v)}" for k, v in flags.items()),
                                                       *args.overrides])
    except ConfigError as e:
        hint = sim_config_hint(args.config) if args.config is not None else None
        if hint is None:
            raise
        raise ConfigError(f"{e}\n{hint}") from None


def sim_config_hint(path: Path) -> str | None:
    """A hint when ``path``, given to ``reid-stream --config``, is a simulator world config.

    Args:
        path: The file given as the stream config.

    Returns:
        A sentence saying to pass it as ``source.sim=PATH`` when every top-level key that is not a
        stream config key is a key of :class:`~reidstream.pipeline.sim.config.SimConfig`; None otherwise
        (also when the file cannot be read as YAML).
    """
    import yaml

    from reidstream.pipeline.sim.config import SimConfig
    from reidstream.pipeline.app.config import StreamConfig

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return None
    if not isinstance(data, dict):
        return None
    foreign = [str(k) for k in data if k not in StreamConfig.model_fields]
    if not foreign or not set(foreign) <= set(SimConfig.model_fields):
        return None
    return (f"{path} is a simulator world config (keys {', '.join(foreign)}: configs/sim/*.yaml), not a stream "
            f"config (configs/stream/*.yaml); pass it as source.sim={path}, e.g. "
            f"reid-stream --camera sim source.sim={path}")


def stream_main(argv: list[str] | None = None) -> int:
    """Entry point of ``reid-stream``."""
    args = parse_args_with_overrides(stream_parser(), argv)
    from reidstream.pipeline.app.stream import stream
    from reidstream.pipeline.bundle import BundleError
    from reidstream.pipeline.sources.base import SourceError

    try:
        cfg = stream_config_from_args(args)
        if (args.overwrite or args.resume) and cfg.output.dir is None:
            raise ValueError(f"{'--overwrite' if args.overwrite else '--resume'} needs an output directory "
                             f"(--output DIR)")
        summary = stream(cfg, progress=lambda msg: print(f"reid-stream: {msg}", file=sys.stderr, flush=True))
    except (ConfigError, BundleError, SourceError, FileNotFoundError, FileExistsError, ValueError,
            RuntimeError) as e:
        print(f"reid-stream: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:
        from reidstream.pipeline.sinks.jsonl import is_disk_full

        if not is_disk_full(e):
            raise
        print(f"reid-stream: error: {e.filename or 'an output file'}: no space left on device", file=sys.stderr)
        return EXIT_ERROR
    if summary.get("frames_skipped"):
        print(f"reid-stream: {summary['frames_skipped']} frames skipped (missing or corrupt image files, named "
              f"above); exit status {EXIT_SKIPPED}", file=sys.stderr)
        return EXIT_SKIPPED
    return 0


def record_parser() -> argparse.ArgumentParser:
    """The ``reid-record`` argument parser."""
    p = argparse.ArgumentParser(
        prog="reid-record",
        description="Record a camera to the reid-stream recording format (per-frame colour, 16-bit depth, "
        "IR, thermal, timestamps, intrinsics, ground truth when the source has it; see "
        "docs/recording-format.md). Ctrl-C stops and keeps every complete frame. Source config values (for sim: configs/sim/*.yaml keys) "
        "can be overridden with key=value arguments, e.g. crowd.people=6 lighting.level=0.05.")
    p.add_argument("out", type=Path, help="output recording directory")
    p.add_argument("--camera", choices=STREAM_CAMERAS, default="sim", help="source camera (default: sim)")
    p.add_argument("--uri", help="device index/path, URL or file of the camera (e.g. 0, /dev/video2)")
    p.add_argument("--serial", help="RealSense serial number")
    p.add_argument("--frames", type=int, help="stop after this many frames (default: until Ctrl-C)")
    p.add_argument("--config", type=Path, help="source config YAML (sim: configs/sim/*.yaml; other cameras: the "
                   "source section of configs/stream/default.yaml)")
    p.add_argument("--colour-format", choices=["png", "jpg"], default="png",
                   help="lossless PNG (default) or JPEG for long recordings")
    p.add_argument("--realtime", action="store_true", help="pace the simulated camera at its frame rate")
    p.add_argument("--overwrite", action="store_true", help="replace an existing recording at OUT (the new one is "
                   "written beside it and swapped in at the end; if recording fails the old one stays)")
    return p


def record_main(argv: list[str] | None = None) -> int:
    """Entry point of ``reid-record``."""
    args = parse_args_with_overrides(record_parser(), argv)
    from reidstream.pipeline.recording import record
    from reidstream.pipeline.sim.config import SimConfig
    from reidstream.pipeline.sources.base import SourceError
    from reidstream.pipeline.sources.sim import SimSource

    try:
        if args.camera == "sim":
            cfg = load_config(SimConfig, args.config, args.overrides)
            source = SimSource.from_config(cfg, max_frames=args.frames, realtime=args.realtime)
        else:
            from reidstream.pipeline.sources.live import open_from_config
            from reidstream.pipeline.app.config import SourceConfig

            flags = {"camera": args.camera, "uri": args.uri, "serial": args.serial, "max_frames": args.frames}
            source = open_from_config(load_config(SourceConfig, args.config, [
                *(f"{k}={json.dumps(v)}" for k, v in flags.items() if v is not None), *args.overrides]))

        def progress(n: int) -> None:
            print(f"\r  recorded {n} frames" + (f"/{args.frames}" if args.frames else ""), end="",
                  file=sys.stderr, flush=True)

        try:
            n = record(source, args.out, max_frames=args.frames, progress=progress, overwrite=args.overwrite,
                       colour_format=args.colour_format, description=f"reid-record --camera {args.camera}")
        finally:
            source.close()
    except (ConfigError, FileExistsError, ValueError, SourceError) as e:
        print(f"reid-record: error: {e}", file=sys.stderr)
        return 2
    print(f"\nwrote {n} frames to {args.out}", file=sys.stderr)
    return 0
