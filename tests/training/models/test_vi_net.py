"""VINet: per-branch low stages, shared high stages, AGW head (non-local, GeM, BN neck) or part head."""

from __future__ import annotations

import pytest
import torch

from reidstream.training.models.vi_net import NonLocal, VINet, gem


def tiny(**kw) -> VINet:
    return VINet("resnet18", width=8, **{"num_classes": 5, **kw})


def test_global_head_outputs_and_normalised_embedding():
    net = tiny().eval()
    out = net(torch.randn(3, 3, 64, 32), "rgb")
    assert out["pooled"].shape == out["feature"].shape == (3, net.out_channels)
    assert out["logits"].shape == (3, 5)
    assert torch.allclose(out["embedding"].norm(dim=1), torch.ones(3), atol=1e-5)
    assert out["low"].shape[1] == net.low_channels


def test_part_head_shapes_and_bias_free_classifiers():
    net = tiny(parts=6, part_dim=16, non_local=False, pool="avg")
    out = net(torch.randn(2, 3, 96, 32), "ir")
    assert out["parts"].shape == (2, 6, 16) and out["part_logits"].shape == (2, 6, 5)
    assert out["feature"].shape == (2, 96)
    assert all(c.bias is None for c in net.part_classifiers)
    with pytest.raises(ValueError, match="fewer than parts"):
        net(torch.randn(2, 3, 32, 32), "ir")


def test_branches_share_everything_but_their_low_stages():
    net = tiny(branches=("rgb", "ir", "gray"), split_stage="stem")
    names = {n.split(".")[0] for n, _ in net.named_parameters()}
    assert names == {"streams", "shared", "non_local", "bottleneck", "classifier"}
    stream_keys = {n for n, _ in net.streams["rgb"].named_parameters()}
    assert stream_keys == {"conv1.weight", "bn1.weight", "bn1.bias"}


def test_branch_runs_only_its_own_stream():
    net = tiny(branches=("rgb", "ir", "gray")).eval()
    fired = []
    for name, stream in net.streams.items():
        stream.register_forward_hook(lambda m, i, o, name=name: fired.append(name))
    net.branch("ir")(torch.randn(1, 3, 64, 32))
    assert fired == ["ir"]


def test_non_local_starts_as_identity_and_gem_matches_definition():
    block = NonLocal(8)
    x = torch.randn(2, 8, 4, 3)
    assert torch.allclose(block(x), x)
    x = torch.rand(2, 3, 4, 4) + 0.1
    assert torch.allclose(gem(x, 3.0), (x ** 3).mean(dim=(2, 3)) ** (1 / 3))
    assert torch.allclose(gem(x, 1.0), x.mean(dim=(2, 3)))


def test_non_local_block_counts_follow_agw():
    net = VINet("resnet50", width=8)
    assert [len(net.non_local[s]) for s in ("layer2", "layer3")] == [2, 3]


def test_config_round_trip_and_contracts():
    net = tiny(parts=0, branches=("rgb", "thermal"))
    again = VINet.from_config(net.config())
    again.load_state_dict(net.state_dict())
    net.eval(), again.eval()
    x = torch.randn(2, 3, 64, 32)
    assert torch.equal(net.branch("thermal")(x), again.branch("thermal")(x))
    with pytest.raises(ValueError, match="branch"):
        net(x, "depth")
    with pytest.raises(ValueError, match="split_stage"):
        tiny(split_stage="layer3")
    with pytest.raises(ValueError, match="pool"):
        tiny(pool="max")
    with pytest.raises(ValueError, match="unknown keys"):
        VINet.from_config({**net.config(), "bogus": 1})


def test_gem_does_not_overflow_on_huge_activations():
    x = torch.full((1, 2, 3, 3), 4e17)
    x[0, 0, 0, 0] = 1e18
    out = gem(x, 3.0)
    assert torch.isfinite(out).all()
    assert torch.allclose(out.double(), (x.double() ** 3).mean(dim=(2, 3)) ** (1 / 3), rtol=1e-5)
