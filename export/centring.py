"""Per-modality centring of a shared embedding space (``reid-export bundle --centre SPACE=DATA``).

A cross-modal network maps colour and infrared crops into one space, but each modality's unit
embeddings sit around their own mean: part of every colour-to-infrared cosine measures the modality,
not the person. The bundle can subtract each modality's mean unit embedding, taken over training crops,
before the final L2 normalisation (:class:`reidstream.training.checkpoint.Centred`)::

    c_m = mean_i  e_i / |e_i|   over crops i of modality m
    e'  = (e / |e| - c_m) / |e / |e| - c_m|

It is baked into every runtime file (the ONNX graph, the PyTorch file), so the pipeline runs it unchanged,
and the manifest records where the means came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from reidstream.training.checkpoint import LoadedEmbedder


def parse_centres(items: list[str] | tuple[str, ...]) -> dict[str, Path]:
    """``["SPACE=DIR", ...]`` -> ``{space: Path(DIR)}``.

    Raises:
        ValueError: an item without ``=``, an empty side, or a space given twice.
    """
    out: dict[str, Path] = {}
    for item in items:
        space, sep, root = item.partition("=")
        if not sep or not space.strip() or not root.strip():
            raise ValueError(f"--centre {item!r}: expected SPACE=DATASET_DIR, e.g. rgbir=data/synth-pipeline")
        if space.strip() in out:
            raise ValueError(f"--centre: space {space.strip()!r} given twice")
        out[space.strip()] = Path(root.strip())
    return out


@torch.no_grad()
def embedding_centres(embedders: Mapping[str, LoadedEmbedder], root: str | Path, *, layout: str = "folder",
                      split: str = "train", limit: int = 5000, batch: int = 64,
                      progress: Callable[[str], None] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Each modality's mean unit embedding over up to ``limit`` crops of a dataset split.

    Args:
        embedders: Modality -> the checkpoint's network (:func:`~reidstream.training.checkpoint.load_embedders`).
        root: Dataset root (the network's training crops, e.g. ``reid-synth dataset pipeline``).
        layout: Its layout.
        split: Which split (the training identities by default: the test people stay unseen).
        limit: Crops per modality, spread evenly over the split.
        batch: Crops per forward pass.
        progress: Called with one-line status messages.

    Returns:
        ``(centres, info)``: modality -> ``D`` float32 mean, and what the manifest records (data, layout,
        split, crops per modality, the norm of each mean).

    Raises:
        ValueError: the split has no crops of a modality the networks embed (names the dataset and modality).
    """
    from reidstream.export.verify import dataset_crops

    say = progress or (lambda _m: None)
    crops = dataset_crops(layout, root, list(embedders), split=split, limit=limit)
    centres, counts = {}, {}
    for modality, emb in embedders.items():
        if modality not in crops:
            raise ValueError(f"{root}: no '{split}' crops of modality {modality!r} to centre its embeddings on "
                             f"({layout} layout); it has {sorted(crops) or 'none'}")
        images = crops[modality].crops
        total = np.zeros(0, np.float64)
        for i in range(0, len(images), batch):
            x = torch.from_numpy(np.stack([emb.preprocess(c) for c in images[i:i + batch]]))
            e = F.normalize(emb.embed(x).float(), dim=1).double().sum(0).numpy()
            total = e if total.size == 0 else total + e
            if i // batch % 20 == 0:
                say(f"centre {emb.space}/{modality}: {min(i + batch, len(images))}/{len(images)} crops")
        centres[modality] = (total / len(images)).astype(np.float32)
        counts[modality] = len(images)
    info = {"data": str(root), "layout": layout, "split": split, "crops": counts,
            "norm": {m: round(float(np.linalg.norm(c)), 4) for m, c in centres.items()}}
    return centres, info
