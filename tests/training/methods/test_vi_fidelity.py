"""AGW / LUPI at the authors' code's settings: learning-rate groups, 81-epoch schedule, LUPI's triplet weighting."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reidstream.pipeline.config import ConfigError, load_config
from reidstream.training.config import TrainConfig
from reidstream.training.losses.lupi import intermediate_dual_triplet
from reidstream.training.methods.lupi import LUPIMethod
from reidstream.training.models.vi_net import VINet
from reidstream.training.run import build_method, build_optimizer, lr_factor

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "train"
PAPER = ("sysu-agw.yaml", "regdb-agw.yaml", "sysu-lupi.yaml", "regdb-lupi.yaml")


def _groups(name: str, *overrides: str):
    cfg = load_config(TrainConfig, CONFIGS / name, overrides=["model.width=8", "model.pretrained=null", *overrides])
    method, _ = build_method(cfg, num_classes=5)
    opt, _ = build_optimizer(cfg, method)
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    return cfg, method.net, lr_of


@pytest.mark.parametrize("name", PAPER)
def test_only_bn_neck_and_classifier_are_in_the_head_group(name):
    cfg, net, lr_of = _groups(name, "optim.warmup_epochs=0")
    head, base = cfg.optim.lr, cfg.optim.lr * cfg.optim.backbone_lr_mult
    assert (head, base) == pytest.approx((0.1, 0.01))
    assert len(net.non_local) and all(lr_of[id(p)] == pytest.approx(base) for p in net.non_local.parameters())
    for module in (net.bottleneck, net.classifier):
        assert all(lr_of[id(p)] == pytest.approx(head) for p in module.parameters() if p.requires_grad)
    for module in (*net.streams.values(), net.shared):
        assert all(lr_of[id(p)] == pytest.approx(base) for p in module.parameters())
    trainable = [p for p in net.parameters() if p.requires_grad]
    assert len(lr_of) == len(trainable), "every trainable parameter is in exactly one group"


def test_methods_without_head_modules_keep_the_backbone_split():
    cfg, net, lr_of = _groups("synthetic-sysu-dual-align.yaml", "optim.backbone_lr_mult=0.1")
    o = cfg.optim
    assert all(lr_of[id(p)] == pytest.approx(o.lr * o.backbone_lr_mult * lr_factor(o, 0))
               for p in net.shared.parameters())
    assert all(lr_of[id(p)] == pytest.approx(o.lr * lr_factor(o, 0)) for p in net.part_reduce.parameters())


@pytest.mark.parametrize("name", PAPER)
def test_agw_lupi_paper_schedule_is_agws_81_epochs(name):
    cfg = load_config(TrainConfig, CONFIGS / name)
    o = cfg.optim
    assert cfg.loop.epochs == 81 and o.warmup_epochs == 10 and tuple(o.milestones) == (20, 50)
    assert [lr_factor(o, e) for e in (0, 9, 19, 20, 49, 50, 80)] == pytest.approx(
        [0.1, 1.0, 1.0, 0.1, 0.1, 0.01, 0.01])


def _feats(seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(4).repeat_interleave(2)
    return [torch.randn(8, 6, generator=g) for _ in range(3)], y


def test_dual_triplet_sum_is_eq5_and_mean_is_the_authors_code():
    (f_v, f_t, f_z), y = _feats(0)
    s = intermediate_dual_triplet(f_v, f_t, f_z, y, y, y, margin=0.3)
    m = intermediate_dual_triplet(f_v, f_t, f_z, y, y, y, margin=0.3, reduction="mean")
    terms = s["vtz"] + s["tzv"] + s["zvt"]
    assert s["loss"] > 0
    torch.testing.assert_close(s["loss"], terms)
    torch.testing.assert_close(m["loss"], terms / 3)
    for k in ("vtz", "tzv", "zvt"):
        torch.testing.assert_close(m[k], s[k])
    with pytest.raises(ValueError, match="reduction"):
        intermediate_dual_triplet(f_v, f_t, f_z, y, y, y, reduction="max")


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_lupi_method_weights_the_triplet_as_configured(reduction):
    net = VINet("resnet18", branches=("rgb", "ir", "gray"), width=8, num_classes=3)
    m = LUPIMethod(net, triplet_reduction=reduction, augment=False, seed=1).eval()
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat_interleave(2)
    batch = {"rgb": torch.randn(6, 3, 64, 32, generator=g), "ir": torch.randn(6, 3, 64, 32, generator=g),
             "label": labels}
    with torch.no_grad():
        out = m(batch)
    terms = out["tri_vtz"] + out["tri_tzv"] + out["tri_zvt"]
    torch.testing.assert_close(out["tri"], terms if reduction == "sum" else terms / 3)
    torch.testing.assert_close(out["loss"], out["tri"] + 10.0 * out["cf"] + out["id"])


def test_triplet_reduction_config_and_contract():
    cfg = load_config(TrainConfig, CONFIGS / "synthetic-sysu-lupi.yaml",
                      overrides=["model.width=8", "method.triplet_reduction=mean"])
    method, _ = build_method(cfg, num_classes=5)
    assert method.triplet_reduction == "mean"
    assert load_config(TrainConfig, CONFIGS / "sysu-lupi.yaml").method.triplet_reduction == "sum"
    with pytest.raises(ConfigError):
        load_config(TrainConfig, CONFIGS / "synthetic-sysu-lupi.yaml", overrides=["method.triplet_reduction=max"])
    with pytest.raises(ConfigError):
        load_config(TrainConfig, CONFIGS / "synthetic-sysu-agw.yaml", overrides=["method.triplet_reduction=sum"])
    with pytest.raises(ValueError, match="triplet_reduction"):
        LUPIMethod(VINet("resnet18", branches=("rgb", "ir", "gray"), width=8, num_classes=3),
                   triplet_reduction="median")
