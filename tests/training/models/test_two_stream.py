"""TwoStreamNet (Wu et al., 2017): per-modality early stages, shared deep stages and embedding."""

from __future__ import annotations

import json

import pytest
import torch

from reidstream.training.models import MODELS, ResNet, TwoStreamNet

X = (2, 3, 64, 32)


def tiny(**kwargs) -> TwoStreamNet:
    return TwoStreamNet(**{"arch": "resnet18", "width": 16, "embedding_dim": 8, **kwargs})


def test_forward_keys_and_shapes():
    net = tiny(num_classes=4)
    for modality in ("rgb", "depth"):
        out = net(torch.randn(*X), modality)
        assert {k: tuple(v.shape) for k, v in out.items()} == {
            "feature_map": (2, 128, 2, 1), "pooled": (2, 128), "embedding": (2, 8), "logits": (2, 4)}
    assert MODELS["two_stream"] is TwoStreamNet


def test_streams_are_separate_and_later_stages_shared():
    net = tiny(split_stage="layer2")
    assert set(net.streams) == {"rgb", "depth"}
    for stream in net.streams.values():
        assert isinstance(stream, ResNet) and stream.stages == ("stem", "layer1", "layer2")
    assert net.shared.stages == ("layer3", "layer4")
    assert net.streams["rgb"].conv1.weight is not net.streams["depth"].conv1.weight
    x = torch.randn(*X)
    net.eval()
    with torch.no_grad():
        assert not torch.allclose(net(x, "rgb")["embedding"], net(x, "depth")["embedding"])


def test_branches_share_post_split_parameters():
    net = tiny(split_stage="layer1").eval()
    rgb, depth = net.branch("rgb"), net.branch("depth")
    params = {id(p) for p in net.parameters()}
    assert {id(p) for p in rgb.parameters()} <= params
    shared = {id(p) for p in net.shared.parameters()} | {id(p) for p in net.embedding.parameters()}
    assert shared <= {id(p) for p in rgb.parameters()} & {id(p) for p in depth.parameters()}
    assert not ({id(p) for p in net.streams["depth"].parameters()} & {id(p) for p in rgb.parameters()})
    x = torch.randn(*X)
    with torch.no_grad():
        torch.testing.assert_close(rgb(x), net(x, "rgb")["embedding"])
        torch.testing.assert_close(depth(x), net(x, "depth")["embedding"])
        net.embedding[0].weight.add_(1.0)  # an edit of the net is seen by the branch
        torch.testing.assert_close(rgb(x), net(x, "rgb")["embedding"])


def test_split_at_layer4_has_no_shared_backbone():
    net = tiny(split_stage="layer4", modalities=("rgb", "ir"))
    assert net.shared is None
    assert net(torch.randn(*X), "ir")["embedding"].shape == (2, 8)
    assert set(net.backbones()) == {"rgb", "ir"}


def test_config_roundtrip():
    net = tiny(modalities=("rgb", "ir"), split_stage="stem", num_classes=3, last_stride=1)
    cfg = json.loads(json.dumps(net.config()))
    assert cfg["modalities"] == ["rgb", "ir"]
    clone = TwoStreamNet.from_config(cfg)
    assert clone.config() == cfg and clone.modalities == ("rgb", "ir")
    clone.load_state_dict(net.state_dict())
    with pytest.raises(ValueError, match="dropout"):
        TwoStreamNet.from_config({**cfg, "dropout": 0.1})


def test_invalid_arguments():
    net = tiny()
    with pytest.raises(ValueError, match="modality"):
        net(torch.randn(*X), "thermal")
    with pytest.raises(ValueError, match="modality"):
        net.branch("thermal")
    with pytest.raises(ValueError, match="split_stage"):
        tiny(split_stage="embedding")
    with pytest.raises(ValueError, match="modalities"):
        tiny(modalities=("rgb", "rgb"))
    with pytest.raises(ValueError, match="modalities"):
        tiny(modalities="rgb")
