"""Training methods on tiny CPU networks: losses, frozen teachers, frozen stages, attention at test time."""

from __future__ import annotations

import pytest
import torch

from reidstream.training.losses import embedding_mse
from reidstream.training.methods import (DistillMethod, OneStreamMethod, SupervisedMethod, TwoStreamMethod,
                                         ZeroPaddingMethod)
from reidstream.training.models import ReIDNet, TwoStreamNet

H, W = 64, 32


def tiny(**kw) -> ReIDNet:
    kw.setdefault("embedding_dim", 16)
    return ReIDNet("resnet18", width=8, **kw)


def batch(n=8, classes=4, mods=("rgb", "depth"), channels=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {m: torch.randn(n, channels, H, W, generator=g) for m in mods}
    out["label"] = torch.arange(n) % classes
    return out


def train_steps(method, steps=3, **kw):
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    method.train()
    for i in range(steps):
        out = method(batch(seed=i, **kw))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    return out


def test_supervised_softmax_and_triplet_losses():
    torch.manual_seed(0)
    m = SupervisedMethod(tiny(num_classes=4), "depth", loss="softmax")
    out = m(batch())
    assert set(out) >= {"loss", "acc"} and out["loss"].ndim == 0 and out["loss"] > 0
    t = SupervisedMethod(tiny(), "depth", loss="triplet", margin=0.5)
    assert t.sampler == "pk" and m.sampler == "shuffle"
    assert t(batch())["loss"] >= 0
    with pytest.raises(ValueError, match="classifier"):
        SupervisedMethod(tiny(), "depth", loss="softmax")
    with pytest.raises(ValueError, match="loss"):
        SupervisedMethod(tiny(num_classes=4), "depth", loss="hinge")


def test_distill_loss_is_eq3_against_frozen_teacher():
    torch.manual_seed(0)
    teacher = tiny(num_classes=4)
    m = DistillMethod.from_teacher(teacher, "depth", "rgb", copy_weights=True, freeze_from="layer3")
    m.eval()
    b = batch()
    with torch.no_grad():
        want = embedding_mse(m.student(b["rgb"])["embedding"], teacher(b["depth"])["embedding"])
        got = m(b)["loss"]
    assert torch.allclose(got, want)
    assert all(not p.requires_grad for p in m.teacher.parameters())
    m.train()
    assert not m.teacher.training, "the frozen teacher must stay in eval mode"


def test_step2_copies_weights_and_frozen_stages_stay_bit_identical():
    torch.manual_seed(0)
    teacher = tiny(num_classes=4)
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    m = DistillMethod.from_teacher(teacher, "depth", "rgb", copy_weights=True, freeze_from="layer3")
    student_before = {k: v.clone() for k, v in m.student.state_dict().items()}
    for k, v in student_before.items():
        assert torch.equal(v, teacher_before[k]), f"step II must start from step I's weights ({k})"
    train_steps(m, steps=3)
    after = m.student.state_dict()
    frozen = [k for k in after if k.split(".")[0] == "embedding" or k.startswith(("backbone.layer3", "backbone.layer4"))]
    trained = [k for k in after if k.startswith(("backbone.conv1", "backbone.layer1", "backbone.layer2"))]
    assert frozen and trained
    for k in frozen:  # parameters and BatchNorm buffers alike
        assert torch.equal(after[k], student_before[k]), f"frozen {k} changed"
    assert any(not torch.equal(after[k], student_before[k]) for k in trained if after[k].is_floating_point())
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), f"teacher {k} changed"


def test_ablations_no_copy_and_no_freeze():
    torch.manual_seed(0)
    teacher = tiny(num_classes=4)
    m = DistillMethod.from_teacher(teacher, "depth", "rgb", copy_weights=False, freeze_from=None)
    w_t = teacher.backbone.conv1.weight
    assert not torch.equal(m.student.backbone.conv1.weight, w_t)
    assert all(p.requires_grad for p in m.student.parameters())
    before = m.student.embedding[0].weight.clone()
    train_steps(m, steps=2)
    assert not torch.equal(m.student.embedding[0].weight, before), "nothing frozen: the embedding trains too"


def test_cross_modal_attention_gates_in_training_and_self_gates_at_test():
    torch.manual_seed(0)
    teacher = tiny(num_classes=4)
    m = DistillMethod.from_teacher(teacher, "depth", "rgb", attention_stage="layer2")
    b = batch()
    m.eval()
    gate = teacher.stage_features(b["depth"], "layer2")
    with torch.no_grad():
        gated = m.student(b["rgb"], gate=gate)["embedding"]
        selfg = m.student(b["rgb"])["embedding"]
    assert not torch.allclose(gated, selfg), "the depth gate must change the RGB features in training"
    # At test time the RGB embedder sees only RGB: the same image with any other-modality input
    # (different depth, none at all) gives the same embedding.
    emb = m.embedders()["rgb"]
    with torch.no_grad():
        a = emb(b["rgb"])
        other = batch(seed=9)
        m(dict(b, depth=other["depth"]))  # a training-style call with another depth must not leak state
        c = emb(b["rgb"])
    assert torch.equal(a, c) and torch.allclose(a, selfg)


def test_distill_rejects_same_modality_and_size_mismatch():
    t = tiny()
    with pytest.raises(ValueError, match="different modalities"):
        DistillMethod.from_teacher(t, "depth", "depth")
    with pytest.raises(ValueError, match="embedding_dim"):
        DistillMethod(t, tiny(embedding_dim=8), "depth", "rgb")


@pytest.mark.parametrize("kind", ["one_stream", "two_stream", "zero_padding"])
def test_baselines_train_both_modalities(kind):
    torch.manual_seed(0)
    if kind == "one_stream":
        m, ch = OneStreamMethod(tiny(num_classes=4)), 3
    elif kind == "two_stream":
        m, ch = TwoStreamMethod(TwoStreamNet("resnet18", width=8, embedding_dim=16, num_classes=4)), 3
    else:
        m, ch = ZeroPaddingMethod(tiny(num_classes=4, in_channels=2)), 1
    assert m.input_channels == ch
    out = train_steps(m, steps=2, channels=ch)
    assert torch.isfinite(out["loss"]) and set(out) >= {"loss", "acc"}
    embs = m.embedders()
    m.eval()
    b = batch(channels=ch)
    with torch.no_grad():
        e_rgb, e_depth = embs["rgb"](b["rgb"]), embs["depth"](b["depth"])
    assert e_rgb.shape == e_depth.shape == (8, 16)
    if kind == "zero_padding":
        with pytest.raises(ValueError, match="B x 1 x H x W"):
            embs["rgb"](torch.zeros(2, 3, H, W))
