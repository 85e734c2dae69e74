"""The backend protocol and the crop embedder that batches, preprocesses and runs it."""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from reidstream.pipeline.bundle import EmbedderFile


class Backend(Protocol):
    """One network on one runtime: ``B x C x H x W`` float32 in, ``B x D`` float32 out.

    Attributes:
        entry: The manifest entry of the file it runs.
        max_batch: Largest batch one call accepts (the engine profile's max for TensorRT).
    """

    entry: EmbedderFile
    max_batch: int

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


def check_input(entry: EmbedderFile, x: np.ndarray, where: str) -> np.ndarray:
    """``x`` as a contiguous float32 batch of the entry's input shape, or ValueError naming ``where``."""
    want = (entry.input.channels, entry.input.height, entry.input.width)
    if not isinstance(x, np.ndarray) or x.ndim != 4 or tuple(x.shape[1:]) != want:
        got = tuple(x.shape) if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"{where}: expected a B x {want[0]} x {want[1]} x {want[2]} float32 batch, got {got}")
    return np.ascontiguousarray(x, dtype=np.float32)


class CropEmbedder:
    """Embeds crops of one modality: preprocess (from the entry's metadata), batch, run the backend.

    Args:
        entry: The manifest entry.
        backend: The runtime backend of its file.
    """

    def __init__(self, entry: EmbedderFile, backend: Backend) -> None:
        self.entry = entry
        self.backend = backend
        self.preprocess = entry.preprocess_spec()

    @property
    def modality(self) -> str:
        return self.entry.modality

    @property
    def space(self) -> str:
        return self.entry.space

    @property
    def dim(self) -> int:
        return self.entry.output.dim

    def embed_batch(self, x: np.ndarray) -> np.ndarray:
        """Embeddings (``N x D`` float32) of preprocessed inputs ``N x C x H x W``, in chunks of ``max_batch``."""
        x = check_input(self.entry, x, f"{self.entry.path}")
        if len(x) == 0:
            return np.zeros((0, self.dim), np.float32)
        step = max(1, int(self.backend.max_batch))
        return np.concatenate([self.backend(x[i:i + step]) for i in range(0, len(x), step)]).astype(np.float32)

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings (``N x D`` float32) of raw crops of this modality (uint8 RGB, uint16 mm depth, ...)."""
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        return self.embed_batch(np.stack([self.preprocess(c) for c in crops]))
