"""Embedders of the live pipeline: one network per modality and runtime, read from a model bundle.

The runtime is chosen from the bundle entry (``torch``, ``onnx`` or ``tensorrt``)
and its backend module is imported only when a file of that runtime is opened,
so importing the pipeline never imports torch, ONNX Runtime or TensorRT.
Input size and normalisation come from the entry's metadata, never from a file name.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from reidstream.pipeline.bundle import Bundle, BundleError, EmbedderFile
from reidstream.pipeline.embed.base import Backend, CropEmbedder

RUNTIMES: dict[str, tuple[str, str]] = {
    "torch": ("reidstream.pipeline.embed.torch_backend", "TorchBackend"),
    "onnx": ("reidstream.pipeline.embed.onnx_backend", "OnnxRuntimeBackend"),
    "tensorrt": ("reidstream.pipeline.embed.tensorrt_backend", "TensorRTBackend"),
}
"""Runtime name -> (module, class) of its backend, imported lazily."""


SUFFIXES = {".pt": "torch", ".onnx": "onnx", ".engine": "tensorrt", ".plan": "tensorrt"}
"""File suffix -> runtime, for a model file opened without its bundle's manifest."""


def open_backend(path: str | Path, entry: EmbedderFile | None = None, device: str = "cpu") -> Backend:
    """Opens the runtime backend of one embedder file.

    Args:
        path: The model file.
        entry: Its manifest entry (checked against the metadata inside the file). None opens a
            file on its own: the runtime follows the file type and the entry is read from the
            metadata the file carries (ONNX and PyTorch files; TensorRT engines need their bundle).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises:
        BundleError: the file does not match its entry, carries no metadata, or has an unknown type.
        RuntimeError: the runtime's package is not installed or cannot use ``device``.
    """
    path = Path(path)
    runtime = entry.runtime if entry is not None else SUFFIXES.get(path.suffix.lower())
    if runtime not in RUNTIMES:
        raise BundleError(f"{path}: unknown model file type; expected a bundle entry or one of "
                          f"{sorted(SUFFIXES)}")
    module, name = RUNTIMES[runtime]
    cls = getattr(importlib.import_module(module), name)
    return cls(path, entry, device=device)


def open_embedder(bundle: Bundle, entry: EmbedderFile, device: str = "cpu") -> CropEmbedder:
    """A :class:`CropEmbedder` for one embedder entry of a loaded bundle."""
    return CropEmbedder(entry, open_backend(bundle.path(entry), entry, device))


__all__ = ["RUNTIMES", "SUFFIXES", "Backend", "CropEmbedder", "open_backend", "open_embedder"]
