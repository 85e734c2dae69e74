"""PyTorch embedder -> ONNX with a dynamic batch axis, L2-normalised output and reid-stream metadata."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from reidstream.pipeline.bundle import ONNX_METADATA_KEY

DEFAULT_OPSET = 17


class NormalizedEmbedder(nn.Module):
    """``module`` followed by L2 normalisation of each embedding (so cosine = dot product).

    Args:
        module: Maps ``B x C x H x W`` images to ``B x D`` embeddings.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.module(x), dim=1)


def export_onnx(module: nn.Module, path: str | Path, *, input_shape: tuple[int, int, int],
                metadata: Mapping[str, Any], input_name: str = "images", output_name: str = "embeddings",
                opset: int = DEFAULT_OPSET, simplify: bool = False) -> Path:
    """Exports an embedding network to ONNX and checks the result.

    The graph takes ``batch x C x H x W`` float32 (``batch`` dynamic) and returns
    ``batch x D`` float32. ``metadata`` is stored as JSON under
    ``metadata_props["reid_stream"]``, with its top-level scalar fields also as
    plain properties for tools such as Netron. The file is validated with
    ``onnx.checker`` before it is moved into place.

    Args:
        module: The network (put in eval mode here; its output is exported as is).
        path: Output ``.onnx`` file.
        input_shape: ``(C, H, W)`` of one preprocessed crop.
        metadata: The manifest entry's metadata (:meth:`EmbedderFile.metadata`).
        input_name: Name of the graph input.
        output_name: Name of the graph output.
        opset: ONNX opset.
        simplify: Simplify the graph with onnxslim (constant folding, redundant nodes removed).

    Raises:
        RuntimeError: the onnx package (or onnxslim with ``simplify``) is not installed.
        ValueError: the exported model fails ``onnx.checker``.
    """
    try:
        import onnx
    except ImportError:
        raise RuntimeError("ONNX export needs the onnx package; pip install 'reid-stream[onnx]'") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    was = module.training
    module.eval()
    dummy = torch.zeros((2, *input_shape), dtype=torch.float32, device=next(module.parameters()).device)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # Input checks in forward() are traced as constants; the batch axis stays dynamic (tested).
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(module, (dummy,), str(tmp), input_names=[input_name], output_names=[output_name],
                              dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
                              opset_version=opset, do_constant_folding=True, dynamo=False)
        model = onnx.load(str(tmp))
        if simplify:
            try:
                import onnxslim
            except ImportError:
                raise RuntimeError("simplify: graph simplification needs onnxslim; pip install onnxslim") from None
            model = onnxslim.slim(model)
        props = {ONNX_METADATA_KEY: json.dumps(dict(metadata), sort_keys=True)}
        props.update({f"reid_stream.{k}": str(v) for k, v in metadata.items() if isinstance(v, (str, int, float))})
        del model.metadata_props[:]
        for k, v in props.items():
            model.metadata_props.add(key=k, value=v)
        model.producer_name = "reid-stream"
        try:
            onnx.checker.check_model(model, full_check=True)
        except onnx.checker.ValidationError as e:
            raise ValueError(f"{path}: exported graph fails onnx.checker ({e})") from None
        onnx.save(model, str(tmp))
        os.replace(tmp, path)
    finally:
        module.train(was)
        tmp.unlink(missing_ok=True)
    return path
