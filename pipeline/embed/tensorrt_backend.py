"""TensorRT backend: a serialized engine (``.plan``) from a model bundle, run on a CUDA GPU.

An engine is tied to the GPU model and the TensorRT version it was built with,
and carries no reid-stream metadata of its own: it is only opened through its
bundle entry, whose ``engine`` block records both. The entry is checked against
this machine *before* the engine is deserialised, so a bundle copied to another
GPU fails with a sentence saying what differs instead of a TensorRT error.

Device memory and the CUDA stream come from torch (no pycuda). tensorrt and
torch are imported only when an engine is opened.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from reidstream.pipeline.bundle import BundleError, EmbedderFile, EngineInfo
from reidstream.pipeline.embed.base import check_input

_INSTALL = "pip install 'reid-stream[gpu]' (tensorrt>=10) on a machine with an NVIDIA GPU"


def _cuda_index(device: str) -> int:
    """The GPU index of ``"cuda"`` / ``"cuda:N"``; RuntimeError for anything else (TensorRT runs on GPUs only)."""
    if device == "cuda":
        return 0
    if device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    raise RuntimeError(f"device {device!r}: TensorRT engines run on a CUDA GPU only; expected 'cuda' or 'cuda:N' "
                       f"(use the bundle's ONNX or PyTorch file on the CPU)")


def current_engine_info(device_index: int = 0) -> EngineInfo:
    """The TensorRT version and GPU of this machine, in the form a bundle records for its engines.

    Args:
        device_index: The CUDA device (as torch numbers them).

    Raises:
        RuntimeError: tensorrt or torch is not installed, or there is no such CUDA GPU.
    """
    try:
        import tensorrt
    except ImportError:
        raise RuntimeError(f"TensorRT engines need the tensorrt package, which is not installed; {_INSTALL}") \
            from None
    try:
        import torch
    except ImportError:
        raise RuntimeError("TensorRT engines need torch for GPU memory and streams; pip install 'reid-stream[train]'") \
            from None
    if not torch.cuda.is_available():
        raise RuntimeError(f"TensorRT engines need a CUDA GPU and torch sees none; {_INSTALL}")
    if not 0 <= device_index < torch.cuda.device_count():
        raise RuntimeError(f"cuda:{device_index}: no such GPU (torch sees {torch.cuda.device_count()})")
    major, minor = torch.cuda.get_device_capability(device_index)
    return EngineInfo(tensorrt=str(tensorrt.__version__), gpu=str(torch.cuda.get_device_name(device_index)),
                      compute_capability=f"{major}.{minor}")


def engine_mismatch(expected: EngineInfo, current: EngineInfo) -> str | None:
    """Why an engine built for ``expected`` cannot run on ``current``; None when it can.

    An engine runs only with the exact TensorRT version and on the GPU model (name and compute
    capability) it was built for.
    """
    if (expected.tensorrt, expected.gpu, expected.compute_capability) == \
            (current.tensorrt, current.gpu, current.compute_capability):
        return None
    return (f"built for {expected.gpu} ({expected.compute_capability}) with TensorRT {expected.tensorrt}; "
            f"this machine has {current.gpu} ({current.compute_capability}) with TensorRT {current.tensorrt}; "
            f"rebuild the engine on this machine with reid-export (reid-export bundle CHECKPOINT --runtimes "
            f"onnx,tensorrt; TensorRT engines only run on the GPU model and TensorRT version they were built "
            f"with), or run the bundle's ONNX file instead")


def _dims(shape) -> tuple[int, ...]:
    return tuple(int(d) for d in shape)


class TensorRTBackend:
    """Runs a bundle's TensorRT engine on one GPU.

    Args:
        path: The engine file (``.plan``).
        entry: Its manifest entry (required: an engine carries no reid-stream metadata).
        device: ``"cuda"`` or ``"cuda:N"``.

    Raises:
        BundleError: no entry, an engine built for another GPU or TensorRT version, an unreadable engine,
            or input/output tensors that differ from the entry.
        RuntimeError: tensorrt, torch or the GPU is missing, or ``device`` is not a CUDA device.
    """

    def __init__(self, path: Path, entry: EmbedderFile | None, device: str = "cuda") -> None:
        if entry is None:
            raise BundleError(f"{path}: a TensorRT engine carries no reid-stream metadata (modality, input size, "
                              f"normalisation); open it through its bundle (manifest.json entry)")
        if entry.runtime != "tensorrt" or entry.engine is None:
            raise BundleError(f"{path}: expected a manifest entry of runtime 'tensorrt', got {entry.runtime!r}")
        index = _cuda_index(device)
        why = engine_mismatch(entry.engine, current_engine_info(index))
        if why is not None:
            raise BundleError(f"{path}: cannot run this TensorRT engine: {why}")
        import tensorrt as trt
        import torch

        self.entry = entry
        self.path = path
        self.max_batch = entry.input.batch.max
        self._trt, self._torch = trt, torch
        self._device = torch.device("cuda", index)
        self._lock = threading.Lock()
        self._logger = trt.Logger(trt.Logger.WARNING)
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise BundleError(f"{path}: cannot read the engine ({e})") from None
        with torch.cuda.device(self._device):
            self._runtime = trt.Runtime(self._logger)
            self.engine = self._runtime.deserialize_cuda_engine(data)
            if self.engine is None:
                raise BundleError(f"{path}: TensorRT {trt.__version__} cannot deserialise it (corrupt file, or not "
                                  f"an engine; see the TensorRT log above)")
            self._check_tensors()
            self.context = self.engine.create_execution_context()
        if self.context is None:
            raise RuntimeError(f"{path}: TensorRT could not create an execution context (out of GPU memory?)")

    def _check_tensors(self) -> None:
        """BundleError unless the engine has exactly the entry's input and output tensors."""
        trt, e = self._trt, self.entry
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if inputs != [e.input.name] or outputs != [e.output.name]:
            raise BundleError(f"{self.path}: engine has inputs {inputs} and outputs {outputs}; the manifest expects "
                              f"input {[e.input.name]} and output {[e.output.name]}")
        for name in names:
            if self.engine.get_tensor_dtype(name) != trt.DataType.FLOAT:
                raise BundleError(f"{self.path}: tensor {name!r} is {self.engine.get_tensor_dtype(name)}; "
                                  f"expected float32 input and output")
        want_in = (-1, e.input.channels, e.input.height, e.input.width)
        got_in = _dims(self.engine.get_tensor_shape(e.input.name))
        if got_in != want_in:
            raise BundleError(f"{self.path}: engine input {e.input.name!r} has shape {got_in}; expected {want_in} "
                              f"(dynamic batch)")
        got_out = _dims(self.engine.get_tensor_shape(e.output.name))
        if got_out != (-1, e.output.dim):
            raise BundleError(f"{self.path}: engine output {e.output.name!r} has shape {got_out}; expected "
                              f"(-1, {e.output.dim})")
        lo, _, hi = (_dims(s)[0] for s in self.engine.get_tensor_profile_shape(e.input.name, 0))
        if lo > e.input.batch.min or hi < e.input.batch.max:
            raise BundleError(f"{self.path}: engine accepts batches {lo}..{hi}; the manifest promises "
                              f"{e.input.batch.min}..{e.input.batch.max}")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Embeddings (``B x D`` float32) of a preprocessed batch ``B x C x H x W``."""
        x = check_input(self.entry, x, str(self.path))
        n = len(x)
        if n == 0:
            return np.zeros((0, self.entry.output.dim), np.float32)
        if n > self.max_batch:
            return np.concatenate([self(x[i:i + self.max_batch]) for i in range(0, n, self.max_batch)])
        lo = self.entry.input.batch.min
        if n < lo:  # below the engine profile's minimum: repeat the last crop, drop its outputs
            x = np.concatenate([x, np.repeat(x[-1:], lo - n, axis=0)])
        return self._run(x)[:n]

    def _run(self, x: np.ndarray) -> np.ndarray:
        torch, e = self._torch, self.entry
        with self._lock, torch.cuda.device(self._device):
            host = torch.from_numpy(x if x.flags.writeable else x.copy())
            inp = host.to(self._device)
            out = torch.empty((len(x), e.output.dim), dtype=torch.float32, device=self._device)
            if not self.context.set_input_shape(e.input.name, tuple(inp.shape)):
                raise ValueError(f"{self.path}: the engine refuses input shape {tuple(inp.shape)}")
            got = _dims(self.context.get_tensor_shape(e.output.name))
            if got != tuple(out.shape):
                raise RuntimeError(f"{self.path}: engine output shape {got}, expected {tuple(out.shape)}")
            self.context.set_tensor_address(e.input.name, inp.data_ptr())
            self.context.set_tensor_address(e.output.name, out.data_ptr())
            stream = torch.cuda.current_stream(self._device)
            if not self.context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError(f"{self.path}: TensorRT execution failed (see the TensorRT log above)")
            stream.synchronize()
            return out.cpu().numpy()
