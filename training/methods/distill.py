"""Step II of cross-modal distillation, with optional cross-modal gated attention.

Hafner et al. (CVIU 2022), Sec. 3.2 step II: the step-I network F of the first
modality is frozen (F_fr) and serves as a real frozen teacher submodule. A new
network G of the same architecture for the second modality is initialised with
F's weights, its layers from a mid-level stage up to the embedding are frozen,
and its remaining low layers learn to map coupled images of the second modality
onto F_fr's embeddings with the MSE of Eq. (3). Early stopping watches the
validation loss (Sec. 4.1).

With ``attention_stage`` set (Sec. 3.3, Eq. 4), the teacher's features at that
stage gate G's features there during training; at test time G gates itself, so
inference needs only its own modality.

Table 5's ablations are constructor switches: ``copy_weights=False`` (G starts
from scratch or ImageNet) and ``freeze_from=None`` (nothing frozen).

Two details of the freezing follow the authors' released code, not the text
(see :mod:`reidstream.training.models.freezing`): the cut can sit inside a
stage (``freeze_from="layer3.0.conv3"``: the code freezes from that layer on),
and ``frozen_bn="adapt"`` lets the frozen BatchNorm layers normalise with batch
statistics and update their running statistics towards the new modality, as
the code's ``model.train()`` does; ``frozen_bn="fixed"`` keeps every frozen
parameter and buffer bit-identical.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from reidstream.training.losses import embedding_mse
from reidstream.training.models import ReIDNet
from reidstream.training.models.freezing import check_frozen_bn

from ._common import EmbeddingHead, embedder_spec


class DistillMethod(nn.Module):
    """Frozen teacher F_fr (modality 1) distils its embedding space into student G (modality 2).

    Args:
        teacher: The trained step-I network; it is frozen here (no gradients, always in eval mode).
        student: The network G to train; ``student.attention_stage`` enables cross-modal gating.
        teacher_modality: Modality of the teacher's images (``"depth"`` in the paper's best direction).
        student_modality: Modality of the student's images (``"rgb"``).
    """

    monitor = "val/loss"
    monitor_mode = "min"
    sampler = "paired"

    def __init__(self, teacher: ReIDNet, student: ReIDNet, teacher_modality: str, student_modality: str) -> None:
        super().__init__()
        if teacher_modality == student_modality:
            raise ValueError(f"teacher and student modality are both {teacher_modality!r}; distillation "
                             "transfers between two different modalities")
        if teacher.config()["embedding_dim"] != student.config()["embedding_dim"]:
            raise ValueError(f"teacher embedding_dim {teacher.config()['embedding_dim']} != student "
                             f"embedding_dim {student.config()['embedding_dim']}; Eq. 3 compares them directly")
        self.teacher = teacher
        self.student = student
        self.teacher_modality = teacher_modality
        self.student_modality = student_modality
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.teacher.eval()

    @classmethod
    def from_teacher(cls, teacher: ReIDNet, teacher_modality: str, student_modality: str, *,
                     copy_weights: bool = True, freeze_from: str | None = "layer3", frozen_bn: str = "fixed",
                     attention_stage: str | None = None, attention_pool: str = "mean",
                     init: dict[str, torch.Tensor] | None = None) -> "DistillMethod":
        """Builds G from F as in Sec. 3.2: same architecture, copied weights, frozen mid-to-high layers.

        Args:
            teacher: Trained step-I network F.
            teacher_modality: F's modality.
            student_modality: G's modality.
            copy_weights: Copy F's weights into G (else G keeps ``init`` or its random initialisation).
            freeze_from: Where G's freezing starts, up to and including the embedding: a stage
                name, or a backbone module path such as ``"layer3.0.conv3"`` (the authors' code);
                None = nothing frozen.
            frozen_bn: ``"fixed"`` (frozen BatchNorm in eval mode, buffers unchanged) or
                ``"adapt"`` (running statistics adapt to the student's modality, as the
                authors' ``model.train()``).
            attention_stage: Stage whose output the teacher gates (Eq. 4); None = no attention.
            attention_pool: Channel pooling of the gating signal.
            init: Optional state dict (e.g. ImageNet backbone) for G when not copying.
        """
        check_frozen_bn(frozen_bn)
        cfg = dict(teacher.config(), num_classes=0, attention_stage=attention_stage, attention_pool=attention_pool)
        student = ReIDNet.from_config(cfg)
        if copy_weights:
            state = {k: v for k, v in teacher.state_dict().items() if not k.startswith("classifier.")}
            student.load_state_dict(state, strict=True)
        elif init is not None:
            student.load_state_dict(init, strict=False)
        if freeze_from is not None:
            student.freeze_from(freeze_from, upto="embedding", bn=frozen_bn)
        return cls(teacher, student, teacher_modality, student_modality)

    def train(self, mode: bool = True) -> "DistillMethod":
        super().train(mode)
        self.teacher.eval()  # F_fr is frozen: its BatchNorm statistics never move
        return self

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modalities a training batch must carry (coupled images of both)."""
        return (self.teacher_modality, self.student_modality)

    @property
    def input_channels(self) -> int:
        """Channels of the preprocessed input images."""
        return 3

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Eq. (3) on a batch of coupled images: ``{"loss": L_MSE}``."""
        x_t, x_s = batch[self.teacher_modality], batch[self.student_modality]
        with torch.no_grad():
            target = self.teacher(x_t)["embedding"]
            stage = self.student.attention_stage
            gate = self.teacher.stage_features(x_t, stage) if stage is not None else None
        out = self.student(x_s, gate=gate)
        return {"loss": embedding_mse(out["embedding"], target)}

    def embedders(self) -> dict[str, nn.Module]:
        """Modality -> embedding module; both map into the teacher's embedding space."""
        return {self.teacher_modality: EmbeddingHead(self.teacher),
                self.student_modality: EmbeddingHead(self.student)}

    def embedder_specs(self) -> dict[str, dict[str, Any]]:
        """Modality -> self-contained description of its embedding network (for checkpoints)."""
        return {self.teacher_modality: embedder_spec("reidnet", self.teacher),
                self.student_modality: embedder_spec("reidnet", self.student)}
