"""LUPI: visible-infrared re-identification with a privileged intermediate domain (Alehdaghi et al., seed 004).

Training (Sec. 3): each visible image ``v_i`` of the batch gives an
intermediate image ``z_i``, a random convex combination of its R, G, B channels
(Eq. 4), which the spatial augmentation of Sec. 1 / 4.1 then distorts
independently of ``v_i``. Visible, infrared and intermediate images go through
three streams that share every parameter but the first block (a VINet with
branches ``(visible, infrared, "gray")`` and ``split_stage="stem"``), and
``L = L_tri + lambda * L_c + L_id`` (Eq. 7-8) with the intermediate dual
triplet (Eq. 5) on the pooled features, the colour-free loss (Eq. 6) on the
classifier input and its outputs, and cross-entropy over the three streams.

The three terms of Eq. (5) are summed as the paper writes them; the authors'
code averages them (``triplet_reduction="mean"``). Learning-rate groups follow
AGW's code (:func:`.agw.head_modules`).

Inference: the intermediate images are privileged information, absent at test
time; each modality is embedded by its own branch only (no extra cost).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from reidstream.training.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from reidstream.training.losses.identity import softmax_loss
from reidstream.training.losses.lupi import TRIPLET_REDUCTIONS, colour_free_loss, intermediate_dual_triplet
from reidstream.training.models.vi_net import VINet

from ._common import check_vi_batch, embedder_spec
from .agw import check_modalities, head_modules, joint_forward


def _stats(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> tuple[Tensor, Tensor]:
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"mean, std: expected 3 values each (std > 0), got {mean!r} and {std!r}")
    return (torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1),
            torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1))


def random_channel_weights(n: int, generator: torch.Generator | None = None) -> Tensor:
    """``n x 3`` weights ``(a, b, c) / (a + b + c)`` with ``a, b, c ~ U(0, 1)`` (LUPI Eq. 4), drawn on the CPU."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n: expected an int >= 0, got {n!r}")
    w = torch.rand(n, 3, generator=generator)
    return w / w.sum(dim=1, keepdim=True).clamp(min=1e-12)


def random_grayscale(x: Tensor, generator: torch.Generator | None = None, *, normalised: bool = True,
                     weights: Tensor | None = None, mean: Sequence[float] = IMAGENET_MEAN,
                     std: Sequence[float] = IMAGENET_STD) -> Tensor:
    """Intermediate "random grayscale" images of LUPI Eq. (4): ``G = (aR + bG + cB) / (a + b + c)``.

    ``a, b, c ~ U(0, 1)`` are drawn once per image (Sec. 4.1: "three uniform random
    numbers ... normalised"), so each output image is a convex combination of
    its own R, G, B planes, replicated to 3 channels. The combination is taken
    of the *displayed* colours: with ``normalised=True`` the input is a network
    batch (ImageNet ``mean``/``std`` normalised), which is first mapped back to
    [0, 1], combined, replicated and normalised again with the same per-channel
    ``mean``/``std`` - the preprocessing single-channel modalities (infrared) get.
    With ``normalised=False`` input and output are plain [0, 1] images.

    Args:
        x: ``B x 3 x H x W`` RGB images.
        generator: Random source of the weights (None: torch's default).
        normalised: Whether ``x`` is (and the output should be) mean/std normalised.
        weights: ``B x 3`` convex weights to use instead of drawing them.
        mean: Per-channel normalisation mean.
        std: Per-channel normalisation standard deviation.

    Returns:
        ``B x 3 x H x W`` images whose three channels are equal before normalisation.
    """
    if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"x: expected B x 3 x H x W RGB images, got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if weights is None:
        weights = random_channel_weights(x.shape[0], generator)
    elif weights.shape != (x.shape[0], 3) or bool((weights < 0).any()) or not torch.allclose(
            weights.sum(1), torch.ones(x.shape[0], dtype=weights.dtype, device=weights.device), atol=1e-5):
        raise ValueError(f"weights: expected {x.shape[0]} x 3 non-negative rows summing to 1, got {weights!r}")
    w = weights.to(device=x.device, dtype=x.dtype).view(-1, 3, 1, 1)
    if normalised:
        m, s = _stats(x, mean, std)
        gray = (w * (x * s + m)).sum(dim=1, keepdim=True)
        return (gray.expand(-1, 3, -1, -1) - m) / s
    return (w * x).sum(dim=1, keepdim=True).expand(-1, 3, -1, -1).contiguous()


def random_pad_crop_flip(x: Tensor, generator: torch.Generator | None = None, *, pad: int = 10,
                         flip_p: float = 0.5, fill: str = "zero") -> Tensor:
    """Spatial augmentation of each image on its own (LUPI Sec. 1 and 4.1): pad, random crop back, random flip.

    LUPI distorts the intermediate images differently from the visible images
    they are made from (Sec. 3.3: "the augmentation mechanism uses different
    distortions for RGB and intermediate images"); Sec. 4.1 names the
    operations: random crops "filled with zero-padding or with the mean of
    pixels". Each image is padded by ``pad`` pixels on every side (with 0, or with
    that image's mean value), cropped back to ``H x W`` at a uniformly random
    offset and mirrored horizontally with probability ``flip_p`` (the flip of the
    AGW training transform [52]; ``flip_p=0`` leaves it out).

    Args:
        x: ``B x C x H x W`` images, *not* normalised (so 0 is black).
        generator: Random source of offsets and flips (None: torch's default).
        pad: Padding in pixels (AGW / LUPI: 10 at 288 x 144).
        flip_p: Probability of a horizontal flip.
        fill: ``"zero"`` or ``"mean"``.

    Returns:
        ``B x C x H x W`` augmented images.
    """
    if not isinstance(x, Tensor) or x.ndim != 4:
        raise ValueError(f"x: expected B x C x H x W images, got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if not isinstance(pad, int) or isinstance(pad, bool) or pad < 0:
        raise ValueError(f"pad: expected an int >= 0, got {pad!r}")
    if not 0.0 <= flip_p <= 1.0:
        raise ValueError(f"flip_p: expected a probability in [0, 1], got {flip_p!r}")
    if fill not in ("zero", "mean"):
        raise ValueError(f"fill: expected 'zero' or 'mean', got {fill!r}")
    b, _, h, w = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator).tolist()
    flips = (torch.rand(b, generator=generator) < flip_p).tolist()
    values = x.mean(dim=(1, 2, 3)).tolist() if fill == "mean" else [0.0] * b
    out = []
    for i in range(b):
        img, value = x[i], values[i]
        padded = F.pad(img, (pad, pad, pad, pad), value=value) if pad else img
        oy, ox = offsets[i]
        crop = padded[:, oy:oy + h, ox:ox + w]
        out.append(crop.flip(-1) if flips[i] else crop)
    return torch.stack(out)


class LUPIMethod(nn.Module):
    """LUPI training (Eq. 4-8) on a three-branch VINet; one branch per modality at test time.

    Args:
        net: ``VINet(branches=(visible, infrared, intermediate), split_stage="stem", non_local=True,
            pool="gem", num_classes=N)``.
        modalities: ``(visible, infrared)`` batch keys and branch names.
        intermediate: Branch name of the intermediate (Z) stream.
        margin: ``M`` of Eq. (5) (AGW's triplet margin, 0.3).
        lambda_c: ``lambda`` of Eq. (7), weight of the colour-free loss (paper: 10).
        alpha_c: ``alpha_c`` of Eq. (6) (paper: 0.5).
        cf_threshold: Feature distance switching Eq. (6) from KL to L1 (paper: 0.5).
        l1_reduction: How Eq. (6) reduces ``|f^v - f^z|`` (see :func:`colour_free_loss`).
        triplet_reduction: ``"sum"`` of the three terms of Eq. (5) as the paper writes it
            (default) or their ``"mean"`` as the authors' code computes it.
        augment: Apply the spatial augmentation to the intermediate images.
        pad: Padding (pixels) of that augmentation.
        flip_p: Flip probability of that augmentation.
        fill: ``"zero"`` or ``"mean"`` padding.
        mean: Per-channel normalisation mean of the input batches.
        std: Per-channel normalisation std of the input batches.
        seed: Seed of the method's own random generator for Eq. (4) and the
            augmentation (None: torch's default generator).
    """

    monitor = "val/mAP"
    monitor_mode = "max"
    sampler = "cross_modal"

    def __init__(self, net: VINet, modalities: Sequence[str] = ("rgb", "ir"), *, intermediate: str = "gray",
                 margin: float = 0.3, lambda_c: float = 10.0, alpha_c: float = 0.5, cf_threshold: float = 0.5,
                 l1_reduction: str = "mean", triplet_reduction: str = "sum", augment: bool = True, pad: int = 10,
                 flip_p: float = 0.5, fill: str = "zero", mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, seed: int | None = None) -> None:
        super().__init__()
        self._modalities = check_modalities(net, modalities)
        if intermediate in self._modalities or intermediate not in net.branches:
            raise ValueError(f"intermediate: expected a branch of the network other than {self._modalities}, "
                             f"got {intermediate!r} (branches: {net.branches})")
        for name, v in (("margin", margin), ("lambda_c", lambda_c), ("alpha_c", alpha_c),
                        ("cf_threshold", cf_threshold)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise ValueError(f"{name}: expected a number >= 0, got {v!r}")
        if l1_reduction not in ("mean", "sum"):
            raise ValueError(f"l1_reduction: expected 'mean' or 'sum', got {l1_reduction!r}")
        if triplet_reduction not in TRIPLET_REDUCTIONS:
            raise ValueError(f"triplet_reduction: expected one of {TRIPLET_REDUCTIONS}, got {triplet_reduction!r}")
        random_pad_crop_flip(torch.zeros(1, 1, 1, 1), pad=pad, flip_p=flip_p, fill=fill)  # validates the options
        _stats(torch.zeros(1), mean, std)
        self.net, self.intermediate = net, intermediate
        self.margin, self.lambda_c, self.alpha_c = float(margin), float(lambda_c), float(alpha_c)
        self.cf_threshold, self.l1_reduction = float(cf_threshold), l1_reduction
        self.triplet_reduction = triplet_reduction
        self.augment, self.pad, self.flip_p, self.fill = bool(augment), pad, float(flip_p), fill
        self.mean, self.std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
        self.generator = None if seed is None else torch.Generator().manual_seed(int(seed))

    @property
    def modalities(self) -> tuple[str, str]:
        """``(visible, infrared)``: the modalities a training batch must carry."""
        return self._modalities

    @property
    def input_channels(self) -> int:
        """Channels of the preprocessed input images."""
        return 3

    @torch.no_grad()
    def make_intermediate(self, x_v: Tensor) -> Tensor:
        """Normalised intermediate images ``Z`` from a normalised visible batch: Eq. (4), then the augmentation."""
        if not self.augment:
            return random_grayscale(x_v, self.generator, mean=self.mean, std=self.std)
        m, s = _stats(x_v, self.mean, self.std)
        gray = random_grayscale(x_v * s + m, self.generator, normalised=False)[:, :1]
        gray = random_pad_crop_flip(gray, self.generator, pad=self.pad, flip_p=self.flip_p, fill=self.fill)
        return (gray.expand(-1, 3, -1, -1) - m) / s

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Eq. (8) on one batch: ``{"loss", "id", "tri", "cf", "tri_vtz", "tri_tzv", "tri_zvt", "acc"}``."""
        vis, ir = self._modalities
        x_v, x_t, labels = check_vi_batch(batch, self._modalities)
        labels = labels.to(x_v.device)
        z = self.make_intermediate(x_v)
        out_v, out_t, out_z = joint_forward(self.net, [(vis, x_v), (ir, x_t), (self.intermediate, z)])
        y = torch.cat([labels, labels, labels])
        logits = torch.cat([out_v["logits"], out_t["logits"], out_z["logits"]])
        loss_id = softmax_loss(logits, y)
        tri = intermediate_dual_triplet(out_v["pooled"], out_t["pooled"], out_z["pooled"], labels, labels, labels,
                                        margin=self.margin, reduction=self.triplet_reduction)
        loss_cf = colour_free_loss(out_v["feature"], out_z["feature"], out_v["logits"], out_z["logits"],
                                   alpha_c=self.alpha_c, threshold=self.cf_threshold, l1_reduction=self.l1_reduction)
        acc = (logits.argmax(1) == y).float().mean().detach()
        return {"loss": tri["loss"] + self.lambda_c * loss_cf + loss_id, "id": loss_id, "tri": tri["loss"],
                "cf": loss_cf, "tri_vtz": tri["vtz"], "tri_tzv": tri["tzv"], "tri_zvt": tri["zvt"], "acc": acc}

    def head_modules(self) -> list[nn.Module]:
        """Modules of the head learning-rate group (BN neck, classifier), as AGW's code."""
        return head_modules(self.net)

    def embedders(self) -> dict[str, nn.Module]:
        """Visible and infrared embedders, each running only its own branch (the intermediate one is unused)."""
        return {m: self.net.branch(m) for m in self._modalities}

    def embedder_specs(self) -> dict[str, dict[str, Any]]:
        """Modality -> checkpoint entry of its embedding network (the VINet and the branch to run)."""
        return {m: embedder_spec("vinet", self.net, branch=m) for m in self._modalities}
