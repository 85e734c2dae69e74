"""Open-set threshold of a model, calibrated on held-out identities and stored in the bundle.

The live gallery calls a track a new person when its cosine distance to every known
identity exceeds a threshold. For each model, all crops of its modalities from a
validation set (identities not seen in training) are embedded; pairs of the same
person are *genuine*, pairs of different people *impostor*, over every
modality combination of the model's space (so the threshold holds for colour-to-
depth as well as colour-to-colour comparisons). The threshold is set at a target
false-accept rate (default 1 %): a stranger must rarely be merged into someone
else's identity, since a merged identity corrupts every later match, while a
missed match only starts a new identity. The genuine-accept rate at that point and
the equal error rate are stored with it.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from reidstream.export.verify import CropSet
from reidstream.pipeline.bundle import Bundle, BundleError
from reidstream.pipeline.embed import open_embedder


def equal_error_threshold(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """``(threshold, equal error rate)`` for distances: accept ``d <= threshold``.

    Raises:
        ValueError: no genuine or no impostor distances.
    """
    if len(genuine) == 0 or len(impostor) == 0:
        raise ValueError("calibration needs both same-person and different-person pairs (two or more identities, "
                         "two or more crops of someone)")
    candidates = np.unique(np.concatenate([genuine, impostor]))
    g, i = np.sort(genuine), np.sort(impostor)
    false_reject = 1.0 - np.searchsorted(g, candidates, side="right") / len(g)
    false_accept = np.searchsorted(i, candidates, side="right") / len(i)
    k = int(np.argmin(np.abs(false_reject - false_accept)))
    return float(candidates[k]), float((false_reject[k] + false_accept[k]) / 2)


def threshold_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> tuple[float, float]:
    """``(threshold, genuine accept rate)``: the largest distance accepting at most ``far`` of impostor pairs."""
    if len(genuine) == 0 or len(impostor) == 0:
        raise ValueError("calibration needs both same-person and different-person pairs")
    if not 0 < far < 1:
        raise ValueError(f"far: expected a rate in (0, 1), got {far}")
    i = np.sort(impostor)
    k = int(np.floor(far * len(i)))
    threshold = float(i[k] - 1e-6) if k < len(i) else float(i[-1])
    return threshold, float(np.mean(genuine <= threshold))


def calibrate_model(bundle: Bundle, model_id: str, crops: Mapping[str, CropSet], *, far: float = 0.01,
                    device: str = "cpu") -> dict[str, float]:
    """Embeds ``crops`` with the model's networks; returns the threshold at false-accept rate ``far`` and figures
    (``threshold``, ``far``, ``tar``, ``eer``, ``eer_threshold``, ``genuine``, ``impostor`` pair counts)."""
    entries = {}
    for e in bundle.embedders():
        if e.model == model_id and e.modality in crops and e.runtime in ("onnx", "torch"):
            entries.setdefault(e.modality, e)
    if not entries:
        raise BundleError(f"{bundle.root}: no ONNX or PyTorch network of model {model_id!r} for the calibration "
                          f"crops' modalities {sorted(crops)}")
    vecs, pids = [], []
    for m, e in entries.items():
        vecs.append(open_embedder(bundle, e, device).embed(crops[m].crops))
        pids.append(crops[m].pids)
    v, p = np.concatenate(vecs), np.concatenate(pids)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    d = 1.0 - v @ v.T
    upper = np.triu_indices(len(v), k=1)
    same = (p[:, None] == p[None, :])[upper]
    genuine, impostor = d[upper][same], d[upper][~same]
    eer_threshold, eer = equal_error_threshold(genuine, impostor)
    threshold, tar = threshold_at_far(genuine, impostor, far)
    return {"threshold": threshold, "far": far, "tar": tar, "eer": eer, "eer_threshold": eer_threshold,
            "genuine": int(same.sum()), "impostor": int((~same).sum())}


def write_thresholds(bundle: Bundle, results: Mapping[str, Mapping[str, float]]) -> Bundle:
    """Stores each model's calibrated threshold (and the figures behind it) in the manifest, atomically.

    The model files are untouched, so their checksums stay valid.
    """
    import json

    from reidstream.pipeline.atomic import atomic_write_text
    from reidstream.pipeline.bundle import MANIFEST, load_bundle

    data = bundle.manifest.model_dump(mode="json")
    for m in data["models"]:
        if m["id"] in results:
            r = dict(results[m["id"]])
            m["open_set_threshold"] = round(float(r["threshold"]), 6)
            m["metrics"] = dict(m.get("metrics") or {}, open_set=r)
    atomic_write_text(bundle.root / MANIFEST, json.dumps(data, indent=2) + "\n")
    return load_bundle(bundle.root)
