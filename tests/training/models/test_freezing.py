"""Step II freezing as the authors' code does it: the cut at layer3.0.conv3, BatchNorm statistics fixed or adapting."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reidstream.training.models import ReIDNet
from reidstream.training.models.freezing import FROZEN_BN, cut_paths, set_frozen

X = (4, 3, 64, 32)
CUT = "layer3.0.conv3"


def tiny50(**kw) -> ReIDNet:
    return ReIDNet("resnet50", width=8, embedding_dim=8, **kw)


def snapshot(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def step(net: ReIDNet, steps: int = 2) -> None:
    """A few SGD steps on the trainable parameters, in training mode."""
    torch.manual_seed(1)
    net.train()
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    for _ in range(steps):
        loss = net(torch.randn(*X) * 3 + 1)["embedding"].pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def frozen_keys(state: dict[str, torch.Tensor]) -> list[str]:
    """State keys the layer3.0.conv3 cut freezes (ResNet-50 layout)."""
    tail = ("backbone.layer3.0.conv3.", "backbone.layer3.0.bn3.", "backbone.layer3.0.downsample.")
    return [k for k in state if k.startswith(tail) or k.startswith(("embedding.", "backbone.layer4."))
            or (k.startswith("backbone.layer3.") and not k.startswith("backbone.layer3.0."))]


def test_cut_at_layer3_0_conv3_freezes_exactly_the_authors_layers():
    net = tiny50()
    net.freeze_from(CUT)
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    layer3 = {n for n in trainable if n.startswith("backbone.layer3.")}
    assert layer3 == {f"backbone.layer3.0.{m}.{w}" for m, w in
                      [("conv1", "weight"), ("bn1", "weight"), ("bn1", "bias"),
                       ("conv2", "weight"), ("bn2", "weight"), ("bn2", "bias")]}
    assert not any(n.startswith(("backbone.layer4.", "embedding.")) for n in trainable)
    assert any(n.startswith("backbone.layer2.") for n in trainable) and "backbone.conv1.weight" in trainable
    assert net.frozen_stages == ("layer4", "embedding")
    assert net.frozen_parts[:3] == ("layer3.0.conv3", "layer3.0.bn3", "layer3.0.relu")
    assert "layer3.0.downsample" in net.frozen_parts and "layer3.1" in net.frozen_parts


def test_fixed_bn_keeps_frozen_buffers_bit_identical():
    torch.manual_seed(0)
    net = tiny50()
    net.freeze_from(CUT, bn="fixed")
    before = snapshot(net)
    step(net)
    after = net.state_dict()
    keys = frozen_keys(after)
    assert any("running_mean" in k for k in keys) and any("num_batches_tracked" in k for k in keys)
    for k in keys:
        assert torch.equal(after[k], before[k]), f"frozen {k} changed"
    assert not torch.equal(after["backbone.layer3.0.conv1.weight"], before["backbone.layer3.0.conv1.weight"])
    assert not net.backbone.layer3[0].bn3.training and net.backbone.layer3[0].bn2.training


def test_adapt_bn_updates_running_stats_but_not_weights():
    torch.manual_seed(0)
    net = tiny50()
    net.freeze_from(CUT, bn="adapt")
    assert net.frozen_bn == "adapt"
    before = snapshot(net)
    step(net)
    after = net.state_dict()
    keys = frozen_keys(after)
    buffers = [k for k in keys if k.endswith(("running_mean", "running_var"))]
    weights = [k for k in keys if k.endswith(("weight", "bias"))]
    assert buffers and weights
    for k in weights:
        assert torch.equal(after[k], before[k]), f"frozen weight {k} changed"
    for k in buffers:
        assert not torch.equal(after[k], before[k]), f"running statistics {k} did not adapt"
    assert net.backbone.layer3[0].bn3.training and net.embedding[1].training
    net.eval()
    assert not net.backbone.layer3[0].bn3.training


def test_stage_cut_with_adapt_and_unfreeze():
    net = ReIDNet("resnet18", width=8, embedding_dim=8)
    net.freeze_from("layer3", bn="adapt")
    net.train()
    assert net.frozen_stages == ("layer3", "layer4", "embedding") and net.frozen_parts == ()
    assert net.backbone.layer4[0].bn1.training
    with pytest.raises(ValueError, match="bn"):
        net.freeze(["layer2"], bn="fixed")  # one behaviour per network
    net.unfreeze()
    assert net.frozen_stages == () and net.frozen_bn == "fixed"
    assert all(p.requires_grad for p in net.parameters())


def test_cut_inside_the_stem_and_unfreeze_of_a_cut_stage():
    net = ReIDNet("resnet18", width=8, embedding_dim=8)
    net.freeze_from("bn1", upto="stem")
    assert net.frozen_stages == () and net.frozen_parts == ("bn1", "relu", "maxpool")
    assert net.backbone.conv1.weight.requires_grad and not net.backbone.bn1.weight.requires_grad
    net.unfreeze("stem")
    assert net.frozen_parts == () and net.backbone.bn1.weight.requires_grad


@pytest.mark.parametrize("arch,cut,match", [
    ("resnet18", CUT, "no such module"),          # BasicBlocks end at conv2
    ("resnet50", "layer3.9.conv3", "no such module"),
    ("resnet50", "layer3.0.conv9", "layer3.0.conv1"),  # the message lists the modules that exist there
    ("resnet50", "head", "layer4"),
])
def test_unknown_cut_raises_a_clear_error(arch, cut, match):
    with pytest.raises(ValueError, match=match):
        ReIDNet(arch, width=8, embedding_dim=8).freeze_from(cut)


def test_contract_errors():
    with pytest.raises(ValueError, match="frozen_bn"):
        tiny50().freeze_from(CUT, bn="train")
    with pytest.raises(ValueError, match="upto"):
        tiny50().freeze_from(CUT, upto="layer2")
    with pytest.raises(ValueError, match="frozen_bn"):
        set_frozen(nn.BatchNorm1d(2), True, "moving")
    assert FROZEN_BN == ("fixed", "adapt")


def test_cut_paths_is_generic_over_backbones():
    """Any backbone whose stages are modules: the path is resolved with named_modules, in registration order."""
    stem = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    layer = nn.Sequential(nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4), nn.ReLU()),
                          nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)))
    backbone = nn.Module()
    backbone.stem, backbone.layer1 = stem, layer
    stages = {"stem": stem, "layer1": layer}
    assert cut_paths(backbone, stages, "layer1.0.1") == ("layer1", ["layer1.0.1", "layer1.0.2", "layer1.1",
                                                                     "layer1.1.0", "layer1.1.1"])
    assert cut_paths(backbone, stages, "stem.1") == ("stem", ["stem.1"])
    with pytest.raises(ValueError, match="no such module"):
        cut_paths(backbone, stages, "layer1.5")
    with pytest.raises(ValueError, match="inside one of the stages"):
        cut_paths(backbone, stages, "layer1")
