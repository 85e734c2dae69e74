"""``reid-synth``: the simulated camera world from the command line.

Sub-commands:
    preview   PNG mosaic of RGB / depth / IR / thermal for a few frames, with crops.
    bench     Renderer frames/s at a resolution, with and without people.
    sequence  A recorded multi-person sequence with ground truth (recording format).
    dataset   Labelled crop datasets in the on-disk layouts of real datasets, or
              (layout ``pipeline``) cut by the live pipeline's detector, lit and dark.
    site      A multi-camera site (configs/sim/site-*.yaml): one recording per camera plus site.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2

from reidstream.pipeline.config import ConfigError, load_config, parse_args_with_overrides
from reidstream.pipeline.sim.config import SimConfig


def _add_world_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="sim config YAML (default: built-in defaults, as configs/sim/default.yaml)")


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    return values


def _world_config(args: argparse.Namespace) -> SimConfig:
    return load_config(SimConfig, args.config, args.overrides)


def cmd_preview(args: argparse.Namespace) -> int:
    from reidstream.pipeline.sim.preview import mosaic
    from reidstream.pipeline.sim.world import SimWorld

    world = SimWorld.from_config(_world_config(args))
    frames = []
    for i in range(args.skip + args.frames * args.every):
        item = world.step()
        if i >= args.skip and (i - args.skip) % args.every == 0:
            frames.append(item)
    img = mosaic(frames, tile_width=args.tile_width)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.out), img):
        print(f"reid-synth preview: could not write {args.out}", file=sys.stderr)
        return 1
    people = sum(len(f.annotations) for f in frames)
    print(f"wrote {args.out} ({img.shape[1]}x{img.shape[0]}): {len(frames)} frames, {people} people in view")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from reidstream.pipeline.sim.world import SimWorld

    base = _world_config(args)
    print(f"renderer benchmark: {base.camera.width}x{base.camera.height}, modalities {','.join(base.modalities)}, "
          f"{args.frames} frames after {args.warmup} warm-up")
    results = {}
    for people in args.people:
        cfg = base.model_copy(update={"crowd": base.crowd.model_copy(update={"people": people, "mean_gap_s": 0.0})})
        world = SimWorld.from_config(cfg)
        for _ in range(args.warmup):
            world.step()
        in_view = 0
        t0 = time.perf_counter()
        for _ in range(args.frames):
            in_view += len(world.step().annotations)
        dt = time.perf_counter() - t0
        results[people] = args.frames / dt
        print(f"  people={people:<2d}  {results[people]:6.1f} frames/s  {1000 * dt / args.frames:6.1f} ms/frame  "
              f"(mean {in_view / args.frames:.1f} people in view)")
    if 0 in results and len(results) > 1:
        for people, fps in results.items():
            if people:
                print(f"  cost of {people} people over the empty room: "
                      f"{1000 / fps - 1000 / results[0]:.1f} ms/frame")
    crowded = [fps for people, fps in results.items() if people]
    if crowded:
        verdict = "OK" if min(crowded) >= args.target else "BELOW TARGET"
        print(f"live-source target: >= {args.target:.0f} frames/s with people -> {verdict}")
    return 0


def cmd_sequence(args: argparse.Namespace) -> int:
    from reidstream.pipeline.recording import record
    from reidstream.pipeline.sources.sim import SimSource

    cfg = _world_config(args)
    source = SimSource.from_config(cfg, max_frames=args.frames)

    def progress(n: int) -> None:
        print(f"\r  {n}/{args.frames} frames", end="", file=sys.stderr, flush=True)

    n = record(source, args.out, max_frames=args.frames, progress=progress,
               overwrite=args.overwrite, description=f"reid-synth sequence seed={cfg.seed}")
    print(file=sys.stderr)
    print(f"wrote {n} frames with ground truth to {args.out}")
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    from reidstream.pipeline.sim.config import SimSiteConfig
    from reidstream.pipeline.sim.site import record_site

    cfg = load_config(SimSiteConfig, args.config, args.overrides)

    def progress(camera: str, n: int, total: int) -> None:
        if n % 50 == 0 or n == total:
            print(f"\r  {camera}: {n}/{total} frames", end="\n" if n == total else "", file=sys.stderr, flush=True)

    site = record_site(cfg, args.out, overwrite=args.overwrite, progress=progress,
                       description=f"reid-synth site {args.config} seed={cfg.seed}")
    for cam in site.cameras:
        print(f"wrote {cam.frames} frames of {cam.camera_id} ({cam.light}, {'+'.join(cam.modalities)}) to {cam.path}")
    print(f"wrote {args.out / 'site.json'}: {len(site.cameras)} cameras, {len(site.people)} people, "
          f"{len(site.visits)} visits")
    return 0


_PIPELINE_OPTIONS = ("group", "people", "frames", "every", "min_crops", "workers", "dark_rgb")


def cmd_dataset(args: argparse.Namespace) -> int:
    given = {k: getattr(args, k) for k in _PIPELINE_OPTIONS if getattr(args, k) is not None}
    if args.layout == "pipeline":
        from reidstream.training.synth_pipeline_crops import write_pipeline_dataset

        counts = write_pipeline_dataset(args.out, _world_config(args), identities=args.identities,
                                        train_fraction=args.train_fraction, seed=args.seed,
                                        overwrite=args.overwrite, **given)
    else:
        if given:
            names = ", ".join("--" + k.replace("_", "-") for k in given)
            raise ValueError(f"{names}: only with the pipeline layout")
        from reidstream.training.synth_data import write_dataset

        counts = write_dataset(args.layout, args.out, _world_config(args), identities=args.identities,
                               train_fraction=args.train_fraction, images_per_camera=args.images,
                               overwrite=args.overwrite, seed=args.seed)
    print(f"wrote {args.layout} layout to {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``reid-synth`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="reid-synth", description="Simulated RGB-D/IR/thermal camera world: previews, benchmarks, "
        "recorded sequences with ground truth, and labelled crop datasets in real datasets' layouts. "
        "Every sub-command accepts --config SIM.yaml and key=value overrides of it anywhere on the line, "
        "e.g. crowd.people=6 lighting.level=0.05 camera.tilt_deg=20.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("preview", help="write a PNG mosaic of all modalities for a few frames, with crops")
    p.add_argument("--out", type=Path, default=Path("preview.png"), help="output PNG (default: preview.png)")
    p.add_argument("--frames", type=int, default=3, help="frames to show (default: 3)")
    p.add_argument("--every", type=int, default=20, help="frames between shown frames (default: 20)")
    p.add_argument("--skip", type=int, default=0, help="frames to skip first (default: 0)")
    p.add_argument("--tile-width", type=int, default=320, help="width of one tile in pixels (default: 320)")
    _add_world_args(p)
    p.set_defaults(func=cmd_preview)
    p = sub.add_parser("bench", help="print the renderer's frames/s, against the empty room")
    p.add_argument("--frames", type=int, default=60, help="timed frames per setting (default: 60)")
    p.add_argument("--warmup", type=int, default=5, help="untimed frames first (default: 5)")
    p.add_argument("--people", type=_int_list, default=[0, 4],
                   help="comma-separated crowd sizes to time; 0 is the empty-room baseline (default: 0,4)")
    p.add_argument("--target", type=float, default=15.0, help="frames/s a live source needs (default: 15)")
    _add_world_args(p)
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("sequence", help="record a multi-person sequence with ground truth")
    p.add_argument("out", type=Path, help="output recording directory")
    p.add_argument("--frames", type=int, default=300, help="number of frames (default: 300)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing recording at OUT")
    _add_world_args(p)
    p.set_defaults(func=cmd_sequence)
    p = sub.add_parser("dataset", help="write a labelled crop dataset in a real dataset's on-disk layout")
    p.add_argument("layout", choices=["biwi", "robotpku", "sysu", "regdb", "openreid", "folder", "pipeline"],
                   help="biwi/robotpku: paired RGB + depth; sysu: RGB + IR cameras; regdb: RGB + thermal; "
                   "openreid: Hafner et al.'s open-reid copies (OUT and OUT_depth); folder: generic "
                   "<split>/<pid>/<modality>/ tree with all four modalities; pipeline: the folder tree cut by "
                   "reid-stream's own detector and crop function from people walking through the room, every "
                   "person lit (camera c00) and dark (c01), with crops.jsonl (light, distance, border cut)")
    p.add_argument("out", type=Path, help="output dataset root")
    p.add_argument("--identities", type=int, default=40, help="number of people (default: 40)")
    p.add_argument("--train-fraction", type=float, default=0.5, help="share of identities for training (default: 0.5)")
    p.add_argument("--images", type=int, default=8,
                   help="images per person per camera/sequence (default: 8; not pipeline)")
    p.add_argument("--seed", type=int, default=0, help="seed of identities, splits and poses (default: 0)")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty OUT")
    g = p.add_argument_group("pipeline layout")
    g.add_argument("--group", type=int, help="identities walking the room together (default: 5)")
    g.add_argument("--people", type=int, help="people in the room at once (default: 4)")
    g.add_argument("--frames", type=int, help="rendered frames per group and light (default: 60)")
    g.add_argument("--every", type=int, help="world frames per rendered frame (default: 8, 0.27 s at 30 fps)")
    g.add_argument("--min-crops", type=int, help="render up to twice --frames while a person has fewer "
                   "crops under a light (default: 8)")
    g.add_argument("--workers", type=int, help="processes rendering groups in parallel (default: 1)")
    g.add_argument("--dark-rgb", action="store_true", default=None,
                   help="keep colour crops of frames too dark for colour")
    _add_world_args(p)
    p.set_defaults(func=cmd_dataset)
    p = sub.add_parser("site", help="record a simulated multi-camera site: OUT/<camera_id>/ recordings + site.json",
                       description="Records every camera of a simulated site (people walking between connected "
                       "rooms, global ground-truth ids, one clock) for duration_s: one recording per camera in "
                       "OUT/<camera_id>/ (each replays alone with reid-stream --replay) and OUT/site.json.")
    p.add_argument("config", type=Path, help="site config YAML, e.g. configs/sim/site-two-rooms.yaml")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--overwrite", action="store_true", help="replace an existing site recording at OUT")
    p.set_defaults(func=cmd_site)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``reid-synth``."""
    args = parse_args_with_overrides(build_parser(), argv)
    try:
        return args.func(args)
    except (ConfigError, FileExistsError, FileNotFoundError, ValueError) as e:
        print(f"reid-synth {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
