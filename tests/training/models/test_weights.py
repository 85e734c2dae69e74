"""load_pretrained: torchvision checkpoints, channel adaptation, errors (offline, shapes)."""

from __future__ import annotations

import urllib.error

import pytest
import torch

from reidstream.training.models import IMAGENET_URLS, TwoStreamNet, build_resnet, load_pretrained
from reidstream.training.models import weights as weights_mod


@pytest.fixture(scope="module")
def tv_state():
    tvm = pytest.importorskip("torchvision.models")
    torch.manual_seed(0)
    return tvm.resnet18(weights=None).state_dict()


def test_urls():
    base = "https://download.pytorch.org/models/"
    assert IMAGENET_URLS == {"resnet18": base + "resnet18-f37072fd.pth", "resnet34": base + "resnet34-b627a593.pth",
                             "resnet50": base + "resnet50-0676ba61.pth",
                             "resnet101": base + "resnet101-63fe2227.pth"}


def test_load_torchvision_file(tmp_path, tv_state):
    path = tmp_path / "r18.pth"
    torch.save(tv_state, path)
    net = build_resnet("resnet18")
    report = load_pretrained(net, path)
    assert report == {"loaded": len(tv_state) - 2, "ignored": ["fc.bias", "fc.weight"], "adapted": []}
    for k, v in net.state_dict().items():
        assert torch.equal(v, tv_state[k]), k


def test_nested_and_module_prefixed(tmp_path, tv_state):
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in tv_state.items()}, "epoch": 3}, path)
    net = build_resnet("resnet18")
    assert load_pretrained(net, str(path))["loaded"] == len(tv_state) - 2
    assert torch.equal(net.layer3[1].conv2.weight, tv_state["layer3.1.conv2.weight"])
    torch.save({"model": tv_state}, path)
    assert load_pretrained(build_resnet("resnet18"), path)["loaded"] == len(tv_state) - 2


def test_conv1_adapted_for_other_channel_counts(tmp_path, tv_state):
    path = tmp_path / "r18.pth"
    torch.save(tv_state, path)
    for channels in (1, 4):
        net = build_resnet("resnet18", in_channels=channels)
        assert load_pretrained(net, path)["adapted"] == ["conv1.weight"]
        expected = tv_state["conv1.weight"].mean(dim=1, keepdim=True).repeat(1, channels, 1, 1)
        assert torch.equal(net.conv1.weight, expected)


def test_shape_mismatch_names_key_and_shapes(tmp_path, tv_state):
    bad = dict(tv_state)
    bad["layer2.0.bn1.weight"] = torch.ones(7)
    path = tmp_path / "bad.pth"
    torch.save(bad, path)
    with pytest.raises(ValueError, match=r"layer2\.0\.bn1\.weight.*\(7,\).*\(128,\)"):
        load_pretrained(build_resnet("resnet18"), path)


def test_wrong_architecture_rejected(tmp_path, tv_state):
    path = tmp_path / "r18.pth"
    torch.save(tv_state, path)
    with pytest.raises(ValueError, match="missing keys"):
        load_pretrained(build_resnet("resnet34"), path)


def test_partial_backbones_of_two_stream(tmp_path, tv_state):
    path = tmp_path / "r18.pth"
    torch.save(tv_state, path)
    net = TwoStreamNet("resnet18", width=64, split_stage="layer2")
    for part in net.backbones().values():
        load_pretrained(part, path)
    assert torch.equal(net.streams["depth"].layer2[0].conv1.weight, tv_state["layer2.0.conv1.weight"])
    assert torch.equal(net.shared.layer4[1].bn2.running_var, tv_state["layer4.1.bn2.running_var"])


def test_imagenet_requires_width_64():
    with pytest.raises(ValueError, match="ImageNet weights exist only for width 64"):
        load_pretrained(build_resnet("resnet18", width=16), "imagenet")


def test_imagenet_download_call(monkeypatch, tv_state):
    calls = []

    def fake(url, **kwargs):
        calls.append((url, kwargs))
        return dict(tv_state)

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake)
    assert load_pretrained(build_resnet("resnet18"), "imagenet")["loaded"] == len(tv_state) - 2
    assert calls == [(IMAGENET_URLS["resnet18"],
                      {"map_location": "cpu", "weights_only": True, "check_hash": True})]


def test_offline_download_error(monkeypatch):
    def offline(url, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError) as info:
        load_pretrained(build_resnet("resnet18"), "imagenet")
    msg = str(info.value)
    assert IMAGENET_URLS["resnet18"] in msg and "could not reach" in msg
    assert "model.pretrained=/path/resnet18-f37072fd.pth" in msg


def test_unreachable_file_url(monkeypatch, tmp_path):
    monkeypatch.setitem(weights_mod.IMAGENET_URLS, "resnet18", (tmp_path / "missing" / "r18-abcdef12.pth").as_uri())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    with pytest.raises(RuntimeError, match="could not reach"):
        load_pretrained(build_resnet("resnet18"), "imagenet")


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="source"):
        load_pretrained(build_resnet("resnet18", width=16), "/nonexistent/weights.pth")
