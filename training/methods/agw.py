"""AGW baseline for visible-infrared re-identification (Ye et al., TPAMI 2021), the base of LUPI (seed 004).

Alehdaghi et al. (seed 004, Sec. 4.1-4.2) build on AGW [52] "following the same
hyper-parameter configuration": a ResNet-50 whose first block (``stem``) is
modality-specific and whose later stages are shared, non-local attention in
``layer2``/``layer3``, GeM pooling and a BN neck (all in
:class:`~reidstream.training.models.vi_net.VINet` with ``split_stage="stem"``,
``non_local=True``, ``pool="gem"``). The loss is
``L = L_id + L_wrt``: cross-entropy on the classifier outputs of both
modalities and the weighted regularisation triplet on the pooled features
(before the BN neck) of the visible and infrared images together, so that
cross- and intra-modality pairs both count.

As in AGW's code, the visible and infrared images go through their own first
block and then through the shared stages *as one batch*
(:func:`joint_forward`), so the BatchNorm statistics of the shared stages and
of the BN neck are those of the mixed batch.

Learning rates (AGW's code, which LUPI reuses): the BN neck and the classifier
form the head group at the base rate (0.1); every other parameter, the
non-local blocks included, learns at 0.1 x that (0.01). :meth:`AGWMethod.head_modules`
names the head for :func:`reidstream.training.run.build_optimizer`.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from reidstream.training.losses.identity import softmax_loss
from reidstream.training.losses.wrt import weighted_regularization_triplet
from reidstream.training.models.vi_net import VINet

from ._common import check_vi_batch, embedder_spec


def joint_forward(net: VINet, inputs: Sequence[tuple[str, Tensor]]) -> list[dict[str, Tensor]]:
    """Runs several branches of a global-head VINet with the shared stages on the concatenated batch.

    Each ``(branch, images)`` pair goes through that branch's own stream; the
    outputs are concatenated and pass the shared stages, pooling, BN neck and
    classifier once, then are split back. In eval mode this equals calling
    ``net(images, branch)`` per pair; in training mode BatchNorm sees the whole
    multi-modal batch, as in AGW and LUPI.

    Args:
        net: A :class:`VINet` with ``parts == 0``.
        inputs: ``(branch name, B_i x 3 x H x W images)`` pairs, all with the same ``H x W``.

    Returns:
        One dict per pair with ``low``, ``feature_map``, ``pooled``, ``feature``,
        ``embedding`` and (with a classifier) ``logits``, as ``VINet.forward``.
    """
    if getattr(net, "parts", None) != 0:
        raise ValueError("net: expected a VINet with the global AGW head (parts=0)")
    return net.forward_joint(inputs)


def head_modules(net: VINet) -> list[nn.Module]:
    """The head learning-rate group of AGW's code: the BN neck and the classifier (``ignored_params``).

    Everything else (per-modality first blocks, shared stages, non-local blocks) is the
    base group at 0.1 x the head's rate.
    """
    return [m for m in (getattr(net, "bottleneck", None), getattr(net, "classifier", None)) if m is not None]


def check_modalities(net: VINet, modalities: Sequence[str]) -> tuple[str, str]:
    """Validates ``(visible, infrared)`` names against the network's branches."""
    if isinstance(modalities, str) or len(modalities) != 2 or len(set(modalities)) != 2:
        raise ValueError(f"modalities: expected two distinct names (visible, infrared), got {modalities!r}")
    missing = [m for m in modalities if m not in getattr(net, "branches", ())]
    if missing:
        raise ValueError(f"net: expected branches for modalities {list(modalities)}, missing {missing} "
                         f"(branches: {getattr(net, 'branches', None)})")
    if getattr(net, "parts", None) != 0:
        raise ValueError("net: expected a VINet with the global AGW head (parts=0)")
    if net.classifier is None:
        raise ValueError("net: the identity loss needs a classifier (num_classes > 0)")
    return tuple(modalities)  # type: ignore[return-value]


class AGWMethod(nn.Module):
    """AGW: ID loss + weighted regularisation triplet on a two-branch VINet.

    Args:
        net: ``VINet(branches=modalities, split_stage="stem", non_local=True, pool="gem", num_classes=N)``.
        modalities: ``(visible, infrared)`` batch keys and branch names, e.g. ``("rgb", "thermal")`` on RegDB.
    """

    monitor = "val/mAP"
    monitor_mode = "max"
    sampler = "cross_modal"

    def __init__(self, net: VINet, modalities: Sequence[str] = ("rgb", "ir")) -> None:
        super().__init__()
        self._modalities = check_modalities(net, modalities)
        self.net = net

    @property
    def modalities(self) -> tuple[str, str]:
        """``(visible, infrared)``: the modalities a training batch must carry."""
        return self._modalities

    @property
    def input_channels(self) -> int:
        """Channels of the preprocessed input images."""
        return 3

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """``{"loss": id + tri, "id", "tri", "acc"}`` for one cross-modality batch."""
        vis, ir = self._modalities
        x_v, x_t, labels = check_vi_batch(batch, self._modalities)
        out_v, out_t = joint_forward(self.net, [(vis, x_v), (ir, x_t)])
        y = torch.cat([labels, labels]).to(x_v.device)
        logits = torch.cat([out_v["logits"], out_t["logits"]])
        loss_id = softmax_loss(logits, y)
        loss_tri = weighted_regularization_triplet(torch.cat([out_v["pooled"], out_t["pooled"]]), y)
        acc = (logits.argmax(1) == y).float().mean().detach()
        return {"loss": loss_id + loss_tri, "id": loss_id, "tri": loss_tri, "acc": acc}

    def head_modules(self) -> list[nn.Module]:
        """Modules of the head learning-rate group (BN neck, classifier); see :func:`head_modules`."""
        return head_modules(self.net)

    def embedders(self) -> dict[str, nn.Module]:
        """Modality -> module mapping that modality's images to embeddings (its own branch only)."""
        return {m: self.net.branch(m) for m in self._modalities}

    def embedder_specs(self) -> dict[str, dict[str, Any]]:
        """Modality -> checkpoint entry of its embedding network (the VINet and the branch to run)."""
        return {m: embedder_spec("vinet", self.net, branch=m) for m in self._modalities}
