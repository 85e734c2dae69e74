"""Command-line entry points of the live system: ``reid-stream`` and ``reid-record``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reidstream.pipeline.config import ConfigError, load_config, parse_args_with_overrides

CAMERAS = ("sim", "realsense", "kinect", "ir", "thermal", "webcam")
_BUILT_CAMERAS = ("sim",)


def _not_built(prog: str, what: str) -> int:
    print(f"{prog}: {what} is not built yet in this version of reid-stream (it lands with the live "
          f"pipeline: camera sources, detection, embedding and the cross-modal gallery).\n"
          f"Available now: 'reid-synth preview', 'reid-synth sequence', 'reid-record --camera sim'.",
          file=sys.stderr)
    return 2


def stream_parser() -> argparse.ArgumentParser:
    """The ``reid-stream`` argument parser."""
    p = argparse.ArgumentParser(
        prog="reid-stream",
        description="Real-time cross-modal person re-identification: read frames from a camera or a "
        "recording, detect people, embed each one in every modality the frame has (colour, depth, IR, "
        "thermal) and keep one identity per person across time and modalities.",
        epilog="Examples: reid-stream --camera sim --show | reid-stream --camera realsense --output runs/desk | "
        "reid-stream --replay recordings/hall --output runs/hall. Config values can be overridden with "
        "key=value arguments anywhere on the line.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--camera", choices=CAMERAS, default="sim",
                     help="live source: the simulated RGB-D/IR/thermal camera (no hardware), an Intel "
                     "RealSense, an Azure Kinect, an IR/thermal/UVC camera through OpenCV (default: sim)")
    src.add_argument("--replay", type=Path, metavar="PATH", help="replay a recording made by reid-record "
                     "or reid-synth sequence (as fast as possible, no frame dropped)")
    p.add_argument("--config", type=Path, help="stream config YAML (configs/stream/*.yaml)")
    p.add_argument("--bundle", type=Path, help="model bundle directory (default: the embedded bundle)")
    p.add_argument("--output", type=Path, help="directory for events (JSON lines), tracks and video")
    p.add_argument("--show", action="store_true", help="open a live window")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    return p


def stream_main(argv: list[str] | None = None) -> int:
    """Entry point of ``reid-stream``."""
    parse_args_with_overrides(stream_parser(), argv)
    return _not_built("reid-stream", "the live re-identification pipeline")


def record_parser() -> argparse.ArgumentParser:
    """The ``reid-record`` argument parser."""
    p = argparse.ArgumentParser(
        prog="reid-record",
        description="Record a camera to the reid-stream recording format (per-frame colour, 16-bit depth, "
        "IR, thermal, timestamps, intrinsics, ground truth when the source has it; see "
        "docs/recording-format.md). Ctrl-C stops and keeps every complete frame. Source config values (for sim: configs/sim/*.yaml keys) "
        "can be overridden with key=value arguments, e.g. crowd.people=6 lighting.level=0.05.")
    p.add_argument("out", type=Path, help="output recording directory")
    p.add_argument("--camera", choices=CAMERAS, default="sim", help="source camera (default: sim)")
    p.add_argument("--frames", type=int, help="stop after this many frames (default: until Ctrl-C)")
    p.add_argument("--config", type=Path, help="source config YAML (for sim: configs/sim/*.yaml)")
    p.add_argument("--colour-format", choices=["png", "jpg"], default="png",
                   help="lossless PNG (default) or JPEG for long recordings")
    p.add_argument("--realtime", action="store_true", help="pace the simulated camera at its frame rate")
    p.add_argument("--overwrite", action="store_true", help="replace an existing recording at OUT")
    return p


def record_main(argv: list[str] | None = None) -> int:
    """Entry point of ``reid-record``."""
    args = parse_args_with_overrides(record_parser(), argv)
    if args.camera not in _BUILT_CAMERAS:
        return _not_built("reid-record", f"the '{args.camera}' camera source")
    from reidstream.pipeline.recording import record
    from reidstream.pipeline.sim.config import SimConfig
    from reidstream.pipeline.sources.sim import SimSource

    try:
        cfg = load_config(SimConfig, args.config, args.overrides)
        source = SimSource.from_config(cfg, max_frames=args.frames, realtime=args.realtime)

        def progress(n: int) -> None:
            print(f"\r  recorded {n} frames" + (f"/{args.frames}" if args.frames else ""), end="",
                  file=sys.stderr, flush=True)

        n = record(source, args.out, max_frames=args.frames, progress=progress, 
                   overwrite=args.overwrite, colour_format=args.colour_format, description=f"reid-record --camera {args.camera}")
    except (ConfigError, FileExistsError, ValueError) as e:
        print(f"reid-record: error: {e}", file=sys.stderr)
        return 2
    print(f"\nwrote {n} frames to {args.out}", file=sys.stderr)
    return 0
