"""Step II at the authors' code's settings: the layer3.0.conv3 cut, adapting BatchNorm, the ReLU embedding, configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reidstream.pipeline.config import ConfigError, load_config
from reidstream.training import run as run_mod
from reidstream.training.config import TrainConfig
from reidstream.training.data.transforms import Preprocess
from reidstream.training.methods import DistillMethod
from reidstream.training.models import ReIDNet

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "train"
H, W = 64, 32


def teacher50(**kw) -> ReIDNet:
    return ReIDNet("resnet50", width=8, embedding_dim=16, num_classes=4, **kw)


def pair_batch(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"depth": torch.randn(8, 3, H, W, generator=g), "rgb": torch.randn(8, 3, H, W, generator=g) * 2 + 1,
            "label": torch.arange(8) % 4}


def train(method: DistillMethod, steps: int = 2) -> None:
    opt = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=1e-3)
    method.train()
    for i in range(steps):
        loss = method(pair_batch(i))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("frozen_bn", ["fixed", "adapt"])
def test_cut_and_bn_behaviour_through_a_distillation_step(frozen_bn):
    torch.manual_seed(0)
    teacher = teacher50(embedding_relu=True)
    t_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    m = DistillMethod.from_teacher(teacher, "depth", "rgb", freeze_from="layer3.0.conv3", frozen_bn=frozen_bn)
    assert m.student.config()["embedding_relu"] is True, "G copies F's architecture"
    before = {k: v.clone() for k, v in m.student.state_dict().items()}
    train(m)
    after = m.student.state_dict()
    frozen = [k for k in after if k.startswith(("backbone.layer3.0.conv3", "backbone.layer3.0.bn3",
                                                "backbone.layer3.0.downsample", "backbone.layer3.1",
                                                "backbone.layer4", "embedding"))]
    stats = [k for k in frozen if k.endswith(("running_mean", "running_var"))]
    weights = [k for k in frozen if k.endswith(("weight", "bias"))]
    assert stats and weights
    assert all(torch.equal(after[k], before[k]) for k in weights), "frozen weights never move"
    moved = [k for k in stats if not torch.equal(after[k], before[k])]
    assert (moved == stats) if frozen_bn == "adapt" else not moved
    assert not torch.equal(after["backbone.layer3.0.conv2.weight"], before["backbone.layer3.0.conv2.weight"])
    assert all(torch.equal(v, t_before[k]) for k, v in teacher.state_dict().items()), "the teacher never moves"
    assert not m.teacher.training


def test_from_teacher_contract():
    with pytest.raises(ValueError, match="frozen_bn"):
        DistillMethod.from_teacher(teacher50(), "depth", "rgb", frozen_bn="train")
    with pytest.raises(ValueError, match="no such module"):
        DistillMethod.from_teacher(ReIDNet("resnet18", width=8, embedding_dim=16), "depth", "rgb",
                                   freeze_from="layer3.0.conv3")


def _cfg(name: str, *overrides: str) -> TrainConfig:
    return load_config(TrainConfig, CONFIGS / name, overrides=list(overrides))


def _fake_teacher(monkeypatch, net: ReIDNet) -> None:
    prep = Preprocess(modality="depth", height=H, width=W)
    monkeypatch.setattr(run_mod, "_teacher", lambda path: (net, "depth", prep))


def test_build_method_passes_cut_bn_and_teacher_relu(monkeypatch):
    _fake_teacher(monkeypatch, ReIDNet("resnet18", width=8, embedding_dim=16, embedding_relu=True))
    cfg = _cfg("synthetic-distill-depth2rgb.yaml")
    assert (cfg.method.freeze_from, cfg.method.frozen_bn, cfg.model.embedding_relu) == \
        ("layer3.0.conv2", "adapt", True)
    method, _ = run_mod.build_method(cfg, num_classes=5)
    s = method.student
    assert s.frozen_bn == "adapt" and s.frozen_parts[0] == "layer3.0.conv2"
    assert s.backbone.layer3[0].conv1.weight.requires_grad and not s.backbone.layer3[0].conv2.weight.requires_grad
    assert len(s.embedding) == 3


def test_build_method_refuses_a_relu_setting_other_than_the_teachers(monkeypatch):
    _fake_teacher(monkeypatch, ReIDNet("resnet18", width=8, embedding_dim=16))
    with pytest.raises(ValueError, match="embedding_relu"):
        run_mod.build_method(_cfg("synthetic-distill-depth2rgb.yaml"), num_classes=5)
    method, _ = run_mod.build_method(_cfg("default-bundle-distill.yaml"), num_classes=5)
    assert method.student.frozen_stages == ("layer3", "layer4", "embedding") and method.student.frozen_bn == "fixed"


def test_embedding_relu_is_refused_where_it_does_not_apply():
    cfg = _cfg("synthetic-sysu-agw.yaml", "model.width=8", "model.embedding_relu=true")
    with pytest.raises(ValueError, match="model.embedding_relu does not apply"):
        run_mod.build_method(cfg, num_classes=5)


@pytest.mark.parametrize("override", ["method.freeze_from=layer9", "method.freeze_from=conv1",
                                      "method.frozen_bn=train"])
def test_distill_config_keys_are_strict(override):
    with pytest.raises(ConfigError):
        _cfg("synthetic-distill-depth2rgb.yaml", override)


def test_hafner_paper_configs_use_the_authors_settings():
    for path in sorted(CONFIGS.glob("*-distill-*.yaml")):
        cfg = load_config(TrainConfig, path)
        want = {"resnet18": "layer3.0.conv2", "efficientnet_lite0": "layer3.0.conv_pwl"}.get(cfg.model.arch,
                                                                                             "layer3.0.conv3")
        assert (cfg.method.freeze_from, cfg.method.frozen_bn, cfg.model.embedding_relu) == (want, "adapt", True), path
    for path in sorted(CONFIGS.glob("*-depth-*.yaml")) + [CONFIGS / "biwi-rgb-softmax.yaml"]:
        assert load_config(TrainConfig, path).model.embedding_relu, path
    bundle = load_config(TrainConfig, CONFIGS / "default-bundle-distill.yaml")
    assert (bundle.method.freeze_from, bundle.method.frozen_bn, bundle.model.embedding_relu) == \
        ("layer3", "fixed", False)
