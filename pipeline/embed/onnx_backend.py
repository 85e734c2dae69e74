"""ONNX Runtime backend (CPU, or CUDA with onnxruntime-gpu)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reidstream.pipeline.bundle import ONNX_METADATA_KEY, EmbedderFile, check_embedded_metadata
from reidstream.pipeline.embed.base import check_input


def providers_for(device: str) -> list[str]:
    """ONNX Runtime execution providers for ``device`` (``cpu``, ``cuda``, ``cuda:N``).

    Raises:
        RuntimeError: CUDA asked for but this onnxruntime has no CUDA provider.
    """
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeError(f"device {device!r}: this onnxruntime has no CUDAExecutionProvider "
                               f"(available: {ort.get_available_providers()}); install onnxruntime-gpu")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise ValueError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {device!r}")


class OnnxRuntimeBackend:
    """Runs an exported ONNX embedder with ONNX Runtime.

    Args:
        path: The ``.onnx`` file.
        entry: Its manifest entry; None reads it from the file's own metadata.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        threads: Intra-op threads (0: ONNX Runtime's default).
    """

    def __init__(self, path: Path, entry: EmbedderFile | None, device: str = "cpu", threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeError(f"{path}: running ONNX models needs onnxruntime; pip install 'reid-stream[onnx]'") \
                from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        # Several sessions (one per network) and the detector share the cores: threads that spin-wait after
        # a run would steal them from the next network.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        provider_options = None
        providers = providers_for(device)
        if device.startswith("cuda:"):
            provider_options = [{"device_id": int(device.split(":")[1])}, {}]
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers,
                                                provider_options=provider_options)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ValueError(f"{path}: ONNX Runtime cannot load it ({type(e).__name__}: {e})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        self.entry = check_embedded_metadata(path, meta.get(ONNX_METADATA_KEY), entry)
        self.path = path
        self.max_batch = self.entry.input.batch.max
        self._input = self.session.get_inputs()[0].name
        self._output = self.entry.output.name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = check_input(self.entry, x, str(self.path))
        return self.session.run([self._output], {self._input: x})[0]
