"""Hafner et al.'s ReLU(BN(Linear)) embedding as an option; networks and configs without it are unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from reidstream.pipeline.config import config_from_mapping
from reidstream.training.checkpoint import build_network
from reidstream.training.config import TrainConfig
from reidstream.training.models import ReIDNet

X = (4, 3, 64, 32)
OLD_CONFIG = {"arch": "resnet18", "embedding_dim": 8, "num_classes": 0, "width": 8, "in_channels": 3,
              "last_stride": 2, "attention_stage": None, "attention_pool": "mean", "dropout": 0.0}
BUNDLE = Path(__file__).resolve().parents[3] / "pipeline" / "models" / "default" / "manifest.json"


def test_relu_embedding_is_relu_of_bn_of_linear():
    torch.manual_seed(0)
    net = ReIDNet("resnet18", width=8, embedding_dim=8, embedding_relu=True).eval()
    assert isinstance(net.embedding[2], nn.ReLU) and len(net.embedding) == 3
    with torch.no_grad():
        out = net(torch.randn(*X))
        want = torch.relu(net.embedding[1](net.embedding[0](out["pooled"])))
    torch.testing.assert_close(out["embedding"], want)
    assert (out["embedding"] >= 0).all() and (out["embedding"] == 0).any()
    assert net.config()["embedding_relu"] is True


def test_default_keeps_the_old_network_and_config():
    net = ReIDNet.from_config(OLD_CONFIG)  # a config written before the option existed
    assert len(net.embedding) == 2 and "embedding_relu" not in net.config()
    assert net.config() == OLD_CONFIG
    relu = ReIDNet.from_config({**OLD_CONFIG, "embedding_relu": True})
    relu.load_state_dict(net.state_dict(), strict=True)  # the ReLU adds no weights
    net.eval(), relu.eval()
    x = torch.randn(*X)
    with torch.no_grad():
        torch.testing.assert_close(relu(x)["embedding"], torch.relu(net(x)["embedding"]))
    clone = ReIDNet.from_config(json.loads(json.dumps(relu.config())))
    assert clone.config() == relu.config() and len(clone.embedding) == 3


def test_checkpoint_entries_without_the_key_build_as_before():
    net, module = build_network("reidnet", OLD_CONFIG, {}, "test")
    assert len(net.embedding) == 2
    net2, _ = build_network("reidnet", {**OLD_CONFIG, "embedding_relu": True}, {}, "test")
    assert len(net2.embedding) == 3


def test_bundle_training_configs_still_validate():
    manifest = json.loads(BUNDLE.read_text())
    for entry in manifest["models"]:
        cfg = config_from_mapping(TrainConfig, entry["config"], source=f"{BUNDLE} [{entry['id']}]")
        assert cfg.model.embedding_relu is False
        if cfg.method.name == "distill":
            assert (cfg.method.freeze_from, cfg.method.frozen_bn) == ("layer3", "fixed")


@pytest.mark.parametrize("value", [1, "yes", None])
def test_embedding_relu_must_be_a_bool(value):
    with pytest.raises(ValueError, match="embedding_relu"):
        ReIDNet("resnet18", width=8, embedding_dim=8, embedding_relu=value)
