"""Command-line entry points of offline training: ``reid-train`` and ``reid-eval``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from reidstream.pipeline.config import ConfigError, load_config, parse_args_with_overrides


def train_main(argv: list[str] | None = None) -> int:
    """Entry point of ``reid-train``."""
    p = argparse.ArgumentParser(
        prog="reid-train", description="Train a cross-modal person re-identification embedder from a YAML "
        "config (dataset, model, method, optimiser), with checkpoints, logs and resume. Config values can be "
        "overridden with key=value arguments, e.g. loop.epochs=5 method.loss=triplet. Multi-GPU: "
        "torchrun --nproc_per_node N -m reidstream.training.cli --config ...")
    p.add_argument("--config", type=Path, required=True, help="training config YAML (configs/train/*.yaml)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", type=Path, help="checkpoint to resume from (default: <output>/last.pt if present)")
    g.add_argument("--restart", action="store_true", help="ignore an existing <output>/last.pt and start over")
    args = parse_args_with_overrides(p, argv)
    from reidstream.training.config import TrainConfig
    try:
        cfg = load_config(TrainConfig, args.config, args.overrides)
    except (ConfigError, FileNotFoundError) as e:
        print(f"reid-train: {e}", file=sys.stderr)
        return 2
    try:
        import torch  # noqa: F401
    except ImportError:
        print("reid-train: PyTorch is not installed; pip install 'reid-stream[train]'", file=sys.stderr)
        return 2
    from reidstream.training.run import train
    out = Path(cfg.output)
    if args.restart and (out / "last.pt").exists():
        (out / "last.pt").unlink()
    try:
        summary = train(cfg, resume=args.resume if args.resume else "auto")
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"reid-train: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nreid-train: interrupted; run the same command again to resume from {out / 'last.pt'}",
              file=sys.stderr)
        return 130
    if os.environ.get("RANK", "0") == "0":
        print(json.dumps(summary, indent=2))
    return 0


def eval_main(argv: list[str] | None = None) -> int:
    """Entry point of ``reid-eval``."""
    p = argparse.ArgumentParser(
        prog="reid-eval", description="Evaluate checkpoint(s) under the cross-modal protocol of Hafner et al. "
        "(CMC rank-1/5/10 single-gallery-shot repeated, mAP over at most 20 images per person, both query/gallery "
        "modality directions and single-modality). Several checkpoints are folds: mean and std over all. Prints "
        "a table, writes metrics.json, table.txt and cmc.png.")
    p.add_argument("checkpoints", type=Path, nargs="+", help="checkpoint(s) to evaluate, e.g. one per fold")
    p.add_argument("--protocol", default="hafner", choices=["hafner"], help="evaluation protocol")
    p.add_argument("--root", help="dataset root (default: the checkpoint's training config)")
    p.add_argument("--layout", help="dataset layout (default: the checkpoint's)")
    p.add_argument("--split", help="named split, e.g. hafner-biwi (default: the checkpoint's)")
    p.add_argument("--subset", default="test", choices=["test", "val", "train"], help="records to evaluate on")
    p.add_argument("--repeats", type=int, default=10, help="random gallery draws (paper: 10)")
    p.add_argument("--max-per-identity", type=int, default=20, help="gallery images per person for mAP (paper: 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--out", type=Path, help="output directory (default: next to the first checkpoint, eval/)")
    args = p.parse_args(argv)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("reid-eval: PyTorch is not installed; pip install 'reid-stream[train]'", file=sys.stderr)
        return 2
    from reidstream.training.eval_run import default_device, run_eval
    out = args.out or args.checkpoints[0].parent / "eval"
    try:
        table, _ = run_eval(args.checkpoints, out_dir=out, root=args.root, layout=args.layout,
                            split=args.split if args.split is not None else "", subset=args.subset,
                            repeats=args.repeats, max_per_identity=args.max_per_identity, seed=args.seed,
                            device=args.device or default_device())
    except (FileNotFoundError, ValueError, ConfigError) as e:
        print(f"reid-eval: {e}", file=sys.stderr)
        return 1
    print(table)
    print(f"reid-eval: wrote {out / 'metrics.json'}, {out / 'table.txt'} and {out / 'cmc.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # torchrun --nproc_per_node N -m reidstream.training.cli --config ...
    sys.exit(train_main())
