"""PyTorch backend: the trained network itself, from a bundle's ``.pt`` embedder file.

The file is a plain dict read with ``torch.load(..., weights_only=True)`` (nothing
is unpickled)::

    format        "reid-stream-embedder-v1"
    model, config, options, state_dict   the checkpoint's embedder entry
    centre        optional: the modality's mean unit embedding, subtracted before normalising
                  (``reid-export bundle --centre``)
    reid_stream   the manifest entry's metadata (JSON text), as in ONNX files

This is the only place where the pipeline imports training code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reidstream.pipeline.bundle import ONNX_METADATA_KEY, BundleError, EmbedderFile, check_embedded_metadata
from reidstream.pipeline.embed.base import check_input

TORCH_FILE_FORMAT = "reid-stream-embedder-v1"


def torch_device(device: str):
    """``torch.device`` for ``device``, or RuntimeError when CUDA is asked for and absent."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r}: torch sees no CUDA GPU")
    return torch.device(device)


class TorchBackend:
    """Runs a bundle's PyTorch embedder file.

    Args:
        path: The ``.pt`` file.
        entry: Its manifest entry; None reads it from the file's own metadata.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    """

    def __init__(self, path: Path, entry: EmbedderFile | None, device: str = "cpu") -> None:
        try:
            import torch
            import torch.nn.functional as F
            from reidstream.training.checkpoint import build_network
        except ImportError:
            raise RuntimeError(f"{path}: running PyTorch models needs torch; pip install 'reid-stream[train]'") \
                from None
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - torch raises many types for foreign files
            raise BundleError(f"{path}: not a loadable reid-stream embedder file ({type(e).__name__}: {e})") from None
        if not isinstance(data, dict) or data.get("format") != TORCH_FILE_FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise BundleError(f"{path}: expected an embedder file of format {TORCH_FILE_FORMAT!r}, got {got!r}")
        self.entry = check_embedded_metadata(path, data.get(ONNX_METADATA_KEY), entry)
        net, module = build_network(data["model"], data["config"], data.get("options", {}), str(path),
                                    data.get("centre"))
        try:
            net.load_state_dict(data["state_dict"], strict=True)
        except RuntimeError as e:
            raise BundleError(f"{path}: weights do not fit the stored network config ({e})") from None
        self.device = torch_device(device)
        self.module = module.to(self.device).eval()
        self.path = path
        self.max_batch = self.entry.input.batch.max
        self._torch, self._normalize = torch, self.entry.output.normalized and F.normalize

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = check_input(self.entry, x, str(self.path))
        with self._torch.inference_mode():
            y = self.module(self._torch.from_numpy(x).to(self.device)).float()
            if self._normalize:
                y = self._normalize(y, dim=1)
            return y.cpu().numpy()
