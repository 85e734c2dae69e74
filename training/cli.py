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
        prog="reid-eval", description="Evaluate checkpoint(s) under the protocol of their dataset layout. RGB-D "
        "layouts: Hafner et al. (CMC rank-1/5/10 single-gallery-shot repeated, mAP over at most 20 images per "
        "person, both query/gallery modality directions and single-modality; several checkpoints are folds). "
        "sysu: SYSU-MM01 all/indoor search, single/multi-shot random galleries over --trials trials, IR->RGB "
        "and RGB->IR. regdb: RegDB, one checkpoint per trial, visible->thermal and thermal->visible. VI tables "
        "give R-1/10/20, mAP and mINP as mean ± std. Prints a table, writes metrics.json, table.txt and cmc.png.")
    p.add_argument("checkpoints", type=Path, nargs="+", help="checkpoint(s) to evaluate: folds (RGB-D), trials "
                   "(RegDB) or runs (SYSU-MM01)")
    p.add_argument("--protocol", default="auto", choices=["auto", "hafner", "sysu", "regdb"],
                   help="evaluation protocol (default: from the layout: sysu, regdb, else hafner)")
    p.add_argument("--root", help="dataset root (default: the checkpoint's training config)")
    p.add_argument("--layout", help="dataset layout (default: the checkpoint's)")
    p.add_argument("--split", help="named split, e.g. hafner-biwi (default: the checkpoint's; RGB-D only)")
    p.add_argument("--subset", default="test", choices=["test", "val", "train"], help="records to evaluate on")
    p.add_argument("--repeats", type=int, default=10, help="random gallery draws (Hafner: 10; RGB-D only)")
    p.add_argument("--max-per-identity", type=int, default=20,
                   help="gallery images per person for mAP (Hafner: 20; RGB-D only)")
    p.add_argument("--mode", nargs="+", default=["all"], choices=["all", "indoor"],
                   help="SYSU-MM01 search mode(s): all (RGB cams 1,2,4,5) and/or indoor (1,2)")
    p.add_argument("--shots", nargs="+", type=int, default=[1], choices=[1, 10],
                   help="SYSU-MM01 gallery images per identity and camera: 1 (single-shot) and/or 10 (multi-shot)")
    p.add_argument("--trials", type=int, default=10, help="SYSU-MM01 random gallery trials (papers: 10)")
    p.add_argument("--trial", nargs="+", type=int,
                   help="RegDB trial of each checkpoint, in order (default: the checkpoint config's, else 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ties", default="pessimistic", choices=["pessimistic", "stable"],
                   help="ranking ties: pessimistic (default: a wrong gallery entry at the same distance as a "
                   "correct one ranks first) or stable (gallery order breaks ties, as np.argsort in open-reid / "
                   "AGW's evaluation code; for comparison with their numbers)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--out", type=Path, help="output directory (default: next to the first checkpoint, eval/)")
    args = p.parse_args(argv)
    if args.trials < 1:
        p.error(f"--trials: expected a positive integer, got {args.trials}")
    try:
        import torch  # noqa: F401
    except ImportError:
        print("reid-eval: PyTorch is not installed; pip install 'reid-stream[train]'", file=sys.stderr)
        return 2
    from reidstream.training.eval_run import default_device, run_eval
    out = args.out or args.checkpoints[0].parent / "eval"
    try:
        table, _ = run_eval(args.checkpoints, out_dir=out, protocol=args.protocol, root=args.root,
                            layout=args.layout, split=args.split if args.split is not None else "",
                            subset=args.subset, repeats=args.repeats, max_per_identity=args.max_per_identity,
                            modes=args.mode, shots=args.shots, trials=args.trials, trial=args.trial,
                            seed=args.seed, ties=args.ties, device=args.device or default_device())
    except (FileNotFoundError, ValueError, ConfigError) as e:
        print(f"reid-eval: {e}", file=sys.stderr)
        return 1
    print(table)
    print(f"reid-eval: wrote {out / 'metrics.json'}, {out / 'table.txt'} and {out / 'cmc.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # torchrun --nproc_per_node N -m reidstream.training.cli --config ...
    sys.exit(train_main())
