"""The embedding stage: every crop of a frame into every embedding space its modality belongs to."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from reidstream.pipeline.bundle import Bundle, BundleError
from reidstream.pipeline.embed.base import CropEmbedder
from reidstream.pipeline.types import Crops, Embeddings, Modality

RUNTIME_PREFERENCE = ("tensorrt", "onnx", "torch")
"""Order in which runtimes of the same network are preferred when a bundle holds several."""


class EmbedStage:
    """Embeds a frame's crops with one network per (modality, space), batched over all crops of the frame.

    A colour crop lands in every space that has a colour network (``rgbd``, ``rgbir`` and ``rgb`` in the
    default bundle); a depth crop in ``rgbd``; an IR crop in ``rgbir`` and ``ir``.

    The networks of a frame run side by side on ``workers`` threads (the runtimes release the GIL): with
    a crop or two per network, one network alone cannot keep the cores busy.

    Args:
        embedders: One :class:`CropEmbedder` per (modality, space).
        workers: Networks run at once; 0: as many as there are CPU cores (at most one per network).
    """

    def __init__(self, embedders: Sequence[CropEmbedder], *, workers: int = 0) -> None:
        keys = [(e.modality, e.space) for e in embedders]
        if len(set(keys)) != len(keys):
            raise ValueError(f"EmbedStage: expected one embedder per (modality, space), got {keys}")
        if workers < 0:
            raise ValueError(f"EmbedStage: workers: expected 0 (automatic) or more, got {workers}")
        self.embedders = list(embedders)
        self.workers = min(workers or os.cpu_count() or 1, max(len(self.embedders), 1))
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def from_bundle(cls, bundle: Bundle, *, device: str = "cpu", runtimes: Sequence[str] | None = None,
                    workers: int = 0) -> "EmbedStage":
        """One embedder per (modality, space) of ``bundle``, on the most preferred runtime that opens here.

        Args:
            bundle: A loaded bundle.
            device: ``cpu`` or ``cuda[:N]``.
            runtimes: Runtimes allowed, most preferred first (default :data:`RUNTIME_PREFERENCE`;
                TensorRT is tried only on a CUDA device).
            workers: Networks run at once (0: one per CPU core).

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
        return cls(out, workers=workers)

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
        jobs = [(e, images) for e in self.embedders
                if (images := crops.images.get(Modality(e.modality))) is not None]
        if self.workers > 1 and len(jobs) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="embed")
            futures = [self._pool.submit(e.embed, images) for e, images in jobs]
            results = [f.result() for f in futures]
        else:
            results = [e.embed(images) for e, images in jobs]
        for (e, _), vectors in zip(jobs, results):
            finite = np.isfinite(vectors).all(axis=1)
            if not finite.all():
                raise ValueError(f"{e.entry.path}: non-finite embeddings for tracks "
                                 f"{crops.track_ids[~finite].tolist()} of frame {crops.frame_index}")
            out.append(Embeddings(vectors.astype(np.float32), e.modality, e.space, crops.track_ids,
                                  normalized=e.entry.output.normalized, frame_index=crops.frame_index))
        return out

    def embed_many(self, crops: Sequence[Crops]) -> list[list[Embeddings]]:
        """Embeddings of several frames' crops (one frame per camera of a site), one network call per embedder.

        The crops of every frame in the embedder's modality go through the network as one batch; the vectors
        are then split back per frame. Frames may hold different modalities (a colour camera and an IR one).

        Returns:
            Per input :class:`Crops`, what :meth:`__call__` would return for it.
        """
        if len(crops) == 1:
            return [self(crops[0])]
        jobs = []
        for e in self.embedders:
            m = Modality(e.modality)
            parts = [(k, c.images[m]) for k, c in enumerate(crops) if len(c) and m in c.images]
            if parts:
                jobs.append((e, parts, tuple(img for _, images in parts for img in images)))
        if self.workers > 1 and len(jobs) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="embed")
            results = [f.result() for f in [self._pool.submit(e.embed, batch) for e, _, batch in jobs]]
        else:
            results = [e.embed(batch) for e, _, batch in jobs]
        out: list[list[Embeddings]] = [[] for _ in crops]
        for (e, parts, _), vectors in zip(jobs, results):
            start = 0
            for k, images in parts:
                v, c = vectors[start:start + len(images)], crops[k]
                start += len(images)
                finite = np.isfinite(v).all(axis=1)
                if not finite.all():
                    raise ValueError(f"{e.entry.path}: non-finite embeddings for tracks "
                                     f"{c.track_ids[~finite].tolist()} of frame {c.frame_index}")
                out[k].append(Embeddings(v.astype(np.float32), e.modality, e.space, c.track_ids,
                                         normalized=e.entry.output.normalized, frame_index=c.frame_index))
        return out

    def close(self) -> None:
        """Stops the worker threads (a later call starts them again)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
