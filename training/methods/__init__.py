"""Training methods: each an ``nn.Module`` whose ``forward(batch)`` returns a dict with ``"loss"``.

Every method also exposes ``modalities`` (what a batch must carry), ``sampler``
(``"pk"``, ``"shuffle"`` or ``"paired"``), ``monitor`` / ``monitor_mode`` (the
validation figure for early stopping), ``embedders()`` (modality -> module
mapping preprocessed images to embeddings) and ``embedder_specs()`` (what a
checkpoint stores to rebuild those networks on their own).
"""

from __future__ import annotations

from .baselines import OneStreamMethod, TwoStreamMethod, ZeroPaddingMethod
from .distill import DistillMethod
from .supervised import SupervisedMethod

METHODS = {
    "supervised": SupervisedMethod,
    "distill": DistillMethod,
    "one_stream": OneStreamMethod,
    "two_stream": TwoStreamMethod,
    "zero_padding": ZeroPaddingMethod,
}
"""Method name (``method.name`` in a training config) -> class."""

__all__ = ["METHODS", "SupervisedMethod", "DistillMethod", "OneStreamMethod", "TwoStreamMethod", "ZeroPaddingMethod"]
