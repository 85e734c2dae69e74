"""Checkpoints: atomic writes, safe loading, and self-contained embedding networks.

A checkpoint is a plain dict readable with ``torch.load(..., weights_only=True)``
(tensors, numbers, strings, lists and dicts only; nothing is unpickled)::

    format        "reid-stream-checkpoint-v1"
    method        method name ("supervised", "distill", "one_stream", ...)
    config        the resolved training config, as JSON text
    space         embedding-space id shared by the networks of this checkpoint
    embedders     {modality: {"model", "config", "options", "state_dict", "preprocess"}}
    state         the method's full state dict (teacher included), for resuming
    optimizer, scheduler, progress {epoch, batch, step}, best, history, metrics, rng

``embedders`` is what evaluation and export use: each entry rebuilds a network
that maps a preprocessed image batch of its modality to embeddings, without the
method, the teacher checkpoint or the training data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from reidstream.pipeline.atomic import atomic_file
from reidstream.training.data.transforms import Preprocess
from reidstream.training.methods._common import EmbeddingHead, ZeroPadInput
from reidstream.training.models import ReIDNet, TwoStreamNet, VINet

FORMAT = "reid-stream-checkpoint-v1"


def save_checkpoint(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Writes ``payload`` to ``path`` atomically (temporary file, then rename).

    A run killed while saving leaves the previous checkpoint intact.
    """
    with atomic_file(path, "wb") as f:
        torch.save(dict(payload, format=FORMAT), f)
    return Path(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Loads a checkpoint safely (``weights_only=True``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a reid-stream checkpoint (names the file and what it holds).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: expected a reid-stream checkpoint (.pt), not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for foreign files
        raise ValueError(f"{path}: not a loadable reid-stream checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        got = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path}: expected a checkpoint of format {FORMAT!r}, got {got!r}")
    return ckpt


@dataclass(frozen=True)
class LoadedEmbedder:
    """One modality's network from a checkpoint, ready for inference.

    Attributes:
        modality: Modality of its input images.
        module: ``nn.Module`` in eval mode mapping ``B x C x H x W`` preprocessed images to ``B x D``.
        preprocess: How images of this modality become its input.
        space: Embedding-space id (networks sharing it can be compared).
        spec: The checkpoint entry (model kind, constructor config, options).
        method: The training method that produced it.
    """

    modality: str
    module: nn.Module
    preprocess: Preprocess
    space: str
    spec: Mapping[str, Any]
    method: str

    @torch.no_grad()
    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """Embeddings of a preprocessed batch."""
        return self.module(batch)


class Centred(nn.Module):
    """An embedder whose unit embeddings are moved by its modality's mean: ``e / |e| - c_m``.

    ``c_m`` is the mean unit embedding of modality ``m`` over training crops
    (:func:`reidstream.export.centring.embedding_centres`). Subtracting each modality's own mean before
    the final L2 normalisation removes the offset that separates the modalities' clouds in a shared
    space, so a cross-modal cosine ranks people rather than modalities (the idea of modality-specific
    normalisation in visible-infrared re-identification, applied once after training).

    Args:
        module: Maps images to ``B x D`` embeddings.
        centre: ``D`` values, the modality's mean unit embedding.

    Raises:
        ValueError: ``centre`` is not a finite vector.
    """

    def __init__(self, module: nn.Module, centre: Any) -> None:
        super().__init__()
        c = torch.as_tensor(centre, dtype=torch.float32).detach().clone()
        if c.ndim != 1 or c.numel() == 0 or not bool(torch.isfinite(c).all()):
            raise ValueError(f"centre: expected a finite vector of the embedding size, got shape {tuple(c.shape)}")
        self.module = module
        self.register_buffer("centre", c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = F.normalize(self.module(x), dim=1)
        if e.shape[1] != self.centre.numel():
            raise ValueError(f"centre: {self.centre.numel()} values for embeddings of size {e.shape[1]}")
        return e - self.centre


def build_network(kind: str, config: Mapping[str, Any], options: Mapping[str, Any],
                  where: str, centre: Any = None) -> tuple[nn.Module, nn.Module]:
    """Builds an embedder entry's network (untrained).

    Args:
        kind: Model kind of the entry (``reidnet``, ``two_stream``, ``zero_padding``, ``vinet``).
        config: Its constructor config.
        options: Its options (branch, slot).
        where: Named in errors (file and entry).
        centre: The modality's mean unit embedding (a bundle's ``centre``); None: not centred.

    Returns:
        ``(net, module)``: ``net`` owns the state dict; ``module`` maps images to embeddings (through
        :class:`Centred` when ``centre`` is given).

    Raises:
        ValueError: unknown model kind or a bad centre (names ``where``).
    """
    net, module = _build(kind, config, options, where)
    if centre is None:
        return net, module
    try:
        return net, Centred(module, centre)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def _build(kind: str, config: Mapping[str, Any], options: Mapping[str, Any],
           where: str) -> tuple[nn.Module, nn.Module]:
    if kind == "reidnet":
        net = ReIDNet.from_config(dict(config))
        return net, EmbeddingHead(net)
    if kind == "two_stream":
        net = TwoStreamNet.from_config(dict(config))
        return net, net.branch(options["branch"])
    if kind == "zero_padding":
        net = ReIDNet.from_config(dict(config))
        return net, ZeroPadInput(net, int(options["slot"]))
    if kind == "vinet":
        net = VINet.from_config(dict(config))
        return net, net.branch(options["branch"])
    raise ValueError(f"{where}: unknown embedder model {kind!r}; expected one of reidnet, two_stream, zero_padding, "
                     f"vinet")


def embedder_entries(method: nn.Module, preprocess: Mapping[str, Preprocess]) -> dict[str, dict[str, Any]]:
    """The ``embedders`` section of a checkpoint for a method (state dicts cloned to CPU)."""
    out = {}
    for modality, spec in method.embedder_specs().items():
        state = {k: v.detach().cpu().clone() for k, v in spec["module"].state_dict().items()}
        out[modality] = {"model": spec["model"], "config": dict(spec["config"]), "options": dict(spec["options"]),
                         "state_dict": state, "preprocess": preprocess[modality].to_dict()}
    return out


def load_embedders(path: str | Path, device: str | torch.device = "cpu") -> dict[str, LoadedEmbedder]:
    """Rebuilds every modality's embedding network stored in a checkpoint.

    Raises:
        ValueError: unknown model kind or a state dict that does not fit (names the file and modality).
    """
    path = Path(path)
    ckpt = load_checkpoint(path)
    entries = ckpt.get("embedders")
    if not isinstance(entries, dict) or not entries:
        raise ValueError(f"{path}: checkpoint has no 'embedders' section")
    out = {}
    for modality, e in entries.items():
        where = f"{path} [embedders.{modality}]"
        net, module = build_network(e["model"], e["config"], e.get("options", {}), where, e.get("centre"))
        try:
            net.load_state_dict(e["state_dict"], strict=True)
        except RuntimeError as err:
            raise ValueError(f"{where}: weights do not fit the stored network config ({err})") from None
        module.to(device).eval()
        out[modality] = LoadedEmbedder(modality, module, Preprocess.from_dict(e["preprocess"]),
                                       str(ckpt.get("space", "")), {k: e[k] for k in ("model", "config", "options")},
                                       str(ckpt.get("method", "")))
    return out

