"""Cross-modal gated spatial attention (Hafner et al., 2022, Sec. 3.3, Eq. 4)."""

from __future__ import annotations

from torch import Tensor, nn

POOLS = ("mean", "max")


class GatedAttention(nn.Module):
    """Parameter-free gated spatial attention, Hafner et al. (2022) Eq. (4).

    The gating signal ``G^l`` (``B x C' x h x w``) is pooled over channels and
    squashed into a spatial soft-attention map ``a^l = sigmoid(pool_c(G^l))`` of
    shape ``B x 1 x h x w``; the features ``F^l`` are then re-weighted with a
    residual: ``F_a^l = F^l * a^l`` and ``F_g^l = F_a^l + F^l``.

    During training the gate comes from the *other* modality's backbone at the
    same layer (in the paper depth gates the RGB stream). At test time only one
    modality is available, so the network attends to itself:
    ``a^l = sigmoid(pool_c(F^l))`` (pass no ``gate_source``).

    Args:
        pool: Channel pooling, ``"mean"`` (default) or ``"max"``.
    """

    def __init__(self, pool: str = "mean") -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool: expected one of {POOLS}, got {pool!r}")
        self.pool = pool

    def extra_repr(self) -> str:
        return f"pool={self.pool!r}"

    def attention_map(self, source: Tensor) -> Tensor:
        """Returns ``a = sigmoid(pool_c(source))``, shape ``B x 1 x h x w``."""
        if source.ndim != 4:
            raise ValueError(f"gate_source: expected a B x C x h x w map, got shape {tuple(source.shape)}")
        pooled = source.mean(dim=1, keepdim=True) if self.pool == "mean" else source.amax(dim=1, keepdim=True)
        return pooled.sigmoid()

    def forward(self, features: Tensor, gate_source: Tensor | None = None) -> Tensor:
        """Applies Eq. (4).

        Args:
            features: ``F^l``, ``B x C x h x w``.
            gate_source: ``G^l`` of the other modality, ``B x C' x h x w`` (same
                batch and spatial size); ``None`` for self-gating (test time).

        Returns:
            ``F_g^l = F^l * a^l + F^l``, same shape as ``features``.
        """
        if features.ndim != 4:
            raise ValueError(f"features: expected a B x C x h x w map, got shape {tuple(features.shape)}")
        if gate_source is None:
            gate_source = features
        elif gate_source.ndim != 4 or gate_source.shape[0] != features.shape[0] \
                or gate_source.shape[2:] != features.shape[2:]:
            raise ValueError(f"gate_source: expected shape ({features.shape[0]}, C, "
                             f"{features.shape[2]}, {features.shape[3]}) to match features "
                             f"{tuple(features.shape)}, got {tuple(gate_source.shape)}")
        return features * self.attention_map(gate_source) + features
