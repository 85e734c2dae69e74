"""EAT + CMKD method (Gao et al. 2022) on a tiny VINet, and random erasing (Zhong et al.)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from reidstream.training.losses.angular import compactness, enumerate_angular_triplet
from reidstream.training.methods._erasing import random_erasing
from reidstream.training.methods.eat import EATMethod
from reidstream.training.models.vi_net import VINet

H, W = 64, 32


def tiny(**kw) -> VINet:
    kw.setdefault("num_classes", 4)
    kw.setdefault("branches", ("rgb", "ir"))
    return VINet("resnet18", split_stage="layer1", non_local=True, pool="gem", width=8, **kw)


def batch(p=4, k=2, mods=("rgb", "ir"), seed=0):
    """Identity-major P x K batch; row i of both modalities has label i // k."""
    g = torch.Generator().manual_seed(seed)
    out = {m: torch.randn(p * k, 3, H, W, generator=g) for m in mods}
    out["label"] = torch.arange(p).repeat_interleave(k)
    out["pid"] = out["label"] + 100
    return out


def test_forward_terms_and_total_eq21():
    torch.manual_seed(0)
    m = EATMethod(tiny())
    assert m.modalities == ("rgb", "ir") and m.input_channels == 3 and m.sampler == "tuple"
    out = m(batch())
    assert {"loss", "eat", "compact", "cmkd", "id", "eat_rgb", "eat_ir", "acc"} <= set(out)
    assert all(v.ndim == 0 and torch.isfinite(v) for v in out.values())
    torch.testing.assert_close(out["loss"], out["eat"] + out["compact"] + out["cmkd"] + out["id"])
    torch.testing.assert_close(out["eat"], out["eat_rgb"] + out["eat_ir"])
    # exponential EAT (Eq. 15-16): each of the four means is >= e^0
    assert out["eat"] >= 4.0
    w = EATMethod(tiny(), eat_weight=0.0, cmkd_weight=0.0, compactness_term=False)
    o = w(batch())
    torch.testing.assert_close(o["loss"], o["id"])
    assert o["compact"].item() == 0.0


def test_each_term_uses_the_right_features():
    torch.manual_seed(1)
    net = tiny()
    m = EATMethod(net).eval()          # eval: no erasing, BN running stats, so the net's outputs are reproducible
    b = batch(p=3, k=2)
    out = m(b)
    with torch.no_grad():
        v, i = net(b["rgb"], "rgb"), net(b["ir"], "ir")
    labels = b["label"]
    # Eq. 5 on the modality-specific "low" maps; positives: the other sample of the same identity
    want = 0.0
    for a in range(6):
        p = a + 1 if a % 2 == 0 else a - 1
        want += ((v["low"][a] - i["low"][p]) ** 2).mean() + ((i["low"][a] - v["low"][p]) ** 2).mean()
    torch.testing.assert_close(out["cmkd"], want / 6)
    eat = enumerate_angular_triplet(v["feature"], i["feature"], labels, margin=1.0, exponential=True)
    torch.testing.assert_close(out["eat"], eat["eat"])
    torch.testing.assert_close(out["compact"], compactness(v["feature_map"], i["feature_map"]))
    ident = (F.cross_entropy(v["logits"], labels, label_smoothing=0.1)
             + F.cross_entropy(i["logits"], labels, label_smoothing=0.1))
    torch.testing.assert_close(out["id"], ident)


def test_few_steps_on_a_fixed_batch_reduce_the_loss():
    torch.manual_seed(0)
    m = EATMethod(tiny(), erasing=0.0)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    b = batch(seed=3)
    m.train()
    losses = []
    for _ in range(12):
        out = m(b)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.05, losses


def test_erasing_only_in_training_and_repeatable():
    torch.manual_seed(0)
    net = tiny()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    a = EATMethod(net, erasing=1.0, seed=5)
    b = batch()
    a.eval()
    plain = EATMethod(net, erasing=0.0).eval()
    torch.testing.assert_close(a(b)["loss"], plain(b)["loss"])
    a.train()
    first = a(b)["loss"]
    net.load_state_dict(state)                 # undo the BN running-stat update
    again = EATMethod(net, erasing=1.0, seed=5).train()(b)["loss"]
    torch.testing.assert_close(first, again)   # same seed, same erasing
    net.load_state_dict(state)
    other = EATMethod(net, erasing=1.0, seed=6).train()(b)["loss"]
    assert not torch.allclose(first, other)


def test_embedders_and_specs_per_branch():
    torch.manual_seed(0)
    net = tiny()
    m = EATMethod(net, ("rgb", "thermal")).eval()
    assert m.branch_of == {"rgb": "rgb", "thermal": "ir"}
    x = torch.randn(3, 3, H, W)
    emb = m.embedders()
    with torch.no_grad():
        e = emb["thermal"](x)
        torch.testing.assert_close(e, net(x, "ir")["embedding"])
    torch.testing.assert_close(e.norm(dim=1), torch.ones(3))
    specs = m.embedder_specs()
    assert specs["thermal"]["model"] == "vinet" and specs["thermal"]["options"] == {"branch": "ir"}
    assert specs["rgb"]["options"] == {"branch": "rgb"} and specs["rgb"]["config"]["split_stage"] == "layer1"
    out = m.train()(batch(mods=("rgb", "thermal")))
    assert torch.isfinite(out["loss"])


def test_method_contracts():
    with pytest.raises(ValueError, match="net"):
        EATMethod(tiny(num_classes=0))
    with pytest.raises(ValueError, match="net"):
        EATMethod(tiny(parts=2, part_dim=8))
    with pytest.raises(ValueError, match="net"):
        EATMethod(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="modalities"):
        EATMethod(tiny(), ("rgb", "rgb"))
    with pytest.raises(ValueError, match="branches"):
        EATMethod(tiny(), branches=("rgb", "depth"))
    with pytest.raises(ValueError, match="branches"):
        EATMethod(tiny(branches=("rgb", "ir", "gray")), ("rgb", "thermal"))
    with pytest.raises(ValueError, match="label_smoothing"):
        EATMethod(tiny(), label_smoothing=1.0)
    with pytest.raises(ValueError, match="erasing"):
        EATMethod(tiny(), erasing=1.5)
    with pytest.raises(ValueError, match="margin"):
        EATMethod(tiny(), margin=-1)
    with pytest.raises(ValueError, match="cmkd_reduction"):
        EATMethod(tiny(), cmkd_reduction="max")
    m = EATMethod(tiny())
    b = batch()
    with pytest.raises(ValueError, match="missing"):
        m({"rgb": b["rgb"], "label": b["label"]})
    with pytest.raises(ValueError, match="label"):
        m({**b, "label": b["label"][:3]})
    with pytest.raises(ValueError, match="one shape"):
        m({**b, "ir": b["ir"][:4]})


def test_random_erasing_rectangles():
    x = torch.ones(6, 3, H, W)
    out = random_erasing(x, p=1.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, torch.ones(6, 3, H, W))          # input untouched
    for img in out:
        zero = img[0] == 0
        assert torch.equal(zero, img[1] == 0) and torch.equal(zero, img[2] == 0)   # all channels erased
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        h, w = len(rows), len(cols)
        assert 0.015 <= zero.float().mean() <= 0.45
        assert zero[rows[0]:rows[0] + h, cols[0]:cols[0] + w].all() and zero.sum() == h * w   # one rectangle
        assert 0.3 / 1.5 <= h / w <= 3.34 * 1.5
    again = random_erasing(x, p=1.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    assert torch.equal(random_erasing(x, p=0.0), x)
    half = random_erasing(torch.ones(400, 1, 16, 8), p=0.5, generator=torch.Generator().manual_seed(1))
    erased = (half == 0).flatten(1).any(1).float().mean().item()
    assert 0.4 < erased < 0.6


def test_random_erasing_contracts():
    x = torch.ones(2, 3, 8, 4)
    with pytest.raises(ValueError, match="images"):
        random_erasing(torch.ones(3, 8, 4))
    with pytest.raises(ValueError, match="images"):
        random_erasing(torch.ones(2, 3, 8, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="p:"):
        random_erasing(x, p=1.2)
    with pytest.raises(ValueError, match="area"):
        random_erasing(x, area=(0.5, 0.2))
    with pytest.raises(ValueError, match="aspect"):
        random_erasing(x, aspect=(0.0, 2.0))
    with pytest.raises(ValueError, match="attempts"):
        random_erasing(x, attempts=0)
