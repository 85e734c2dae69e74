"""ReIDNet: forward outputs, cross-modal gating (Eq. 4), freezing (step II), config."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from reidstream.training.models import MODELS, ReIDNet

X = (4, 3, 64, 32)


def tiny(**kwargs) -> ReIDNet:
    kwargs = {"arch": "resnet18", "width": 16, "embedding_dim": 8, **kwargs}
    return ReIDNet(**kwargs)


def test_forward_keys_and_shapes():
    net = tiny(num_classes=5)
    out = net(torch.randn(*X))
    assert set(out) == {"feature_map", "pooled", "embedding", "logits"}
    assert out["feature_map"].shape == (4, 128, 2, 1)
    assert out["pooled"].shape == (4, 128)
    assert out["embedding"].shape == (4, 8)
    assert out["logits"].shape == (4, 5)
    assert net.STAGES == ("stem", "layer1", "layer2", "layer3", "layer4", "embedding", "classifier")
    assert set(tiny()(torch.randn(*X))) == {"feature_map", "pooled", "embedding"}
    assert tiny().classifier is None
    assert MODELS["reidnet"] is ReIDNet


def test_pooled_is_global_average_and_embedding_is_linear_bn():
    net = tiny(last_stride=1).eval()
    out = net(torch.randn(*X))
    torch.testing.assert_close(out["pooled"], out["feature_map"].mean(dim=(2, 3)))
    torch.testing.assert_close(out["embedding"], net.embedding[1](net.embedding[0](out["pooled"])))
    assert isinstance(net.embedding[0], nn.Linear) and isinstance(net.embedding[1], nn.BatchNorm1d)


def test_cross_modal_gate_changes_output():
    torch.manual_seed(0)
    net = tiny(attention_stage="layer2").eval()
    x = torch.randn(*X)
    gate = torch.randn(4, 32, 8, 4) * 5
    with torch.no_grad():
        assert not torch.allclose(net(x, gate)["embedding"], net(x)["embedding"])
    with pytest.raises(ValueError, match="gate"):
        net(x, torch.randn(4, 32, 4, 4))


def test_eval_self_gating_is_deterministic_manual_computation():
    torch.manual_seed(0)
    net = tiny(attention_stage="layer3").eval()
    x = torch.randn(*X)
    with torch.no_grad():
        f = net.stage_features(x, "layer3")
        a = torch.sigmoid(f.mean(dim=1, keepdim=True))
        fmap = net.backbone.layer4(f * a + f)
        out = net(x)
        torch.testing.assert_close(out["feature_map"], fmap)
        torch.testing.assert_close(out["embedding"], net.embedding(fmap.mean(dim=(2, 3))))
        torch.testing.assert_close(net(x)["embedding"], out["embedding"])
        # each sample's embedding depends only on itself (no other modality, no batch coupling at eval)
        torch.testing.assert_close(net(x[:1])["embedding"], out["embedding"][:1])


def test_gate_without_attention_rejected():
    with pytest.raises(ValueError, match="gate"):
        tiny()(torch.randn(*X), torch.randn(4, 32, 8, 4))


def test_stage_features_shapes_and_unknown_stage():
    net = tiny()
    x = torch.randn(*X)
    assert net.stage_features(x, "stem").shape == (4, 16, 16, 8)
    assert net.stage_features(x, "layer2").shape == (4, 32, 8, 4)
    with pytest.raises(ValueError, match="stage"):
        net.stage_features(x, "embedding")


def test_embed_uses_eval_semantics_and_restores_mode():
    net = tiny(attention_stage="layer1", dropout=0.5)
    x = torch.randn(*X)
    net.train()
    e = net.embed(x)
    assert net.training
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(e.detach(), net(x)["embedding"])


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_freeze_keeps_params_and_bn_buffers_bit_identical():
    torch.manual_seed(0)
    net = tiny(num_classes=3)
    net.freeze(["stem", "layer1", "layer3"])
    net.train()
    modules = net.stage_modules()
    before = {s: _snapshot(m) for s, m in modules.items()}
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    for _ in range(3):
        out = net(torch.randn(*X))
        loss = nn.functional.cross_entropy(out["logits"], torch.tensor([0, 1, 2, 0]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    for stage, snap in before.items():
        after = modules[stage].state_dict()
        same = all(torch.equal(snap[k], after[k]) for k in snap)
        assert same == (stage in ("stem", "layer1", "layer3")), stage
    assert modules["layer2"][0].bn1.num_batches_tracked.item() == 3
    assert net.frozen_stages == ("stem", "layer1", "layer3")
    assert not net.backbone.bn1.training
    assert net.backbone.layer2[0].bn1.training


def test_freeze_from_default_and_upto_classifier():
    net = tiny(num_classes=3)
    net.freeze_from("layer3")
    assert net.frozen_stages == ("layer3", "layer4", "embedding")
    assert all(not p.requires_grad for p in net.embedding.parameters())
    assert all(p.requires_grad for p in net.classifier.parameters())
    assert all(p.requires_grad for p in net.backbone.layer2.parameters())
    net.train()
    assert not net.embedding[1].training and not net.backbone.layer4[0].bn2.training
    assert net.backbone.layer2[0].bn2.training

    net2 = tiny(num_classes=3)
    net2.freeze_from("layer3", upto="classifier")
    assert net2.frozen_stages == ("layer3", "layer4", "embedding", "classifier")
    assert all(not p.requires_grad for p in net2.classifier.parameters())


def test_unfreeze_restores():
    net = tiny()
    net.freeze_from("layer2")
    net.unfreeze()
    net.train()
    assert net.frozen_stages == ()
    assert all(p.requires_grad for p in net.parameters())
    assert all(m.training for m in net.modules())


@pytest.mark.parametrize("call", [
    lambda n: n.freeze(["layer5"]), lambda n: n.freeze_from("head"),
    lambda n: n.freeze_from("layer3", upto="layer9"), lambda n: n.freeze_from("layer4", upto="layer2")])
def test_unknown_stage_names_list_stages(call):
    with pytest.raises(ValueError, match="layer4"):
        call(tiny())


def test_config_roundtrip():
    net = tiny(num_classes=4, attention_stage="layer2", attention_pool="max", dropout=0.1, last_stride=1)
    cfg = json.loads(json.dumps(net.config()))
    assert cfg == {"arch": "resnet18", "embedding_dim": 8, "num_classes": 4, "width": 16, "in_channels": 3,
                   "last_stride": 1, "attention_stage": "layer2", "attention_pool": "max", "dropout": 0.1}
    clone = ReIDNet.from_config(cfg)
    assert clone.config() == cfg
    clone.load_state_dict(net.state_dict())
    with pytest.raises(ValueError, match="bogus"):
        ReIDNet.from_config({**cfg, "bogus": 1})


@pytest.mark.parametrize("kwargs,match", [
    ({"embedding_dim": 0}, "embedding_dim"), ({"num_classes": -1}, "num_classes"),
    ({"attention_stage": "layer7"}, "attention_stage"), ({"attention_pool": "sum"}, "attention_pool"),
    ({"dropout": 1.5}, "dropout"), ({"arch": "vgg"}, "arch")])
def test_invalid_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kwargs)
