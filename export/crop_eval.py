"""``reid-export evaluate``: a bundle's networks, as the pipeline runs them, on a labelled crop dataset, per light.

Every embedder of the bundle (ONNX Runtime unless told otherwise; the same preprocessing from the file's
metadata as the live pipeline) embeds the crops of its modality from a dataset in any training layout. For
crops cut by ``reid-synth dataset pipeline`` camera 0 is lit and camera 1 dark, so "query dark, gallery lit"
is the re-identification of a person first seen in the light and coming back in the dark.

For every space and pair of its features (``depth <- depth``, ``ir <- rgb``, ...) and every pair of distinct
cameras, queries of one camera are ranked against all gallery images of the other (no cap per identity;
queries whose person is not in that gallery are left out). Same-camera pairs are not scored: crops of one
walk are near-duplicates. Ties count wrong entries first (``ties="pessimistic"``, see
:mod:`reidstream.training.evaluation.metrics`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from reidstream.training.evaluation.metrics import cmc_all, mean_average_precision, pairwise_distances
from reidstream.training.evaluation.protocols import FeatureSet


def bundle_features(bundle_dir: str | Path, root: str | Path, *, layout: str = "folder", subset: str = "test",
                    runtimes: Sequence[str] = ("onnx",), progress: bool = True) -> dict[str, FeatureSet]:
    """``"<space>/<modality>"`` -> features of every ``subset`` crop of that modality, by the bundle's networks.

    Raises:
        ValueError: the dataset has no ``subset`` crops of any modality the bundle embeds.
    """
    from reidstream.pipeline.bundle import load_bundle
    from reidstream.pipeline.embed.stage import EmbedStage
    from reidstream.training.data import LAYOUTS
    from reidstream.training.data._io import load_image

    stage = EmbedStage.from_bundle(load_bundle(bundle_dir), device="cpu", runtimes=list(runtimes))
    records = LAYOUTS[layout].read(root).splits.get(subset, ())
    out: dict[str, FeatureSet] = {}
    for emb in stage.embedders:
        mine = [(i, r) for i, r in enumerate(records) if emb.modality in {m.value for m in r.modalities}]
        keys = np.array([i for i, _ in mine], np.int64)  # one key per capture, shared by its modalities
        mine = [r for _, r in mine]
        if not mine:
            continue
        vecs = []
        for i in range(0, len(mine), 64):
            vecs.append(emb.embed([load_image(r, emb.modality) for r in mine[i:i + 64]]))
            if progress:
                print(f"\r  {emb.space}/{emb.modality}: {min(i + 64, len(mine))}/{len(mine)} crops", end="",
                      file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)
        out[f"{emb.space}/{emb.modality}"] = FeatureSet(np.concatenate(vecs), np.array([r.pid for r in mine]),
                                                        np.array([r.camid for r in mine]), keys, emb.modality)
    if not out:
        raise ValueError(f"{root}: no '{subset}' crops of the modalities {sorted(stage.modalities)} the bundle embeds")
    return out


def light_scenarios(feats: dict[str, FeatureSet], *, cameras: Sequence[tuple[int, int]] = ((1, 0), (0, 1)),
                    names: dict[int, str] | None = None, ties: str = "pessimistic") -> dict[str, dict[str, float]]:
    """mAP and rank-1/5 of every comparable feature pair for each (query camera, gallery camera).

    Args:
        feats: Output of :func:`bundle_features`.
        cameras: (query, gallery) camera pairs, distinct cameras (default: dark -> lit and lit -> dark).
        names: Camera id -> name used in the keys (default ``{0: "lit", 1: "dark"}``).

    Returns:
        ``"<query feature> <- <gallery feature> | <query cam> -> <gallery cam>"`` ->
        ``{"mAP", "rank-1", "rank-5", "queries", "gallery"}`` (percent).
    """
    names = names or {0: "lit", 1: "dark"}
    out: dict[str, dict[str, float]] = {}
    for qname, q in feats.items():
        for gname, g in feats.items():
            if qname.split("/")[0] != gname.split("/")[0]:
                continue
            for qc, gc in cameras:
                if qc == gc:
                    raise ValueError(f"cameras: expected distinct query and gallery cameras, got {(qc, gc)}")
                g_mask = g.camids == gc
                keep = (q.camids == qc) & np.isin(q.pids, g.pids[g_mask])
                if not keep.any():
                    continue
                qs, gs = q.select(keep), g.select(g_mask)
                dist = pairwise_distances(qs.embeddings, gs.embeddings, "cosine")
                cmc = cmc_all(dist, qs.pids, gs.pids, max_rank=5, ties=ties)
                m_ap = mean_average_precision(dist, qs.pids, gs.pids, max_per_identity=None, ties=ties)
                key = f"{qname} <- {gname} | {names.get(qc, qc)} -> {names.get(gc, gc)}"
                out[key] = {"mAP": 100 * float(np.mean(m_ap)), "rank-1": 100 * float(cmc[0]),
                            "rank-5": 100 * float(cmc[4]), "queries": int(len(qs)), "gallery": int(len(gs))}
    return out


def format_scenarios(results: dict[str, dict[str, float]]) -> str:
    """A plain-text table of :func:`light_scenarios`."""
    width = max((len(k) for k in results), default=10)
    lines = [f"{'query <- gallery | light':<{width}}    mAP  rank-1  rank-5  queries  gallery"]
    for key, r in results.items():
        lines.append(f"{key:<{width}}  {r['mAP']:5.1f}   {r['rank-1']:5.1f}   {r['rank-5']:5.1f}  "
                     f"{r['queries']:7d}  {r['gallery']:7d}")
    return "\n".join(lines)


def sysu_scenarios(feats: dict[str, FeatureSet], *, trials: int = 10) -> dict[str, dict[str, float]]:
    """SYSU-MM01 all-search single-shot (IR -> RGB, RGB -> IR over ``trials`` random galleries) and RGB -> RGB
    across cameras, for every space with an ``rgb`` and an ``ir`` network; mean over trials, in percent."""
    from reidstream.training.evaluation.vi_protocols import sysu_evaluation
    from reidstream.training.vi_report import DIRECTIONS, RGB_RGB, chance, rgb_rgb

    out: dict[str, dict[str, float]] = {}
    for space in sorted({k.split("/")[0] for k in feats}):
        if f"{space}/rgb" not in feats or f"{space}/ir" not in feats:
            continue
        pair = {"rgb": feats[f"{space}/rgb"], "ir": feats[f"{space}/ir"]}
        res = sysu_evaluation(pair, mode="all", shots=1, trials=trials, seed=0)
        rand = chance(pair, trials)
        for key, name in DIRECTIONS.items():
            out[f"{space} {name}"] = {"mAP": res[key]["mAP"]["mean"], "rank-1": res[key]["rank-1"]["mean"],
                                      "chance mAP": rand[key]}
        rr = rgb_rgb(pair)
        out[f"{space} RGB → RGB (other cameras)"] = {"mAP": rr["mAP"]["mean"], "rank-1": rr["rank-1"]["mean"],
                                                     "chance mAP": rand[RGB_RGB]}
    if not out:
        raise ValueError("layout sysu: the bundle has no space with both an rgb and an ir network")
    return out


def evaluate(bundle_dir: str | Path, root: str | Path, *, layout: str = "folder", subset: str = "test",
             json_out: str | Path | None = None) -> dict[str, Any]:
    """:func:`bundle_features` + :func:`light_scenarios` (or :func:`sysu_scenarios` for the ``sysu`` layout);
    prints the table, optionally writes JSON."""
    feats = bundle_features(bundle_dir, root, layout=layout, subset=subset)
    if layout == "sysu":
        res = sysu_scenarios(feats)
        for key, r in res.items():
            print(f"{key:<40} mAP {r['mAP']:5.1f}  rank-1 {r['rank-1']:5.1f}  (chance mAP {r['chance mAP']:.1f})")
    else:
        res = light_scenarios(feats)
        print(format_scenarios(res))
    if json_out:
        Path(json_out).write_text(json.dumps({"bundle": str(bundle_dir), "data": str(root), "subset": subset,
                                              "results": res}, indent=1))
    return res
