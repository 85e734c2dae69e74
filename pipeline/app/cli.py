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
    p.add_argument("--camera", choices=STREAM_CAMERAS, default=[], action="append",
                   help="live source: the simulated RGB-D/IR/thermal camera (no hardware), an Intel "
                   "RealSense, an Azure Kinect, an OpenNI2 Kinect, an IR/thermal/UVC camera or a video file "
                   "through OpenCV (default: sim). Repeat it (or mix it with --replay) for several cameras "
                   "into one gallery")
    p.add_argument("--replay", type=Path, metavar="PATH", default=[], action="append",
                   help="replay a recording made by reid-record or reid-synth sequence, or a RealSense "
                   ".bag/.db3 or Kinect .mkv (no frame dropped); a site recorded by reid-synth site (a "
                   "directory with site.json) replays all its cameras. May be repeated")
    p.add_argument("--site", type=Path, metavar="FILE", help="site config YAML (configs/site/*.yaml): several "
                   "cameras, each with its own source, into one gallery; outputs name their camera")
    p.add_argument("--site-camera", action="append", default=[], metavar="ID",
                   help="run only this camera of the site (--site or a recorded site given to --replay; "
                   "repeatable): one process per camera sharing --gallery, with the site's links known")
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
    p.add_argument("--metrics", metavar="HOST:PORT", help="serve Prometheus metrics on http://HOST:PORT/metrics "
                   "and a health check on /healthz (output.metrics); a bare port binds 127.0.0.1, "
                   "0.0.0.0:9108 listens on every interface (containers)")
    p.add_argument("--serve", metavar="HOST:PORT", help="serve the browser view (live cameras, identities, "
                   "events; name / merge / forget identities; docs/web.md) on http://HOST:PORT/ (output.serve); "
                   "a bare port binds 127.0.0.1; another host needs --token")
    p.add_argument("--token", help="access token of the browser view (default: $REID_STREAM_TOKEN); required "
                   "when --serve binds beyond loopback; every request must carry it (?token= or X-Reid-Token)")
    p.add_argument("--gallery", metavar="URL", help="share the gallery with other reid-stream processes through "
                   "Redis, e.g. redis://127.0.0.1:6379/0 (gallery.url); default: the in-process gallery")
    return p


def stream_config_from_args(args: argparse.Namespace):
    """The :class:`StreamConfig` of a parsed command line (file, then flags, then key=value overrides)."""
    from reidstream.pipeline.app.config import StreamConfig

    flags: dict = {}
    cameras, replays = _listed(args.camera), _listed(args.replay)
    if len(cameras) + len(replays) > 1:
        raise ValueError(f"{len(cameras) + len(replays)} sources given (--camera / --replay): a run of several "
                         f"cameras is a site (site_config_from_args)")
    if replays:
        from reidstream.pipeline.app.sources import PLAYBACK_SUFFIXES

        replay = replays[0]
        kind = "recording" if replay.is_dir() else PLAYBACK_SUFFIXES.get(replay.suffix.lower())
        if kind is None:
            raise ValueError(f"--replay {replay}: expected a recording directory or a "
                             f"{', '.join(sorted(PLAYBACK_SUFFIXES))} file")
        flags["source.camera"] = kind
        flags["source.uri"] = str(replay)
    elif cameras:
        flags["source.camera"] = cameras[0]
    for key, value in (("source.uri", args.uri), ("source.serial", args.serial),
                       ("source.max_frames", args.max_frames)):
        if value is not None:
            flags[key] = value
    flags.update(_shared_flags(args))
    # JSON values are YAML too, and keep a device index such as "0" a string.
    try:
        return load_config(StreamConfig, args.config, [*(f"{k}={json.dumps(v)}" for k, v in flags.items()),
                                                       *args.overrides])
    except ConfigError as e:
        hint = sim_config_hint(args.config) if args.config is not None else None
        if hint is None:
            raise
        raise ConfigError(f"{e}\n{hint}") from None


def _shared_flags(args: argparse.Namespace) -> dict:
    """The config keys set by the options every run has, one camera or a site (bundle, outputs, endpoints)."""
    flags: dict = {}
    for key, value in (("bundle", args.bundle), ("output.dir", args.output), ("device", args.device),
                       ("output.metrics", getattr(args, "metrics", None)),
                       ("output.serve", getattr(args, "serve", None)),
                       ("gallery.url", getattr(args, "gallery", None))):
        if value is not None:
            flags[key] = str(value) if isinstance(value, Path) else value
    for key, on in (("output.show", args.show), ("output.video", args.video), ("output.privacy", args.privacy)):
        if on:
            flags[key] = True
    if args.overwrite or args.resume:
        flags["output.existing"] = "overwrite" if args.overwrite else "resume"
    return flags


def _listed(value) -> list:
    """An option's values as a list (one value, a repeated option's list, or none)."""
    return [] if value is None else list(value) if isinstance(value, list) else [value]


def is_site(args: argparse.Namespace) -> bool:
    """Whether the command line asks for several cameras: ``--site``, a repeated ``--camera`` / ``--replay``,
    or a recorded site directory (with ``site.json``) given to ``--replay``."""
    from reidstream.pipeline.app.site import SITE_FILE

    replays = _listed(args.replay)
    return getattr(args, "site", None) is not None or bool(getattr(args, "site_camera", None)) or \
        len(_listed(args.camera)) + len(replays) > 1 or \
        any((Path(r) / SITE_FILE).is_file() for r in replays)


def site_config_from_args(args: argparse.Namespace):
    """The :class:`~reidstream.pipeline.app.site.SiteConfig` of a command line with several cameras: the
    ``--site`` file (or the cameras of the repeated ``--camera`` / ``--replay`` options), then the flags,
    then key=value overrides. ``--max-frames`` and ``source.KEY=VALUE`` overrides apply to each camera's source."""
    from reidstream.pipeline.app.site import SiteConfig, cameras_from_args

    if args.uri is not None or args.serial is not None:
        raise ValueError("--uri / --serial name one camera; with several cameras, give each its source in a "
                         "--site file (cameras[i].source.uri)")
    if args.config is not None:
        raise ValueError("--config is a one-camera stream config; with several cameras put its keys in the "
                         "--site file (every stream config key but source, plus cameras)")
    flags: dict = {}
    listed, links = cameras_from_args(_listed(args.camera), [Path(r) for r in _listed(args.replay)])
    if getattr(args, "site_camera", None):
        flags["run"] = list(args.site_camera)
    if listed and args.site is not None:
        raise ValueError("--site lists the cameras; --camera / --replay cannot be added to it")
    flags.update(_shared_flags(args))
    overrides = [*(f"{k}={json.dumps(v)}" for k, v in flags.items())]
    if listed:
        overrides.append(f"cameras={json.dumps(listed)}")
    if links:
        overrides.append(f"links={json.dumps(links)}")
    # source.KEY=VALUE (and --max-frames) apply to every camera's source
    per_source = [o for o in args.overrides if o.partition("=")[0].strip().startswith("source.")]
    if args.max_frames is not None:
        per_source.append(f"source.max_frames={args.max_frames}")
    cfg = load_config(SiteConfig, args.site, [*overrides, *(o for o in args.overrides if o not in per_source)])
    if per_source:
        from reidstream.pipeline.app.config import SourceConfig
        from reidstream.pipeline.config import config_from_mapping, parse_overrides

        changes = {k[len("source."):]: v for k, v in parse_overrides(per_source).items()}
        cfg = cfg.model_copy(update={"cameras": [c.model_copy(update={"source": config_from_mapping(
            SourceConfig, c.source.model_dump(), f"camera {c.id}: source", changes)}) for c in cfg.cameras]})
    return cfg


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
        site = is_site(args)
        cfg = site_config_from_args(args) if site else stream_config_from_args(args)
        if (args.overwrite or args.resume) and cfg.output.dir is None:
            raise ValueError(f"{'--overwrite' if args.overwrite else '--resume'} needs an output directory "
                             f"(--output DIR)")
        say = lambda msg: print(f"reid-stream: {msg}", file=sys.stderr, flush=True)  # noqa: E731
        import os

        token = getattr(args, "token", None) or os.environ.get("REID_STREAM_TOKEN") or None
        if site:
            from reidstream.pipeline.app.site_stream import stream_site

            summary = stream_site(cfg, progress=say, token=token)
        else:
            summary = stream(cfg, progress=say, token=token)
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
