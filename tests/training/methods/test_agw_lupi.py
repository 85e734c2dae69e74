"""AGW and LUPI methods: Eq. 4 images, spatial augmentation, loss composition, one-branch inference, training."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from reidstream.training.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from reidstream.training.losses.lupi import colour_free_loss, intermediate_dual_triplet
from reidstream.training.losses.wrt import weighted_regularization_triplet
from reidstream.training.methods.agw import AGWMethod, joint_forward
from reidstream.training.methods.lupi import (LUPIMethod, random_channel_weights, random_grayscale,
                                              random_pad_crop_flip)
from reidstream.training.models.vi_net import VINet

H, W, P, K = 64, 32, 3, 2
MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def tiny(branches=("rgb", "ir"), **kw) -> VINet:
    return VINet("resnet18", branches=branches, width=8, num_classes=P, **kw)


def vi_batch(seed=0, ir="ir"):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(P).repeat_interleave(K)
    rgb = (torch.rand(P * K, 3, H, W, generator=g) - MEAN) / STD
    return {"rgb": rgb, ir: torch.randn(P * K, 3, H, W, generator=g), "label": labels, "pid": labels + 100}


# ---------------------------------------------------------------- Eq. 4 and the spatial augmentation

def test_random_grayscale_is_a_convex_combination_per_image():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, 8, 6, generator=g, dtype=torch.float64)
    z = random_grayscale(x, torch.Generator().manual_seed(1), normalised=False)
    assert z.shape == x.shape
    assert torch.equal(z[:, 0], z[:, 1]) and torch.equal(z[:, 1], z[:, 2])
    recovered = []
    for i in range(5):  # least squares: z_i = sum_c w_c x_i[c], solved from the pixels
        a = x[i].reshape(3, -1).t()
        w = torch.linalg.lstsq(a, z[i, 0].reshape(-1, 1)).solution.flatten()
        assert torch.allclose(a @ w, z[i, 0].reshape(-1), atol=1e-10)
        assert (w >= -1e-9).all() and w.sum().item() == pytest.approx(1.0)
        recovered.append(w)
    assert not torch.allclose(recovered[0], recovered[1], atol=1e-3), "weights must be drawn per image"


def test_random_grayscale_formula_and_renormalisation():
    x01 = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    a, b, c = 0.2, 0.5, 0.9
    weights = torch.tensor([[a, b, c], [1.0, 0.0, 0.0]], dtype=torch.float64)
    weights = weights / weights.sum(1, keepdim=True)
    want0 = (a * x01[0, 0] + b * x01[0, 1] + c * x01[0, 2]) / (a + b + c)
    z = random_grayscale(x01, weights=weights, normalised=False)
    assert torch.allclose(z[0, 2], want0) and torch.allclose(z[1, 1], x01[1, 0])
    # normalised batch: combination of the un-normalised colours, replicated, normalised per channel again
    xn = (x01 - MEAN.double()) / STD.double()
    zn = random_grayscale(xn, weights=weights)
    for ch in range(3):
        assert torch.allclose(zn[0, ch], (want0 - IMAGENET_MEAN[ch]) / IMAGENET_STD[ch], atol=1e-12)
    assert not torch.allclose(zn[0, 0], zn[0, 1])  # normalised channels differ, un-normalised ones are equal


def test_random_weights_are_reproducible_and_convex():
    w1 = random_channel_weights(100, torch.Generator().manual_seed(3))
    w2 = random_channel_weights(100, torch.Generator().manual_seed(3))
    assert torch.equal(w1, w2) and (w1 >= 0).all() and torch.allclose(w1.sum(1), torch.ones(100))
    assert w1.std(0).min() > 0.05, "weights should vary across images"


def test_random_pad_crop_flip_is_a_shifted_window_of_the_padded_image():
    x = torch.rand(6, 1, 10, 7)
    assert torch.equal(random_pad_crop_flip(x, pad=0, flip_p=0.0), x)
    assert torch.equal(random_pad_crop_flip(x, pad=0, flip_p=1.0), x.flip(-1))
    for fill in ("zero", "mean"):
        out = random_pad_crop_flip(x, torch.Generator().manual_seed(0), pad=2, flip_p=0.5, fill=fill)
        assert out.shape == x.shape
        for i in range(6):
            value = x[i].mean().item() if fill == "mean" else 0.0
            padded = torch.full((1, 14, 11), value)
            padded[:, 2:12, 2:9] = x[i]
            windows = [padded[:, oy:oy + 10, ox:ox + 7] for oy in range(5) for ox in range(5)]
            windows += [w.flip(-1) for w in windows]
            assert any(torch.equal(out[i], w) for w in windows), f"image {i} is not a padded crop ({fill})"


# ---------------------------------------------------------------- AGW

def test_joint_forward_equals_per_branch_forward_in_eval():
    net = tiny().eval()
    b = vi_batch()
    out_v, out_t = joint_forward(net, [("rgb", b["rgb"]), ("ir", b["ir"])])
    for out, key in ((out_v, "rgb"), (out_t, "ir")):
        ref = net(b[key], key)
        for name in ("low", "feature_map", "pooled", "feature", "logits", "embedding"):
            assert torch.allclose(out[name], ref[name], atol=1e-5), name


def test_agw_loss_is_id_plus_wrt_on_pooled_features():
    m = AGWMethod(tiny()).eval()
    b = vi_batch()
    with torch.no_grad():
        out = m(b)
        ov, ot = m.net(b["rgb"], "rgb"), m.net(b["ir"], "ir")
        y = torch.cat([b["label"], b["label"]])
        want_id = F.cross_entropy(torch.cat([ov["logits"], ot["logits"]]), y)
        want_tri = weighted_regularization_triplet(torch.cat([ov["pooled"], ot["pooled"]]), y)
    assert set(out) >= {"loss", "id", "tri"} and all(v.ndim == 0 for v in out.values())
    assert torch.allclose(out["id"], want_id, atol=1e-5) and torch.allclose(out["tri"], want_tri, atol=1e-5)
    assert torch.allclose(out["loss"], want_id + want_tri, atol=1e-5)
    assert m.sampler == "cross_modal" and m.modalities == ("rgb", "ir") and m.input_channels == 3


def test_agw_embedders_and_specs_use_each_modalitys_branch():
    m = AGWMethod(tiny(("rgb", "thermal")), ("rgb", "thermal"))
    assert set(m.embedders()) == {"rgb", "thermal"}
    specs = m.embedder_specs()
    assert specs["thermal"]["model"] == "vinet" and specs["thermal"]["options"] == {"branch": "thermal"}
    assert specs["rgb"]["config"]["branches"] == ["rgb", "thermal"]
    m.eval()
    x = torch.randn(2, 3, H, W)
    assert torch.allclose(m.embedders()["thermal"](x), m.net(x, "thermal")["embedding"])


def test_agw_contract():
    with pytest.raises(ValueError, match="missing"):
        AGWMethod(tiny(), ("rgb", "thermal"))
    with pytest.raises(ValueError, match="classifier"):
        AGWMethod(VINet("resnet18", width=8))
    with pytest.raises(ValueError, match="parts=0"):
        AGWMethod(VINet("resnet18", width=8, num_classes=3, parts=2, part_dim=8, non_local=False))
    with pytest.raises(ValueError, match="modalities"):
        AGWMethod(tiny(), ("rgb", "rgb"))
    b = vi_batch()
    del b["ir"]
    with pytest.raises(ValueError, match="missing keys"):
        AGWMethod(tiny())(b)
    b = vi_batch()
    b["ir"] = b["ir"][:3]
    with pytest.raises(ValueError, match="batch\\['ir'\\]"):
        AGWMethod(tiny())(b)


# ---------------------------------------------------------------- LUPI

LUPI_BRANCHES = ("rgb", "ir", "gray")


def test_lupi_loss_is_eq8_from_the_three_streams():
    m = LUPIMethod(tiny(LUPI_BRANCHES), augment=False, seed=7).eval()
    b = vi_batch()
    with torch.no_grad():
        out = m(b)
        w = random_channel_weights(P * K, torch.Generator().manual_seed(7))
        z = random_grayscale(b["rgb"], weights=w)
        ov, ot, oz = (m.net(x, br) for x, br in ((b["rgb"], "rgb"), (b["ir"], "ir"), (z, "gray")))
        y = b["label"]
        want_id = F.cross_entropy(torch.cat([ov["logits"], ot["logits"], oz["logits"]]), torch.cat([y, y, y]))
        want_tri = intermediate_dual_triplet(ov["pooled"], ot["pooled"], oz["pooled"], y, y, y, margin=0.3)["loss"]
        want_cf = colour_free_loss(ov["feature"], oz["feature"], ov["logits"], oz["logits"], alpha_c=0.5)
    assert torch.allclose(out["id"], want_id, atol=1e-5)
    assert torch.allclose(out["tri"], want_tri, atol=1e-4)
    assert torch.allclose(out["cf"], want_cf, atol=1e-5)
    assert torch.allclose(out["loss"], want_tri + 10.0 * want_cf + want_id, atol=1e-4)
    assert torch.allclose(out["tri"], out["tri_vtz"] + out["tri_tzv"] + out["tri_zvt"])


def test_lupi_intermediate_images_come_from_the_visible_batch():
    m = LUPIMethod(tiny(LUPI_BRANCHES), augment=True, pad=3, seed=0)
    b = vi_batch()
    z = m.make_intermediate(b["rgb"])
    z01 = z * STD + MEAN
    assert torch.allclose(z01[:, 0], z01[:, 1], atol=1e-6) and torch.allclose(z01[:, 1], z01[:, 2], atol=1e-6)
    assert z01.min() >= -1e-6 and z01.max() <= 1 + 1e-6
    rgb01 = b["rgb"] * STD + MEAN
    # without the augmentation, each pixel of Z lies between the smallest and largest colour of that pixel
    m.augment = False
    z_plain = m.make_intermediate(b["rgb"]) * STD + MEAN
    lo, hi = rgb01.min(1).values, rgb01.max(1).values
    assert (z_plain[:, 0] >= lo - 1e-6).all() and (z_plain[:, 0] <= hi + 1e-6).all()


def test_lupi_inference_runs_one_branch_only():
    m = LUPIMethod(tiny(LUPI_BRANCHES))
    fired = []
    for name, stream in m.net.streams.items():
        stream.register_forward_hook(lambda mod, i, o, name=name: fired.append(name))
    emb = m.embedders()
    assert set(emb) == {"rgb", "ir"}
    m.eval()
    with torch.no_grad():
        e = emb["ir"](torch.randn(2, 3, H, W))
    assert fired == ["ir"] and e.shape == (2, m.net.out_channels)
    fired.clear()
    with torch.no_grad():
        emb["rgb"](torch.randn(2, 3, H, W))
    assert fired == ["rgb"]
    fired.clear()
    m.train()
    m(vi_batch())
    assert sorted(fired) == ["gray", "ir", "rgb"], "training uses all three streams"
    assert {k: v["options"] for k, v in m.embedder_specs().items()} == {"rgb": {"branch": "rgb"},
                                                                         "ir": {"branch": "ir"}}


def test_lupi_thermal_naming_and_contract():
    m = LUPIMethod(tiny(("rgb", "thermal", "gray")), ("rgb", "thermal"))
    assert m.modalities == ("rgb", "thermal") and set(m.embedders()) == {"rgb", "thermal"}
    assert m(vi_batch(ir="thermal"))["loss"].ndim == 0
    with pytest.raises(ValueError, match="intermediate"):
        LUPIMethod(tiny())
    with pytest.raises(ValueError, match="intermediate"):
        LUPIMethod(tiny(LUPI_BRANCHES), intermediate="ir")
    with pytest.raises(ValueError, match="lambda_c"):
        LUPIMethod(tiny(LUPI_BRANCHES), lambda_c=-1.0)
    with pytest.raises(ValueError, match="fill"):
        LUPIMethod(tiny(LUPI_BRANCHES), fill="reflect")
    with pytest.raises(ValueError, match="x"):
        random_grayscale(torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="weights"):
        random_grayscale(torch.zeros(2, 3, 4, 4), weights=torch.tensor([[0.5, 0.5, 0.5], [1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="pad"):
        random_pad_crop_flip(torch.zeros(1, 1, 4, 4), pad=-1)


# ---------------------------------------------------------------- a few optimisation steps reduce the loss

@pytest.mark.parametrize("kind", ["agw", "lupi"])
def test_a_few_steps_on_a_fixed_batch_reduce_the_loss(kind):
    torch.manual_seed(0)
    if kind == "agw":
        m = AGWMethod(tiny())
    else:
        m = LUPIMethod(tiny(LUPI_BRANCHES), seed=0)
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    b = vi_batch()
    losses = []
    m.train()
    for _ in range(10):
        if kind == "lupi":
            m.generator.manual_seed(0)  # the same Z (Eq. 4 weights and crops) every step
        out = m(b)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.7 * losses[0], losses
