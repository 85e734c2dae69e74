"""Embedding datasets with trained networks, and the validation metrics of the training loop."""

from __future__ import annotations

import functools
import warnings
from typing import Callable, Mapping

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, default_collate

from reidstream.training.data.torch_data import ReIDDataset
from reidstream.training.evaluation.protocols import FeatureSet, cross_modal_evaluation, single_modal_evaluation
from reidstream.training.evaluation.vi_protocols import regdb_evaluation, sysu_evaluation


@torch.no_grad()
def extract_features(embed: Callable[[torch.Tensor], torch.Tensor], dataset: ReIDDataset, modality: str, *,
                     device: str | torch.device = "cpu", batch_size: int = 64, workers: int = 0,
                     nonfinite: str = "raise") -> FeatureSet:
    """Embeds every item of ``dataset`` that has ``modality``.

    ``keys`` of the returned set are dataset item indices, so the colour and depth
    images of one capture share a key (the protocol excludes a query's own pair).

    ``nonfinite="zero"`` (validation during training only) replaces non-finite
    embeddings by zeros with a warning instead of raising: early in training,
    eval-mode activations can overflow (BatchNorm running statistics not settled,
    cubic non-local blocks), which should not stop the run. Final evaluation keeps
    the default and fails loudly.
    """
    if nonfinite not in ("raise", "zero"):
        raise ValueError(f"nonfinite: expected 'raise' or 'zero', got {nonfinite!r}")
    items = [i for i, r in enumerate(dataset.records) if modality in {m.value for m in r.modalities}]
    if not items:
        raise ValueError(f"no {modality} images to embed in this dataset")
    sub = torch.utils.data.Subset(dataset, items)
    # other modalities are dropped: a lit capture carries colour, a dark one may not (default_collate needs
    # the same keys in every item)
    loader = DataLoader(sub, batch_size=batch_size, shuffle=False, num_workers=workers,
                        collate_fn=functools.partial(_collate_keys, keys=(modality, "pid", "camid", "index")))
    embs, pids, camids, keys = [], [], [], []
    for batch in loader:
        embs.append(embed(batch[modality].to(device)).float().cpu().numpy())
        pids.append(np.asarray(batch["pid"]))
        camids.append(np.asarray(batch["camid"]))
        keys.append(np.asarray(batch["index"]))
    emb = np.concatenate(embs)
    bad = ~np.isfinite(emb).all(axis=1)
    if bad.any() and nonfinite == "zero":
        warnings.warn(f"{int(bad.sum())} of {len(emb)} {modality} embeddings are not finite (activations "
                      f"overflowed in eval mode); they are set to zero for this evaluation", RuntimeWarning,
                      stacklevel=2)
        emb[bad] = 0.0
    elif bad.any():
        raise ValueError(f"{int(bad.sum())} of {len(emb)} {modality} embeddings are not finite (first: item "
                         f"{items[int(np.flatnonzero(bad)[0])]}); the network's activations overflowed")
    return FeatureSet(embeddings=emb, pids=np.concatenate(pids), camids=np.concatenate(camids),
                      keys=np.concatenate(keys), modality=modality)


def _collate_keys(items: list[dict], keys: tuple[str, ...]) -> dict:
    return default_collate([{k: it[k] for k in keys} for it in items])


def embed_all(embedders: Mapping[str, nn.Module], dataset: ReIDDataset, **kw) -> dict[str, FeatureSet]:
    """Features of every modality that has an embedder, each from its own network."""
    out = {}
    for modality, module in embedders.items():
        was = module.training
        module.eval()
        out[modality] = extract_features(module, dataset, modality, **kw)
        module.train(was)
    return out


@torch.no_grad()
def validation_loss(method: nn.Module, dataset: ReIDDataset, *, device: str | torch.device, batch_size: int) -> float:
    """Mean of the method's loss over a validation set (eval mode; Hafner step II early stopping)."""
    was = method.training
    method.eval()
    total, n = 0.0, 0
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        b = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        size = int(b["label"].shape[0])
        total += float(method(b)["loss"]) * size
        n += size
    method.train(was)
    return total / max(n, 1)


def validation_metrics(method: nn.Module, dataset: ReIDDataset, *, device: str | torch.device, repeats: int = 3,
                       seed: int = 0, batch_size: int = 64, protocol: str = "hafner") -> dict[str, float]:
    """Validation figures of a method: mAP / rank-1 per direction and ``val/mAP`` (their mean).

    Args:
        protocol: ``hafner`` (RGB-D, Sec. 4.3 of Hafner et al.), ``sysu`` (all-search single-shot,
            ``repeats`` gallery draws) or ``regdb`` (whole gallery, both directions).

    Methods that watch ``val/loss`` also get the mean loss over the validation set.
    """
    feats = embed_all(method.embedders(), dataset, device=device, batch_size=batch_size, nonfinite="zero")
    out: dict[str, float] = {}
    if protocol in ("sysu", "regdb"):
        vis, ir = method.modalities
        if protocol == "sysu":
            res = sysu_evaluation(feats, mode="all", shots=1, trials=repeats, seed=seed, visible=vis, infrared=ir)
        else:
            res = regdb_evaluation([feats], visible=vis, infrared=ir)
        res = {k: v for k, v in res.items() if isinstance(v, dict) and "mAP" in v}
    elif len(feats) == 1:
        (modality, fs), = feats.items()
        r = single_modal_evaluation(fs, repeats=repeats, seed=seed)
        out["val/mAP"] = r["mAP"]["mean"]
        out["val/rank-1"] = r["rank-1"]["mean"]
    else:
        res = cross_modal_evaluation(feats, modalities=tuple(feats), repeats=repeats, seed=seed)
    if len(feats) > 1:
        for name, r in res.items():
            tag = name.replace(" ", "_").replace(":", "")
            out[f"val/mAP_{tag}"] = r["mAP"]["mean"]
        out["val/mAP"] = float(np.mean([r["mAP"]["mean"] for r in res.values()]))
        out["val/rank-1"] = float(np.mean([r["rank-1"]["mean"] for r in res.values()]))
    if getattr(method, "monitor", "") == "val/loss":
        out["val/loss"] = validation_loss(method, dataset, device=device, batch_size=batch_size)
    return out
