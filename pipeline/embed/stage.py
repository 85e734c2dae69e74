"""The embedding stage: every crop of a frame into every embedding space its modality belongs to."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from reidstream.pipeline.bundle import Bundle, BundleError
from reidstream.pipeline.embed.base import CropEmbedder
from reidstream.pipeline.types import Crops, Embeddings, Modality

RUNTIME_PREFERENCE = ("tensorrt", "onnx", "torch")
"""Order in which runtimes of the same network are preferred when a bundle holds several."""


class EmbedStage:
    """Embeds a frame's crops with one network per (modality, space), batched over all crops of the frame.

    A colour crop lands in every space that has a colour network (``rgbd`` and ``rgbir`` in the
    default bundle); a depth crop in ``rgbd``; an IR crop in ``rgbir``.

    Args:
        embedders: One :class:`CropEmbedder` per (modality, space).
    """

    def __init__(self, embedders: Sequence[CropEmbedder]) -> None:
        keys = [(e.modality, e.space) for e in embedders]
        if len(set(keys)) != len(keys):
            raise ValueError(f"EmbedStage: expected one embedder per (modality, space), got {keys}")
        self.embedders = list(embedders)

    @classmethod
    def from_bundle(cls, bundle: Bundle, *, device: str = "cpu", runtimes: Sequence[str] | None = None) -> "EmbedStage":
        """One embedder per (modality, space) of ``bundle``, on the most preferred runtime that opens here.

        Args:
            bundle: A loaded bundle.
            device: ``cpu`` or ``cuda[:N]``.
            runtimes: Runtimes allowed, most preferred first (default :data:`RUNTIME_PREFERENCE`;
                TensorRT is tried only on a CUDA device).

        Raises:
            BundleError: the bundle has no embedders, or none of a network's files opens (the reasons listed).
        """
        from reidstream.pipeline.embed import open_embedder

        order = list(runtimes or RUNTIME_PREFERENCE)
        if not device.startswith("cuda") and runtimes is None:
            order = [r for r in order if r != "tensorrt"]
        groups: dict[tuple[str, str], list] = {}
        for e in bundle.embedders():
            if e.runtime in order:
                groups.setdefault((e.modality, e.space), []).append(e)
        if not groups:
            raise BundleError(f"{bundle.root}: no embedders for runtimes {order}")
        out = []
        for key, entries in groups.items():
            errors = []
            for e in sorted(entries, key=lambda e: order.index(e.runtime)):
                try:
                    out.append(open_embedder(bundle, e, device))
                    break
                except (RuntimeError, ImportError) as err:  # runtime missing here: try the next one
                    errors.append(f"{e.path}: {err}")
            else:
                raise BundleError(f"{bundle.root}: no runtime can run the {key[0]} network of space {key[1]!r}: "
                                  + "; ".join(errors))
        return cls(out)

    @property
    def spaces(self) -> dict[str, list[str]]:
        """Space -> modalities embedded into it."""
        out: dict[str, list[str]] = {}
        for e in self.embedders:
            out.setdefault(e.space, []).append(e.modality)
        return out

    @property
    def modalities(self) -> set[str]:
        return {e.modality for e in self.embedders}

    def __call__(self, crops: Crops) -> list[Embeddings]:
        """Embeddings of every crop, one :class:`Embeddings` per (modality, space) present."""
        out = []
        if len(crops) == 0:
            return out
        for e in self.embedders:
            images = crops.images.get(Modality(e.modality))
            if images is None:
                continue
            vectors = e.embed(images)
            finite = np.isfinite(vectors).all(axis=1)
            if not finite.all():
                raise ValueError(f"{e.entry.path}: non-finite embeddings for tracks "
                                 f"{crops.track_ids[~finite].tolist()} of frame {crops.frame_index}")
            out.append(Embeddings(vectors.astype(np.float32), e.modality, e.space, crops.track_ids,
                                  normalized=e.entry.output.normalized, frame_index=crops.frame_index))
        return out
