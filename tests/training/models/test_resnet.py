"""ResNet backbone: torchvision's state-dict layout, stage shapes, partial backbones."""

from __future__ import annotations

import pytest
import torch

from reidstream.training.models import ResNet, build_resnet


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_state_dict_matches_torchvision_minus_fc(arch):
    tvm = pytest.importorskip("torchvision.models")
    ours = build_resnet(arch).state_dict()
    theirs = {k: v for k, v in getattr(tvm, arch)(weights=None).state_dict().items() if not k.startswith("fc.")}
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)


def test_forward_equals_torchvision_with_same_weights():
    tvm = pytest.importorskip("torchvision.models")
    torch.manual_seed(0)
    tv = tvm.resnet18(weights=None).eval()
    ours = build_resnet("resnet18").eval()
    ours.load_state_dict({k: v for k, v in tv.state_dict().items() if not k.startswith("fc.")})
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        ref = x
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            ref = getattr(tv, name)(ref)
        assert torch.allclose(ours(x), ref, atol=1e-5)


@pytest.mark.parametrize("arch,expansion", [("resnet18", 1), ("resnet34", 1), ("resnet50", 4)])
def test_stage_shapes_tiny(arch, expansion):
    net = build_resnet(arch, width=16)
    assert net.STAGES == ("stem", "layer1", "layer2", "layer3", "layer4")
    assert net.stage_channels == {"stem": 16, "layer1": 16 * expansion, "layer2": 32 * expansion,
                                  "layer3": 64 * expansion, "layer4": 128 * expansion}
    assert net.out_channels == 128 * expansion
    sizes = {"stem": (16, 8), "layer1": (16, 8), "layer2": (8, 4), "layer3": (4, 2), "layer4": (2, 1)}
    h = torch.randn(2, 3, 64, 32)
    for name in net.STAGES:
        h = net.forward_stage(name, h)
        assert h.shape == (2, net.stage_channels[name], *sizes[name])
    assert net(torch.randn(2, 3, 64, 32)).shape == (2, net.out_channels, 2, 1)


def test_last_stride_and_in_channels():
    net = build_resnet("resnet18", width=16, in_channels=1, last_stride=1)
    assert net.conv1.weight.shape[1] == 1
    assert net(torch.randn(2, 1, 64, 32)).shape == (2, 128, 4, 2)
    assert not hasattr(net, "fc") and not hasattr(net, "avgpool")


def test_partial_backbone_keys_are_a_subset():
    full = set(build_resnet("resnet18", width=16).state_dict())
    head = ResNet("resnet18", width=16, stages=("stem", "layer1"))
    tail = ResNet("resnet18", width=16, stages=("layer2", "layer3", "layer4"))
    assert set(head.state_dict()) | set(tail.state_dict()) == full
    x = torch.randn(1, 3, 64, 32)
    assert tail(head(x)).shape == (1, 128, 2, 1)
    with pytest.raises(ValueError, match="name"):
        head.forward_stage("layer3", x)


@pytest.mark.parametrize("kwargs,match", [
    ({"arch": "resnet9"}, "arch"), ({"width": 0}, "width"), ({"last_stride": 3}, "last_stride"),
    ({"in_channels": 0}, "in_channels")])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_resnet(**kwargs)


def test_non_contiguous_stages_rejected():
    with pytest.raises(ValueError, match="stages"):
        ResNet("resnet18", width=16, stages=("stem", "layer2"))


def test_kaiming_init():
    net = build_resnet("resnet18", width=16)
    assert torch.all(net.bn1.weight == 1) and torch.all(net.bn1.bias == 0)
    w = build_resnet("resnet18").layer4[0].conv2.weight  # fan_out = 512 * 9
    assert abs(w.std().item() - (2.0 / (512 * 9)) ** 0.5) < 2e-3
