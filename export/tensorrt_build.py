"""Building TensorRT engines from exported ONNX embedders (TensorRT 10.x Python API).

One engine per ONNX file, with one optimisation profile over the batch size
(``min <= opt <= max`` from the manifest's :class:`BatchRange`) and a fixed
``C x H x W``. Precision ``fp16`` lets TensorRT pick FP16 kernels; ``int8``
calibrates with an entropy calibrator on preprocessed crops and also enables
FP16 so layers that do not quantise fall back to it rather than to FP32.

An engine only runs on the GPU model and TensorRT version it was built with;
:func:`build_engine` returns that :class:`EngineInfo` for the manifest. tensorrt
and torch are imported only when an engine is built.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Callable

import numpy as np

from reidstream.pipeline.atomic import atomic_write_bytes
from reidstream.pipeline.bundle import BatchRange, BundleError, EngineInfo

LOG = logging.getLogger(__name__)
PRECISIONS = ("fp32", "fp16", "int8")


def tensorrt_available() -> bool:
    """True if tensorrt imports and torch sees a CUDA GPU (what building or running an engine needs)."""
    try:
        importlib.import_module("tensorrt")
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _check_calibration(calibration: np.ndarray | None, input_shape: tuple[int, int, int]) -> np.ndarray:
    if calibration is None:
        raise ValueError("precision 'int8' needs calibration data: an N x C x H x W float32 array of preprocessed "
                         "crops (a few hundred representative ones), got None")
    if not isinstance(calibration, np.ndarray) or calibration.ndim != 4 or len(calibration) < 1 \
            or tuple(calibration.shape[1:]) != tuple(input_shape):
        got = tuple(calibration.shape) if isinstance(calibration, np.ndarray) else type(calibration).__name__
        raise ValueError(f"calibration: expected an N x {input_shape[0]} x {input_shape[1]} x {input_shape[2]} "
                         f"float32 array with N >= 1, got {got}")
    if not np.isfinite(calibration).all():
        raise ValueError("calibration: contains NaN or infinite values")
    return np.ascontiguousarray(calibration, dtype=np.float32)


def _make_logger(trt, errors: list[str]):
    """A TensorRT logger that forwards to :mod:`logging` and keeps error messages for our exceptions."""

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity, msg) -> None:
            if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR):
                errors.append(str(msg))
                LOG.error("TensorRT: %s", msg)
            elif severity == trt.ILogger.Severity.WARNING:
                LOG.warning("TensorRT: %s", msg)
            else:
                LOG.debug("TensorRT: %s", msg)

    return _Logger()


def _make_calibrator(trt, torch, data: np.ndarray, batch_size: int, cache: Path | None):
    """An ``IInt8EntropyCalibrator2`` feeding ``data`` in full batches of ``batch_size`` from one GPU buffer.

    TensorRT calibrates at the profile's ``opt`` shape, so every batch has exactly ``batch_size`` crops: the
    last one wraps around to the first crops (and fewer crops than a batch are repeated).
    """

    class _Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.data, self.batch_size, self.cache = data, batch_size, cache
            self.n_batches = -(-len(data) // batch_size)
            self.next = 0
            self.buffer = torch.empty((batch_size, *data.shape[1:]), dtype=torch.float32, device="cuda")

        def get_batch_size(self) -> int:
            return self.batch_size

        def get_batch(self, names):
            if self.next >= self.n_batches:
                return None
            idx = np.arange(self.next * self.batch_size, (self.next + 1) * self.batch_size) % len(self.data)
            self.next += 1
            self.buffer.copy_(torch.from_numpy(self.data[idx]))
            torch.cuda.synchronize()
            return [int(self.buffer.data_ptr())] * len(names)

        def read_calibration_cache(self):
            if self.cache is not None and self.cache.is_file():
                return self.cache.read_bytes()
            return None

        def write_calibration_cache(self, blob) -> None:
            if self.cache is not None:
                atomic_write_bytes(self.cache, bytes(blob))

    return _Calibrator()


def build_engine(onnx_path: Path, engine_path: Path, *, input_name: str, input_shape: tuple[int, int, int],
                 batch: BatchRange, precision: str = "fp16", calibration: np.ndarray | None = None,
                 workspace_gib: float = 4.0, calibration_cache: Path | None = None,
                 progress: Callable[[str], None] | None = None) -> EngineInfo:
    """Builds a TensorRT engine from an ONNX embedder with a dynamic batch dimension.

    Args:
        onnx_path: The ONNX file (input ``input_name`` of shape ``(batch, C, H, W)``, batch dynamic).
        engine_path: Where the serialized engine is written (atomically: a temporary file, then renamed).
        input_name: The network input tensor.
        input_shape: ``(C, H, W)``.
        batch: Batch sizes of the optimisation profile; ``opt`` is also the calibration batch size.
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"`` (INT8 with FP16 fallback).
        calibration: For ``int8`` only (ignored otherwise): ``N x C x H x W`` float32 preprocessed crops.
        workspace_gib: Builder workspace memory limit in GiB.
        calibration_cache: For ``int8``: read instead of calibrating when it exists, written after calibrating.
            Delete it when the weights or the calibration data change: it is not checked against them.
        progress: Called with one-line status messages.

    Returns:
        The TensorRT version and GPU the engine is tied to (for the manifest's ``engine`` block).

    Raises:
        ValueError: bad arguments, int8 without calibration data, an ONNX file TensorRT cannot parse (with the
            parser's messages) or whose input differs from ``input_name`` / ``input_shape``.
        BundleError: the ONNX file does not exist.
        RuntimeError: tensorrt, torch or a GPU is missing, or TensorRT fails to build the engine.
    """
    say = progress or (lambda msg: None)
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {list(PRECISIONS)}, got {precision!r}")
    input_shape = tuple(int(d) for d in input_shape)
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ValueError(f"input_shape: expected (C, H, W) of positive sizes, got {input_shape}")
    if not workspace_gib > 0:
        raise ValueError(f"workspace_gib: expected > 0, got {workspace_gib}")
    data = _check_calibration(calibration, input_shape) if precision == "int8" else None
    if not onnx_path.is_file():
        raise BundleError(f"{onnx_path}: ONNX file to build a TensorRT engine from not found")

    from reidstream.pipeline.embed.tensorrt_backend import current_engine_info

    info = current_engine_info(_torch_device_index())
    import tensorrt as trt
    import torch

    if precision != "fp32" and not hasattr(trt.BuilderFlag, "FP16"):
        raise RuntimeError(f"precision {precision!r} needs the FP16/INT8 builder flags of TensorRT 10.x; TensorRT "
                           f"{trt.__version__} has none; pip install 'tensorrt>=10,<11' or build fp32")
    errors: list[str] = []
    logger = _make_logger(trt, errors)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    say(f"parsing {onnx_path}")
    if not parser.parse_from_file(str(onnx_path)):
        msgs = [str(parser.get_error(i)) for i in range(parser.num_errors)] or errors or ["no message"]
        raise ValueError(f"{onnx_path}: TensorRT {trt.__version__} cannot parse this ONNX file: " + "; ".join(msgs))
    _check_network(network, onnx_path, input_name, input_shape, batch)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    profile = builder.create_optimization_profile()
    profile.set_shape(input_name, (batch.min, *input_shape), (batch.opt, *input_shape), (batch.max, *input_shape))
    if config.add_optimization_profile(profile) < 0:
        raise ValueError(f"{onnx_path}: TensorRT refuses the batch profile {batch.min}/{batch.opt}/{batch.max}")
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    calibrator = None  # kept referenced here until the build is done
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        # Calibration runs at the opt shape of profile 0 (set_calibration_profile is deprecated in TensorRT 10).
        calibrator = _make_calibrator(trt, torch, data, batch.opt, calibration_cache)
        config.int8_calibrator = calibrator
        say(f"calibrating INT8 on {len(data)} crops in batches of {batch.opt}")
    say(f"building a {precision} TensorRT engine for {info.gpu} (TensorRT {info.tensorrt}); this takes minutes")
    serialized = builder.build_serialized_network(network, config)
    del calibrator
    if serialized is None:
        detail = "; ".join(errors[-5:]) or "see the TensorRT log"
        raise RuntimeError(f"{onnx_path}: TensorRT failed to build a {precision} engine ({detail})")
    atomic_write_bytes(engine_path, memoryview(serialized))  # IHostMemory supports the buffer protocol
    say(f"wrote {engine_path} ({engine_path.stat().st_size / 1e6:.1f} MB)")
    return info


def _torch_device_index() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return int(torch.cuda.current_device()) if torch.cuda.is_available() else 0


def _check_network(network, onnx_path: Path, input_name: str, input_shape: tuple[int, int, int],
                   batch: BatchRange) -> None:
    """ValueError unless the parsed network has one input ``input_name`` of shape ``(batch, C, H, W)``."""
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    if [t.name for t in inputs] != [input_name]:
        raise ValueError(f"{onnx_path}: expected one input {input_name!r}, got {[t.name for t in inputs]}")
    shape = tuple(int(d) for d in inputs[0].shape)
    if len(shape) != 4 or shape[1:] != input_shape:
        raise ValueError(f"{onnx_path}: input {input_name!r} has shape {shape}; expected (batch, "
                         f"{', '.join(map(str, input_shape))})")
    if shape[0] != -1 and not batch.min == batch.max == shape[0]:
        raise ValueError(f"{onnx_path}: input {input_name!r} has a fixed batch of {shape[0]}; export it with a "
                         f"dynamic batch axis for batches {batch.min}..{batch.max}")


__all__ = ["PRECISIONS", "build_engine", "tensorrt_available"]
