"""DualAlignMethod (Hao et al. 2019, Eq. 15) on a tiny CPU part network."""

from __future__ import annotations

import pytest
import torch

from reidstream.training.losses.dual_align import correlation_loss, distribution_loss, part_identity_loss
from reidstream.training.methods.dual_align import DualAlignMethod
from reidstream.training.models.vi_net import VINet

H, W = 96, 32  # layer4 of resnet18 with last_stride 1: 6 x 2 cells, one row per part
P, K = 3, 2     # identities x images per modality


def tiny(branches=("onestream",), parts=6, num_classes=P) -> VINet:
    return VINet("resnet18", branches=branches, width=8, non_local=False, pool="avg", parts=parts,
                 part_dim=16, num_classes=num_classes)


def make_batch(mods=("rgb", "ir"), seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    label = torch.arange(P).repeat_interleave(K)  # identity-major: a a b b c c
    out = {m: torch.randn(P * K, 3, H, W, generator=g) for m in mods}
    out.update(label=label, pid=label + 100)
    return out


def test_forward_combines_the_three_terms_of_eq15():
    torch.manual_seed(0)
    method = DualAlignMethod(tiny(), alpha=1.0, beta=11.0, gamma=2.0).eval()  # RegDB's 1:11:2
    batch = make_batch()
    out = method(batch)
    assert set(out) == {"loss", "id", "dist", "corr", "acc"}
    assert all(v.ndim == 0 and torch.isfinite(v) for v in out.values())
    # eval mode: the joint forward of the shared branch equals two separate forwards
    ov, oi = method.net(batch["rgb"], "onestream"), method.net(batch["ir"], "onestream")
    l_id = part_identity_loss(ov["part_logits"], batch["label"]) + part_identity_loss(oi["part_logits"], batch["label"])
    l_d = distribution_loss(ov["parts"], oi["parts"])
    l_c = correlation_loss(ov["feature"], oi["feature"])
    torch.testing.assert_close(out["id"], l_id, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["dist"], l_d, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["corr"], l_c, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["loss"], out["id"] + 11.0 * out["dist"] + 2.0 * out["corr"])
    assert 0.0 <= out["acc"].item() <= 1.0 and not out["acc"].requires_grad


def test_weights_switch_terms_off():
    torch.manual_seed(0)
    method = DualAlignMethod(tiny(), alpha=0.0, beta=0.0, gamma=1.0).eval()
    out = method(make_batch())
    torch.testing.assert_close(out["loss"], out["corr"])


def test_alignment_losses_do_not_reach_the_classifiers():
    # Sec. 3.5: "the last K FC layers will not be influenced when minimizing L_d and L_c"
    torch.manual_seed(0)
    method = DualAlignMethod(tiny(), alpha=0.0, beta=1.0, gamma=1.0).train()
    method(make_batch())["loss"].backward()
    assert all(c.weight.grad is None or c.weight.grad.abs().sum() == 0 for c in method.net.part_classifiers)
    assert method.net.part_reduce[0][0].weight.grad.abs().sum() > 0


def test_constant_infrared_images_give_finite_loss_and_gradients():
    # identical images in train mode: every part feature is the BN output of a constant -> zero variance
    torch.manual_seed(0)
    method = DualAlignMethod(tiny()).train()
    batch = make_batch()
    batch["ir"] = torch.zeros_like(batch["ir"])
    out = method(batch)
    out["loss"].backward()
    assert all(torch.isfinite(v) for v in out.values())
    assert all(torch.isfinite(p.grad).all() for p in method.parameters() if p.grad is not None)


def test_a_few_steps_on_a_fixed_batch_reduce_the_loss():
    torch.manual_seed(0)
    method = DualAlignMethod(tiny())
    opt = torch.optim.SGD(method.parameters(), lr=0.05, momentum=0.9)
    batch = make_batch(seed=3)
    method.train()
    losses = []
    for _ in range(8):
        out = method(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert losses[-1] < 0.5 * losses[0]


def test_embedders_and_specs_shared_branch():
    torch.manual_seed(0)
    net = tiny()
    method = DualAlignMethod(net, ("rgb", "thermal")).eval()
    assert method.modalities == ("rgb", "thermal") and method.input_channels == 3
    emb = method.embedders()
    assert set(emb) == {"rgb", "thermal"}
    x = torch.randn(2, 3, H, W)
    with torch.no_grad():
        e = emb["thermal"](x)
    assert e.shape == (2, 6 * 16)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(2))
    specs = method.embedder_specs()
    assert specs["rgb"]["model"] == "vinet" and specs["rgb"]["options"] == {"branch": "onestream"}
    assert specs["thermal"]["module"] is net
    rebuilt = VINet.from_config(specs["thermal"]["config"])
    assert rebuilt.parts == 6 and rebuilt.branches == ("onestream",)


def test_modality_specific_branches_variant():
    torch.manual_seed(0)
    method = DualAlignMethod(tiny(branches=("rgb", "ir"))).train()
    out = method(make_batch())
    assert torch.isfinite(out["loss"])
    assert method.embedder_specs()["ir"]["options"] == {"branch": "ir"}
    with torch.no_grad():
        x = torch.randn(2, 3, H, W)
        assert not torch.allclose(method.eval().embedders()["rgb"](x), method.embedders()["ir"](x))


def test_constructor_contract():
    with pytest.raises(ValueError, match="net"):
        DualAlignMethod(tiny(parts=0))
    with pytest.raises(ValueError, match="net"):
        DualAlignMethod(tiny(num_classes=0))
    with pytest.raises(ValueError, match="net"):
        DualAlignMethod(tiny(branches=("rgb", "depth")), ("rgb", "ir"))
    with pytest.raises(ValueError, match="net"):
        DualAlignMethod(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="modalities"):
        DualAlignMethod(tiny(), ("rgb", "rgb"))
    with pytest.raises(ValueError, match="modalities"):
        DualAlignMethod(tiny(), "rgb")
    with pytest.raises(ValueError, match="beta"):
        DualAlignMethod(tiny(), beta=-1.0)
    with pytest.raises(ValueError, match="eps"):
        DualAlignMethod(tiny(), eps=0.0)


def test_batch_contract():
    method = DualAlignMethod(tiny()).eval()
    batch = make_batch()
    with pytest.raises(ValueError, match=r"missing keys \['ir'\]"):
        method({"rgb": batch["rgb"], "label": batch["label"]})
    with pytest.raises(ValueError, match="paired"):
        method({**batch, "ir": batch["ir"][:4]})
    with pytest.raises(ValueError, match="label"):
        method({**batch, "label": batch["label"][:4]})
