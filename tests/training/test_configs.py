"""Every shipped training config loads, and each visible-infrared method builds from its config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reidstream.pipeline.config import load_config
from reidstream.training.config import VI_METHODS, TrainConfig
from reidstream.training.run import build_method, build_optimizer, lr_factor

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_training_configs_load(path):
    cfg = load_config(TrainConfig, path)
    assert cfg.output and cfg.data.root


@pytest.mark.parametrize("name", VI_METHODS)
def test_vi_methods_build_from_their_synthetic_config(name):
    cfg = load_config(TrainConfig, CONFIGS / f"synthetic-sysu-{name.replace('_', '-')}.yaml",
                      overrides=["model.width=8"])
    method, prep = build_method(cfg, num_classes=5)
    assert set(prep) == set(method.modalities) == {"rgb", "ir"}
    assert method.sampler in ("cross_modal", "tuple")
    specs = method.embedder_specs()
    assert set(specs) == {"rgb", "ir"} and all(s["model"] == "vinet" for s in specs.values())
    opt, _ = build_optimizer(cfg, method)
    assert opt.param_groups


def test_vi_paper_configs_follow_the_papers():
    agw = load_config(TrainConfig, CONFIGS / "sysu-agw.yaml")
    assert (agw.method.p, agw.method.k, agw.data.height, agw.data.width) == (8, 4, 288, 144)
    lupi = load_config(TrainConfig, CONFIGS / "sysu-lupi.yaml")
    assert (lupi.method.lambda_c, lupi.method.alpha_c) == (10.0, 0.5)
    eat = load_config(TrainConfig, CONFIGS / "sysu-eat.yaml")
    assert (eat.optim.name, eat.optim.lr, eat.method.label_smoothing, eat.method.erasing) == ("adam", 3e-4, 0.1, 0.5)
    regdb = load_config(TrainConfig, CONFIGS / "regdb-dual-align.yaml")
    assert (regdb.method.alpha, regdb.method.beta, regdb.method.gamma) == (1.0, 11.0, 2.0)
    assert regdb.method.modalities == ("rgb", "thermal") and (regdb.data.height, regdb.data.width) == (384, 128)


def test_embedding_dim_is_refused_for_vi_methods():
    cfg = load_config(TrainConfig, CONFIGS / "synthetic-sysu-agw.yaml", overrides=["model.embedding_dim=64"])
    with pytest.raises(ValueError, match="model.embedding_dim does not apply"):
        build_method(cfg, num_classes=5)


@pytest.mark.parametrize("name,key", [("dual-align", "method.split_stage=layer1"), ("dual-align", "method.pool=gem"),
                                      ("eat", "method.k=4")])
def test_method_keys_that_do_not_apply_are_refused(name, key):
    cfg = load_config(TrainConfig, CONFIGS / f"synthetic-sysu-{name}.yaml", overrides=[key])
    with pytest.raises(ValueError, match=rf"method.{key.split('.')[1].split('=')[0]} does not apply"):
        build_method(cfg, num_classes=5)


def test_learning_rate_schedule_warms_up_then_steps():
    o = load_config(TrainConfig, CONFIGS / "sysu-agw.yaml").optim
    factors = [lr_factor(o, e) for e in (0, 4, 9, 10, 19, 20, 49, 50)]
    assert factors == pytest.approx([0.1, 0.5, 1.0, 1.0, 1.0, 0.1, 0.1, 0.01])
    cfg = load_config(TrainConfig, CONFIGS / "sysu-agw.yaml", overrides=["model.width=8", "model.pretrained=null"])
    method, _ = build_method(cfg, num_classes=5)
    opt, sched = build_optimizer(cfg, method)
    lrs = sorted(g["lr"] for g in opt.param_groups)
    assert lrs == pytest.approx([0.1 * 0.1 * 0.1, 0.1 * 0.1])  # backbone at 0.1 x, warm-up epoch 0 at 1/10
    assert isinstance(sched, torch.optim.lr_scheduler.LambdaLR)
