"""Dual-alignment feature embedding (DFE) of Hao et al., ACM MM 2019 (seed 003).

A PCB-style part network (Sec. 3.2, Fig. 4: ResNet-50, K = 6 horizontal
stripes of the last feature map, average-pooled, 1x1 convolution to 256 + BN
per part, K bias-free classifiers) sees N visible/infrared pairs of the same
identities (Sec. 3.3, Fig. 5) and is trained with Eq. (15)

``L = alpha * L_id + beta * L_d + gamma * L_c``

* ``L_id`` (Eq. 13): part cross-entropies, summed over the K parts, averaged
  over the batch, for the visible plus the infrared batch;
* ``L_d`` (Eq. 14): intra-class distribution loss on each pair's part
  features (per-image mean and standard deviation over its K parts);
* ``L_c`` (Eq. 12): inter-class correlation loss between the Pearson matrices
  of the visible and the infrared aggregated features ``f^A`` (parts
  concatenated).

``alpha : beta : gamma`` is 1 : 1 : 1 on SYSU-MM01 and 1 : 11 : 2 on RegDB
(Sec. 4.2, "Trade-off factors"). The test descriptor is the concatenation of
the K part features after BatchNorm (Sec. 3.2 / 4.2); :class:`VINet` returns it
L2-normalised as ``"embedding"``.
"""

from __future__ import annotations

from numbers import Real
from typing import Any, Sequence

import torch
from torch import nn

from reidstream.training.losses.dual_align import correlation_loss, distribution_loss, part_identity_loss
from reidstream.training.models.vi_net import VINet

from ._common import check_vi_batch, embedder_spec


class DualAlignMethod(nn.Module):
    """Part features with intra-class distribution and inter-class correlation alignment.

    The paper shares *all* weights between the visible and the infrared
    extractor (Sec. 3.5, following Wu et al.'s one-stream finding), so the
    faithful network has a single branch, used by both modalities; both
    batches then run through it in one forward pass, so its BatchNorm layers
    see one joint batch (the paper does not say; separate passes would
    normalise each modality to the same batch mean in training). A net whose
    branches include both modality names is accepted too (modality-specific
    low stages, a variant): each modality then uses its own branch.

    Args:
        net: A part-head :class:`VINet` (``parts = K > 0``, ``num_classes > 0``); the paper's is
            ``VINet("resnet50", branches=("onestream",), non_local=False, pool="avg", parts=6,
            part_dim=256, num_classes=N, last_stride=1)``.
        modalities: ``(visible, infrared)`` batch keys, e.g. ``("rgb", "ir")`` or ``("rgb", "thermal")``.
        alpha: Weight of the identity loss ``L_id`` (Eq. 15).
        beta: Weight of the distribution loss ``L_d`` (Eq. 15; 1 on SYSU-MM01, 11 on RegDB).
        gamma: Weight of the correlation loss ``L_c`` (Eq. 15; 1 on SYSU-MM01, 2 on RegDB).
        eps: Variance regulariser of the standard deviations (Eq. 7-8) and Pearson coefficients (Eq. 9).
    """

    monitor = "val/mAP"
    monitor_mode = "max"
    sampler = "cross_modal"

    def __init__(self, net: VINet, modalities: Sequence[str] = ("rgb", "ir"), *, alpha: float = 1.0,
                 beta: float = 1.0, gamma: float = 1.0, eps: float = 1e-8) -> None:
        super().__init__()
        if not isinstance(net, VINet):
            raise ValueError(f"net: expected a VINet, got {type(net).__name__}")
        if net.parts < 1 or net.part_classifiers is None:
            raise ValueError(f"net: expected a part head with classifiers (parts > 0, num_classes > 0), got "
                             f"parts={net.parts}, num_classes={net.config()['num_classes']}")
        if isinstance(modalities, str) or len(modalities) != 2 or modalities[0] == modalities[1]:
            raise ValueError(f"modalities: expected two distinct names (visible, infrared), got {modalities!r}")
        for name, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
            if not isinstance(v, Real) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name}: expected a number >= 0, got {v!r}")
        if not isinstance(eps, Real) or isinstance(eps, bool) or not eps > 0:
            raise ValueError(f"eps: expected a number > 0, got {eps!r}")
        mods = (str(modalities[0]), str(modalities[1]))
        if len(net.branches) == 1:
            self.branch_of = {m: net.branches[0] for m in mods}
        elif all(m in net.branches for m in mods):
            self.branch_of = {m: m for m in mods}
        else:
            raise ValueError(f"net: expected one shared branch or branches named after the modalities {mods}, "
                             f"got branches {net.branches}")
        self.net = net
        self._modalities = mods
        self.alpha, self.beta, self.gamma, self.eps = float(alpha), float(beta), float(gamma), float(eps)

    @property
    def modalities(self) -> tuple[str, str]:
        """``(visible, infrared)``: the modalities a training batch must carry."""
        return self._modalities

    @property
    def input_channels(self) -> int:
        """Channels of the preprocessed input images."""
        return 3

    def _check_batch(self, batch: dict[str, Any]) -> torch.Tensor:
        return check_vi_batch(batch, self._modalities)[-1]

    def _run(self, batch: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        vis, ir = self._modalities
        if self.branch_of[vis] == self.branch_of[ir]:
            n = batch[vis].shape[0]
            out = self.net(torch.cat([batch[vis], batch[ir]]), self.branch_of[vis])
            keys = ("parts", "part_logits", "feature")
            return {k: out[k][:n] for k in keys}, {k: out[k][n:] for k in keys}
        out_v, out_i = self.net.forward_joint([(self.branch_of[vis], batch[vis]), (self.branch_of[ir], batch[ir])])
        return out_v, out_i

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Loss of one paired batch (Eq. 15).

        Args:
            batch: ``{visible: B x 3 x H x W, infrared: B x 3 x H x W, "label": B}``; row j of the
                visible and the infrared images share the identity ``label[j]``.

        Returns:
            ``loss`` (Eq. 15), its terms ``id`` (Eq. 13), ``dist`` (Eq. 14), ``corr`` (Eq. 12), and
            ``acc`` (detached training accuracy of the summed part scores, both modalities).
        """
        labels = self._check_batch(batch)
        out_v, out_i = self._run(batch)
        l_id = part_identity_loss(out_v["part_logits"], labels) + part_identity_loss(out_i["part_logits"], labels)
        l_d = distribution_loss(out_v["parts"], out_i["parts"], eps=self.eps)
        l_c = correlation_loss(out_v["feature"], out_i["feature"], eps=self.eps)
        loss = self.alpha * l_id + self.beta * l_d + self.gamma * l_c
        with torch.no_grad():
            labels = labels.to(out_v["part_logits"].device)
            hits = [(o["part_logits"].sum(1).argmax(1) == labels).float() for o in (out_v, out_i)]
            acc = torch.cat(hits).mean()
        return {"loss": loss, "id": l_id, "dist": l_d, "corr": l_c, "acc": acc}

    def embedders(self) -> dict[str, nn.Module]:
        """Modality -> module mapping preprocessed images to the normalised concatenated part features."""
        return {m: self.net.branch(self.branch_of[m]) for m in self._modalities}

    def embedder_specs(self) -> dict[str, dict[str, Any]]:
        """Modality -> self-contained description of its embedding network (for checkpoints)."""
        return {m: embedder_spec("vinet", self.net, branch=self.branch_of[m]) for m in self._modalities}
