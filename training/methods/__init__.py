"""Training methods: each an ``nn.Module`` whose ``forward(batch)`` returns a dict with ``"loss"``.

Every method also exposes ``modalities`` (what a batch must carry), ``sampler``
(``"pk"``, ``"shuffle"``, ``"paired"``; visible-infrared: ``"cross_modal"`` or
``"tuple"``), ``monitor`` / ``monitor_mode`` (the validation figure for early stopping), ``embedders()`` (modality -> module
mapping preprocessed images to embeddings) and ``embedder_specs()`` (what a
checkpoint stores to rebuild those networks on their own).
"""

from __future__ import annotations

from .agw import AGWMethod
from .baselines import OneStreamMethod, TwoStreamMethod, ZeroPaddingMethod
from .distill import DistillMethod
from .dual_align import DualAlignMethod
from .eat import EATMethod
from .lupi import LUPIMethod
from .supervised import SupervisedMethod

METHODS = {
    "supervised": SupervisedMethod,
    "distill": DistillMethod,
    "one_stream": OneStreamMethod,
    "two_stream": TwoStreamMethod,
    "zero_padding": ZeroPaddingMethod,
    "agw": AGWMethod,
    "lupi": LUPIMethod,
    "eat": EATMethod,
    "dual_align": DualAlignMethod,
}
"""Method name (``method.name`` in a training config) -> class."""

__all__ = ["METHODS", "AGWMethod", "DistillMethod", "DualAlignMethod", "EATMethod", "LUPIMethod", "OneStreamMethod",
           "SupervisedMethod", "TwoStreamMethod", "ZeroPaddingMethod"]
