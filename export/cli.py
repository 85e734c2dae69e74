"""Command-line entry point of export: ``reid-export {bundle,calibrate,evaluate,verify,benchmark,triton,inspect}``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

EPILOG = """examples:
  reid-export bundle runs/distill/best.pt runs/lupi/best.pt --out models/my-bundle
  reid-export bundle runs/distill/best.pt --out models/trt --runtimes torch,onnx,tensorrt --precision fp16
  reid-export verify models/my-bundle            # crops from each model's own training data (test split)
  reid-export calibrate models/my-bundle         # evidence calibration from simulated day-night sequences
  reid-export calibrate models/my-bundle --recordings rec/hall rec/lobby   # ... or from labelled recordings
  reid-export evaluate models/my-bundle --data data/synth-pipeline   # mAP per light on pipeline-style crops
  reid-export benchmark models/my-bundle --batches 1 8 32
  reid-export triton models/my-bundle --out triton-repo
"""


def _batch(text: str):
    from reidstream.pipeline.bundle import BatchRange

    try:
        lo, opt, hi = (int(v) for v in text.split(","))
        return BatchRange(min=lo, opt=opt, max=hi)
    except (ValueError, TypeError) as e:
        raise argparse.ArgumentTypeError(f"expected MIN,OPT,MAX batch sizes such as 1,8,32 ({e})") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reid-export", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Export trained embedders (and the person detector) to ONNX and TensorRT as a self-describing "
                    "model bundle, check it against PyTorch, and measure it.")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("bundle", help="checkpoints (+ YOLO detector) -> model bundle")
    b.add_argument("checkpoints", nargs="*", type=Path, help="training checkpoints (each keeps its embedding space)")
    b.add_argument("--out", type=Path, required=True, help="bundle directory to create")
    b.add_argument("--runtimes", default="torch,onnx", help="comma list of torch, onnx, tensorrt (default torch,onnx)")
    b.add_argument("--precision", default="fp16", choices=("fp32", "fp16", "int8"), help="TensorRT precision")
    b.add_argument("--batch", type=_batch, default=None, help="batch range MIN,OPT,MAX (default 1,8,32)")
    b.add_argument("--opset", type=int, default=17)
    b.add_argument("--simplify", action="store_true", help="simplify ONNX graphs with onnxslim")
    b.add_argument("--calib-data", type=Path, help="dataset root of INT8 calibration crops")
    b.add_argument("--calib-layout", help="layout of --calib-data (biwi, robotpku, sysu, regdb, openreid, folder)")
    b.add_argument("--calib-count", type=int, default=256, help="calibration crops per modality")
    b.add_argument("--detector", type=Path, help="ultralytics YOLO .pt to export too (a pickle: trusted files only)")
    b.add_argument("--detector-runtimes", default="onnx", help="comma list of onnx, tensorrt, torch")
    b.add_argument("--detector-modalities", default="rgb", help="modalities the detector sees (rgb, ir, thermal)")
    b.add_argument("--detector-imgsz", type=int, default=640)
    b.add_argument("--detector-classes", default=None,
                   help="comma list of class ids or names kept as people (default: the model's 'person' class; "
                        "e.g. Normal,Fall); the same rule as detector.classes of reid-stream")
    b.add_argument("--eval-metrics", nargs="*", default=[], metavar="CKPT=JSON",
                   help="attach evaluation metrics (reid-eval's metrics.json) to a checkpoint's model")
    b.add_argument("--centre", action="append", default=[], metavar="SPACE=DATA",
                   help="subtract each modality's mean unit embedding over DATA's training crops in that space's "
                        "networks (a cross-modal space: colour and infrared clouds centred on each other)")
    b.add_argument("--centre-layout", default="folder", help="layout of the --centre datasets (default folder)")
    b.add_argument("--centre-count", type=int, default=5000, help="crops per modality for each mean")
    b.add_argument("--force", action="store_true", help="replace an existing bundle (after the new one is complete)")
    b.add_argument("--verify", action="store_true", help="run `verify` on the new bundle")
    b.add_argument("--calibrate", action="store_true", help="run `calibrate` on the new bundle")

    c = sub.add_parser("calibrate", help="the gallery's evidence calibration (per-cue LLRs, fusion weights, open-set "
                       "threshold) from tracks with ground truth, into the manifest")
    _bundle_arg(c)
    c.add_argument("--recordings", type=Path, nargs="*", default=[],
                   help="labelled recordings (reid-record / reid-synth sequence); default: render simulated day-night "
                        "sequences (--sim-seeds)")
    c.add_argument("--sim-seeds", type=int, nargs="*", default=[101, 102, 103],
                   help="motion seeds of the simulated calibration sequences (default 101 102 103)")
    c.add_argument("--sim-frames", type=int, default=1800, help="frames per simulated sequence (15 fps)")
    c.add_argument("--population-seed", type=int, default=3,
                   help="population of the simulated people (default 3: neither training nor evaluation people)")
    c.add_argument("--work", type=Path, default=Path("runs/calibration"), help="where simulated sequences are cached")
    c.add_argument("--false-merge-rate", type=float, default=0.05,
                   help="share of first-time visitors allowed to join a known identity (default 0.05)")
    c.add_argument("--min-auc", type=float, default=0.6, help="cues below this AUC add nothing (default 0.6)")
    c.add_argument("--min-pairs", type=int, default=20,
                   help="a cue (per light) is fitted only with this many same- and different-person pairs (default 20)")
    c.add_argument("--set", dest="sets", nargs="*", default=[],
                   help="reid-stream config overrides for the front end (detector, tracker, body), key=value")
    c.add_argument("--json", type=Path, help="also write the calibration to this JSON file")

    e = sub.add_parser("evaluate", help="the bundle's networks, as the pipeline runs them, on a labelled crop "
                       "dataset: mAP / rank-k per feature pair and light (camera 1 dark vs camera 0 lit)")
    _bundle_arg(e)
    e.add_argument("--data", type=Path, required=True,
                   help="crop dataset, e.g. from reid-synth dataset pipeline (camera 0 lit, camera 1 dark)")
    e.add_argument("--layout", default="folder",
                   help="its layout (default: folder); sysu: the SYSU-MM01 protocol (IR <-> RGB) and RGB -> RGB")
    e.add_argument("--subset", default="test", help="split to evaluate (default: test)")
    e.add_argument("--json", type=Path, help="also write the figures to this JSON file")

    v = sub.add_parser("verify", help="parity of every runtime against PyTorch on real crops")
    _bundle_arg(v)
    _data_args(v, limit=200)
    v.add_argument("--topk", type=int, default=5)
    v.add_argument("--min-cosine", type=float, help="fail below this cosine (default per precision: fp32 0.9999)")
    v.add_argument("--min-topk", type=float, help="fail below this fraction of top-k lists identical up to ties "
                   "(fp32: 1.0)")
    v.add_argument("--device", default="cpu")
    v.add_argument("--json", type=Path, help="also write the figures to this JSON file")

    m = sub.add_parser("benchmark", help="embedder crops/s: PyTorch vs ONNX Runtime (vs TensorRT)")
    _bundle_arg(m)
    m.add_argument("--model", help="model id (default: the first)")
    m.add_argument("--modality", help="modality (default: the model's first)")
    m.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    m.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    m.add_argument("--device", default="cpu")
    m.add_argument("--per-crop", action="store_true",
                   help="instead: ms per crop of every ONNX network of the bundle on the CPU, side by side, at the "
                        "first --batches size (the live pipeline's per-network budget)")
    m.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads for --per-crop (default 1)")
    m.add_argument("--budget-ms", type=float, help="with --per-crop: mark networks over this many ms per crop")

    t = sub.add_parser("triton", help="write a Triton Inference Server model repository from a bundle")
    _bundle_arg(t)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--instances", type=int, default=1)
    t.add_argument("--force", action="store_true")

    i = sub.add_parser("inspect", help="check a bundle (files, checksums) and print what it holds")
    _bundle_arg(i)
    return p


def _bundle_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", type=Path, help="model bundle directory")


def _data_args(p: argparse.ArgumentParser, limit: int) -> None:
    """Where crops of identities unseen in training come from (``verify``, ``calibrate``)."""
    p.add_argument("--data", type=Path, help="evaluation dataset root (default: each model's training data)")
    p.add_argument("--layout", help="layout of --data")
    p.add_argument("--trial", type=int, help="RegDB trial")
    p.add_argument("--split", default="test", help="split of identities unseen in training (default test)")
    p.add_argument("--limit", type=int, default=limit, help=f"crops per modality (default {limit})")


def _split(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def _say(msg: str) -> None:
    print(f"reid-export: {msg}", file=sys.stderr, flush=True)


def _cmd_bundle(a: argparse.Namespace) -> int:
    from reidstream.export.bundle import export_bundle
    from reidstream.export.centring import parse_centres
    from reidstream.export.verify import dataset_crops

    centres = parse_centres(a.centre)
    metrics = {}
    for item in a.eval_metrics:
        ckpt, sep, path = item.partition("=")
        if not sep:
            raise ValueError(f"--eval-metrics {item!r}: expected CKPT=JSON")
        try:
            metrics[ckpt] = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"--eval-metrics {path}: not a readable JSON file ({e})") from None
    calibration = None
    if a.calib_data:
        if not a.calib_layout:
            raise ValueError("--calib-data needs --calib-layout")
        sets = dataset_crops(a.calib_layout, a.calib_data, ("rgb", "depth", "ir", "thermal"), split="train",
                             limit=a.calib_count)
        calibration = {m: list(s.crops) for m, s in sets.items()}
    bundle = export_bundle(a.checkpoints, a.out, runtimes=_split(a.runtimes), precision=a.precision, batch=a.batch,
                           opset=a.opset, simplify=a.simplify, calibration=calibration, detector=a.detector,
                           detector_runtimes=_split(a.detector_runtimes),
                           detector_modalities=_split(a.detector_modalities), detector_imgsz=a.detector_imgsz,
                           detector_classes=_split(a.detector_classes) if a.detector_classes else None,
                           eval_metrics=metrics, centres=centres, centre_layout=a.centre_layout,
                           centre_limit=a.centre_count, force=a.force, progress=_say)
    print(_describe(bundle))
    if a.calibrate:
        code = _cmd_calibrate(argparse.Namespace(bundle=a.out, recordings=[], sim_seeds=[101, 102, 103],
                                                 sim_frames=1800, population_seed=3, work=Path("runs/calibration"),
                                                 false_merge_rate=0.05, min_auc=0.6, min_pairs=20, sets=[],
                                                 json=None))
        if code:
            return code
    if a.verify:
        return _cmd_verify(argparse.Namespace(bundle=a.out, data=None, layout=None, trial=None, split="test",
                                              limit=200, topk=5, min_cosine=None, min_topk=None, device="cpu",
                                              json=None))
    return 0


def _eval_crops(bundle, a: argparse.Namespace) -> dict:
    """Model id -> modality -> crops of the evaluation set (``--data`` or the model's own training data)."""
    from reidstream.export.verify import dataset_crops

    crops = {}
    for model in bundle.manifest.models:
        mods = sorted({e.modality for e in bundle.embedders() if e.model == model.id})
        data = model.config.get("data", {})
        root, layout = a.data or data.get("root"), a.layout or (data.get("layout") if not a.data else None)
        if not root or not layout:
            raise ValueError(f"model {model.id!r}: no evaluation data; pass --data ROOT --layout LAYOUT")
        if not Path(root).is_dir():
            raise ValueError(f"model {model.id!r}: its training data {root} is not here; pass --data ROOT --layout "
                             f"LAYOUT of an evaluation set holding {', '.join(mods)} crops")
        crops[model.id] = dataset_crops(layout, root, mods, split=a.split, limit=a.limit,
                                        trial=a.trial or data.get("trial"))
    return crops


def _cmd_verify(a: argparse.Namespace) -> int:
    from reidstream.export.verify import verify_bundle
    from reidstream.pipeline.bundle import load_bundle

    bundle = load_bundle(a.bundle)
    crops = _eval_crops(bundle, a)
    report = verify_bundle(bundle, crops, k=a.topk, min_cosine=a.min_cosine, min_topk=a.min_topk, device=a.device,
                           progress=_say)
    print(report.table())
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    print("verify: PASS" if report.ok else "verify: FAIL (a figure is below its threshold)")
    for f in report.files:
        if not f.ok:
            print(f"verify: {f.path}: {f.reason}")
    return 0 if report.ok else 1


def _cmd_calibrate(a: argparse.Namespace) -> int:
    from reidstream.export.calibrate import calibrate_bundle

    cal = calibrate_bundle(a.bundle, a.recordings, sim_seeds=a.sim_seeds, sim_frames=a.sim_frames,
                           population_seed=a.population_seed, work=a.work, false_merge_rate=a.false_merge_rate,
                           min_auc=a.min_auc, min_pairs=a.min_pairs, overrides=a.sets, progress=_say)
    print(f"calibration written to {Path(a.bundle) / 'manifest.json'}: {len(cal.cues)} cue models, threshold "
          f"{cal.threshold:.2f}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(cal.to_dict(), indent=2) + "\n")
    return 0


def _cmd_evaluate(a: argparse.Namespace) -> int:
    from reidstream.export.crop_eval import evaluate

    evaluate(a.bundle, a.data, layout=a.layout, subset=a.subset, json_out=a.json)
    return 0


def _cmd_benchmark(a: argparse.Namespace) -> int:
    import os

    from reidstream.export.benchmark import benchmark_bundle, format_table, pick
    from reidstream.pipeline.bundle import load_bundle

    bundle = load_bundle(a.bundle)
    if a.per_crop:
        from reidstream.export.benchmark import crop_costs, format_costs

        rows = crop_costs(bundle, batch=a.batches[0], threads=a.threads, seconds=a.seconds, progress=_say)
        print(f"{a.bundle}: ONNX Runtime on the CPU, {os.cpu_count()} cores")
        print(format_costs(rows, a.budget_ms))
        return 0
    e = pick(bundle, a.model, a.modality)[0]
    rows = benchmark_bundle(bundle, model=a.model, modality=a.modality, batches=a.batches, seconds=a.seconds,
                            device=a.device, progress=_say)
    print(format_table(rows, f"{e.model}/{e.modality} embedder, input {e.input.channels}x{e.input.height}x"
                             f"{e.input.width}, device {a.device}, {os.cpu_count()} CPU cores"))
    return 0


def _cmd_triton(a: argparse.Namespace) -> int:
    from reidstream.export.triton import write_triton_repository
    from reidstream.pipeline.bundle import load_bundle

    paths = write_triton_repository(load_bundle(a.bundle), a.out, instance_count=a.instances, force=a.force)
    for p in paths:
        print(p)
    return 0


def _describe(bundle) -> str:
    lines = [f"bundle {bundle.root}  (created {bundle.manifest.created})"]
    for m in bundle.manifest.models:
        lines.append(f"  model {m.id}: method {m.method}, space {m.space}, from {m.checkpoint}")
    for f in bundle.manifest.files:
        if f.role == "embedder":
            lines.append(f"    {f.path:<28} {f.runtime:<8} {f.precision:<4} {f.modality:<7} space {f.space:<6} "
                         f"in {f.input.channels}x{f.input.height}x{f.input.width} ({f.input.colour_order}) "
                         f"-> {f.output.dim}-d {f.output.distance}")
        else:
            lines.append(f"    {f.path:<28} {f.runtime:<8} {f.precision:<4} detector for {','.join(f.modalities)} "
                         f"at {f.imgsz[0]}x{f.imgsz[1]}, classes "
                         f"{', '.join(f.classes.get(str(k), str(k)) for k in (f.detect_classes or [f.person_class]))}")
    return "\n".join(lines)


def _cmd_inspect(a: argparse.Namespace) -> int:
    from reidstream.pipeline.bundle import load_bundle

    print(_describe(load_bundle(a.bundle)))
    print("checksums: ok")
    return 0


COMMANDS = {"bundle": _cmd_bundle, "verify": _cmd_verify, "calibrate": _cmd_calibrate, "evaluate": _cmd_evaluate,
            "benchmark": _cmd_benchmark, "triton": _cmd_triton, "inspect": _cmd_inspect}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``reid-export``."""
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as e:
        print(f"reid-export {args.command}: error: {e}", file=sys.stderr)
        return 2
