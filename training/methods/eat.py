"""EAT + CMKD: Gao et al. (2022), *Learning compact and representative features for cross-modality person re-id*.

Two-stream ResNet-50 (stages 0-1 per modality, stages 2-4 shared, Sec. 3.1) with
non-local blocks and GeM pooling (Eq. 3-4), trained with

``L_ALL = L_EAT + L_CMKD + L_ID`` (Eq. 21), where

* ``L_EAT`` (Eq. 19) = the exponential bi-directional enumerate angular triplet
  loss (Eq. 15-17) on the BN-neck features ``+`` the compactness term ``C`` (Eq. 18)
  on the final feature maps;
* ``L_CMKD`` (Eq. 5) on the outputs of the modality-specific stages;
* ``L_ID`` (Eq. 20) = cross-entropy with label smoothing 0.1 (Sec. 4.3) on the
  logits of both modalities, summed as in the authors' code;

with random erasing (p = 0.5, Sec. 4.3) of the training images. Optimiser (Sec.
4.3): Adam, learning rate 3e-4 with warm-up, x0.1 at 10,000 and 20,000 steps,
30,000 steps in all.
"""

from __future__ import annotations

from numbers import Real
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from reidstream.training.losses.angular import compactness, enumerate_angular_triplet
from reidstream.training.losses.cmkd import cmkd_loss, partner_index
from reidstream.training.losses.identity import softmax_loss
from reidstream.training.methods._common import check_vi_batch, embedder_spec
from reidstream.training.methods._erasing import random_erasing
from reidstream.training.models.vi_net import VINet


def _number(value: Any, name: str, lo: float, hi: float | None = None, hi_open: bool = False) -> float:
    ok = isinstance(value, Real) and not isinstance(value, bool) and value >= lo
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    if not ok:
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}{')' if hi_open else ']'}"
        raise ValueError(f"{name}: expected a number {rng}, got {value!r}")
    return float(value)


class EATMethod(nn.Module):
    """Gao et al. (2022): EAT (Eq. 7-19) + CMKD (Eq. 5) + label-smoothed ID loss (Eq. 20), total Eq. (21).

    Args:
        net: ``VINet(branches=..., split_stage="layer1", non_local=True, pool="gem",
            num_classes=N)``, global head (``parts=0``) with a classifier.
        modalities: ``(visible, infrared)`` batch keys, e.g. ``("rgb", "ir")`` or ``("rgb", "thermal")``.
        branches: The net's branch of each modality; default: the modality names if the
            net has branches so named, else the net's two branches in order.
        margin: Angular triplet margin (Sec. 3.3: 1).
        exponential: Exponential EAT, Eq. (15)-(17) (True), or the linear Eq. (8)-(14).
        compactness_term: Add the compactness term ``C`` of Eq. (18) (Eq. 19).
        compactness_reduction: ``"mean"`` (``1/(N R)``) or ``"sum"`` (Eq. 18 as printed).
        cmkd_reduction: ``"mean"`` (per element, authors' code) or ``"sum"`` (Eq. 5 as printed).
        eat_weight: Weight of ``L_EAT`` (Eq. 21: 1; 0 drops it, Table 1 ablation).
        cmkd_weight: Weight of ``L_CMKD`` (Eq. 21: 1; 0 drops it, Table 1 ablation).
        label_smoothing: ``epsilon`` of the ID loss (Sec. 4.3: 0.1).
        erasing: Random-erasing probability of training images (Sec. 4.3: 0.5).
        seed: Seed of the random-erasing generator (repeatable runs).
        sampler: Batch sampler of the run, ``tuple`` (anchor pair + positive + negative, Sec. 4.3) or
            ``cross_modal`` (P x K per modality).
    """

    monitor = "val/mAP"
    monitor_mode = "max"
    sampler = "tuple"

    def __init__(self, net: VINet, modalities: Sequence[str] = ("rgb", "ir"), *,
                 branches: Sequence[str] | None = None, margin: float = 1.0, exponential: bool = True,
                 compactness_term: bool = True, compactness_reduction: str = "mean",
                 cmkd_reduction: str = "mean", eat_weight: float = 1.0, cmkd_weight: float = 1.0,
                 label_smoothing: float = 0.1, erasing: float = 0.5, seed: int = 0,
                 sampler: str = "tuple") -> None:
        super().__init__()
        if not isinstance(net, VINet):
            raise ValueError(f"net: expected a VINet, got {type(net).__name__}")
        if net.parts != 0 or net.classifier is None:
            raise ValueError("net: expected a VINet with the global head (parts=0) and a classifier (num_classes > 0)")
        if isinstance(modalities, str) or len(modalities) != 2 or len(set(modalities)) != 2 \
                or not all(isinstance(m, str) and m for m in modalities):
            raise ValueError(f"modalities: expected two distinct names (visible, infrared), got {modalities!r}")
        if branches is None:
            branches = tuple(modalities) if set(modalities) <= set(net.branches) else tuple(net.branches)
        if isinstance(branches, str) or len(branches) != 2 or len(set(branches)) != 2 \
                or not set(branches) <= set(net.branches):
            raise ValueError(f"branches: expected two distinct branches of the net {net.branches}, got {branches!r}")
        for name, value in (("compactness_reduction", compactness_reduction), ("cmkd_reduction", cmkd_reduction)):
            if value not in ("mean", "sum"):
                raise ValueError(f"{name}: expected 'mean' or 'sum', got {value!r}")
        if sampler not in ("tuple", "cross_modal"):
            raise ValueError(f"sampler: expected 'tuple' (Sec. 4.3) or 'cross_modal', got {sampler!r}")
        self.sampler = sampler
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed: expected an int, got {seed!r}")
        self.net = net
        self._modalities = (modalities[0], modalities[1])
        self.branch_of = dict(zip(self._modalities, branches))
        self.margin = _number(margin, "margin", 0.0)
        self.exponential = bool(exponential)
        self.compactness_term = bool(compactness_term)
        self.compactness_reduction = compactness_reduction
        self.cmkd_reduction = cmkd_reduction
        self.eat_weight = _number(eat_weight, "eat_weight", 0.0)
        self.cmkd_weight = _number(cmkd_weight, "cmkd_weight", 0.0)
        self.label_smoothing = _number(label_smoothing, "label_smoothing", 0.0, 1.0, hi_open=True)
        self.erasing = _number(erasing, "erasing", 0.0, 1.0)
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def modalities(self) -> tuple[str, str]:
        """``(visible, infrared)``: the image keys a training batch must carry."""
        return self._modalities

    @property
    def input_channels(self) -> int:
        """Channels of the preprocessed input images."""
        return 3

    def _inputs(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
        return check_vi_batch(batch, self._modalities)  # type: ignore[return-value]

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Loss of one batch (visible row ``i`` and infrared row ``i`` share ``batch["label"][i]``).

        Returns:
            ``loss`` (Eq. 21) and its parts: ``eat`` (Eq. 17), ``compact`` (Eq. 18),
            ``cmkd`` (Eq. 5), ``id`` (Eq. 20, both modalities), plus ``eat_rgb`` /
            ``eat_ir`` (Eq. 15 / 16) and the ID accuracy ``acc`` (detached).
        """
        x_v, x_i, labels = self._inputs(batch)
        if self.training and self.erasing > 0:
            x_v = random_erasing(x_v, self.erasing, generator=self.generator)
            x_i = random_erasing(x_i, self.erasing, generator=self.generator)
        vis, inf = self._modalities
        # One pass through the shared stages, so their BatchNorm sees both modalities (as AGW trains).
        out_v, out_i = self.net.forward_joint([(self.branch_of[vis], x_v), (self.branch_of[inf], x_i)])

        # Eq. 5: anchor pair i, positive pair partner[i] (same identity).
        j = partner_index(labels).to(out_v["low"].device)
        cmkd = cmkd_loss(out_v["low"], out_i["low"], out_v["low"][j], out_i["low"][j], reduction=self.cmkd_reduction)
        # Eq. 15-17 on the BN-neck features (cosines, so "feature" and "embedding" agree).
        eat = enumerate_angular_triplet(out_v["feature"], out_i["feature"], labels, margin=self.margin,
                                        exponential=self.exponential)
        # Eq. 18 on the final feature maps of every (anchor) image.
        compact = (compactness(out_v["feature_map"], out_i["feature_map"], reduction=self.compactness_reduction)
                   if self.compactness_term else out_v["feature_map"].sum() * 0.0)
        # Eq. 20 with label smoothing, both modalities.
        ident = (softmax_loss(out_v["logits"], labels, self.label_smoothing)
                 + softmax_loss(out_i["logits"], labels, self.label_smoothing))
        loss = self.eat_weight * (eat["eat"] + compact) + self.cmkd_weight * cmkd + ident   # Eq. 19, 21
        with torch.no_grad():
            logits = torch.cat([out_v["logits"], out_i["logits"]])
            acc = (logits.argmax(1) == torch.cat([labels, labels]).to(logits.device)).float().mean()
        return {"loss": loss, "eat": eat["eat"], "eat_rgb": eat["rgb"], "eat_ir": eat["ir"], "compact": compact,
                "cmkd": cmkd, "id": ident, "acc": acc}

    def embedders(self) -> dict[str, nn.Module]:
        """Modality -> module mapping preprocessed images to that branch's embedding (test path, Sec. 4.3)."""
        return {m: self.net.branch(b) for m, b in self.branch_of.items()}

    def embedder_specs(self) -> dict[str, dict[str, Any]]:
        """Modality -> checkpoint entry of its embedding network."""
        return {m: embedder_spec("vinet", self.net, branch=b) for m, b in self.branch_of.items()}
