"""``reid-eval``: a checkpoint (or one per fold) under the Hafner et al. protocol.

Hafner et al. (CVIU 2022), Sec. 4.3: on the test identities, every image of the
query modality is matched against the gallery modality (both directions for a
cross-modal checkpoint, Tables 3-4; query = gallery for single-modal networks,
Tables 1-2); rank-k accuracy in the single-gallery-shot setting repeated 10
times, mAP over at most 20 images per person, excluding a query's own image and
its coupled image in the other modality; mean and std over repeats and folds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch

from reidstream.training.checkpoint import load_checkpoint, load_embedders
from reidstream.training.config import TrainConfig
from reidstream.training.data import LAYOUTS
from reidstream.training.data.splits import resolve_split
from reidstream.training.data.torch_data import ReIDDataset
from reidstream.training.evaluation.protocols import aggregate, cross_modal_evaluation, single_modal_evaluation
from reidstream.training.evaluation.report import format_table, plot_cmc, write_json
from reidstream.training.inference import embed_all
from reidstream.pipeline.config import config_from_mapping


def evaluate_checkpoint(path: str | Path, *, root: str | None = None, layout: str | None = None,
                        split: str | None = "", fold: int | None = None, subset: str = "test", repeats: int = 10,
                        max_per_identity: int = 20, seed: int = 0, device: str = "cpu",
                        batch_size: int = 64) -> dict[str, dict[str, Any]]:
    """Scenario name -> protocol result for one checkpoint.

    Data defaults come from the checkpoint's own training config; ``root``, ``layout``,
    ``split`` (``""`` keeps the config's) and ``fold`` override them.
    """
    ckpt = load_checkpoint(path)
    cfg = config_from_mapping(TrainConfig, json.loads(ckpt["config"]), source=f"{path} [config]")
    d = cfg.data
    layout = layout or d.layout
    index = LAYOUTS[layout].read(root or d.root)
    splits = resolve_split(index, split=d.split if split == "" else split, fold=d.fold if fold is None else fold,
                           val_identities=d.val_identities, seed=cfg.seed)
    if subset not in splits or not splits[subset]:
        raise ValueError(f"{root or d.root}: no '{subset}' records under this split; splits: "
                         f"{ {k: len(v) for k, v in splits.items()} }")
    embedders = load_embedders(path, device=device)
    mods = tuple(embedders)
    data = ReIDDataset(splits[subset], mods, {m: e.preprocess for m, e in embedders.items()}, augment=False,
                       require_all=False)
    feats = embed_all({m: e.module for m, e in embedders.items()}, data, device=device, batch_size=batch_size)
    kw = dict(repeats=repeats, max_per_identity=max_per_identity, seed=seed)
    out: dict[str, dict[str, Any]] = {}
    if len(mods) > 1:
        out.update(cross_modal_evaluation(feats, modalities=mods, **kw))
    for m in mods:
        r = single_modal_evaluation(feats[m], **kw)
        out[f"Q:{m} G:{m}"] = r
    return out


def run_eval(checkpoints: Sequence[str | Path], *, out_dir: str | Path | None = None, title: str | None = None,
             **kw: Any) -> tuple[str, dict[str, Any]]:
    """Evaluates one checkpoint per fold, aggregates (Sec. 4.3), writes JSON and a CMC plot.

    Returns:
        The printed table and the JSON payload.
    """
    per_fold = [evaluate_checkpoint(c, **kw) for c in checkpoints]
    names = list(per_fold[0])
    results = {n: aggregate([f[n] for f in per_fold if n in f]) for n in names}
    title = title or f"{', '.join(str(c) for c in checkpoints)} ({len(checkpoints)} fold(s))"
    table = format_table(results, title=title)
    payload = {"checkpoints": [str(c) for c in checkpoints], "protocol": "hafner", "results": results,
               "per_fold": per_fold, "options": {k: v for k, v in kw.items() if k != "device"}}
    if out_dir is not None:
        out = Path(out_dir)
        write_json(out / "metrics.json", payload)
        plot_cmc(out / "cmc.png", {n: r["cmc"] for n, r in results.items()}, title=title)
        (out / "table.txt").write_text(table + "\n")
    return table, payload


def default_device() -> str:
    """``cuda`` when available, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"
