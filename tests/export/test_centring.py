"""Per-modality centring of a cross-modal space (``reid-export bundle --centre SPACE=DATA``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from reidstream.export.bundle import export_bundle
from reidstream.export.centring import embedding_centres, parse_centres
from reidstream.export.verify import dataset_crops
from reidstream.pipeline.bundle import load_bundle
from reidstream.pipeline.embed import open_embedder
from reidstream.training.checkpoint import Centred, build_network, load_embedders


def test_centred_module_subtracts_the_mean_of_unit_embeddings():
    lin = nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(3, 4) * 2.0)
    m = Centred(lin, [0.5, 0.0, 0.0])
    out = m(torch.tensor([[3.0, 0.0, 0.0, 1.0], [0.0, 4.0, 0.0, 0.0]]))
    assert torch.allclose(out, torch.tensor([[0.5, 0.0, 0.0], [-0.5, 1.0, 0.0]]))
    with pytest.raises(ValueError, match="3 values for embeddings of size 2"):
        Centred(nn.Linear(4, 2), [0.1, 0.2, 0.3])(torch.ones(1, 4))
    for bad in ([], [[0.1, 0.2]], [0.1, float("nan")]):
        with pytest.raises(ValueError, match="centre: expected a finite vector"):
            Centred(lin, bad)


def test_build_network_names_the_entry_of_a_bad_centre(lupi_ckpt):
    from reidstream.training.checkpoint import load_checkpoint

    e = load_checkpoint(lupi_ckpt)["embedders"]["ir"]
    with pytest.raises(ValueError, match=r"f\.pt \[ir\]: centre: expected a finite vector"):
        build_network(e["model"], e["config"], e["options"], "f.pt [ir]", [float("inf")])


def test_parse_centres_rejects_malformed_items():
    assert {k: str(v) for k, v in parse_centres(["rgbir=data/x", " ir = d "]).items()} == {"rgbir": "data/x",
                                                                                           "ir": "d"}
    for bad, why in ((["rgbir"], "expected SPACE=DATASET_DIR"), (["=d"], "expected SPACE"),
                     (["a=x", "a=y"], "given twice")):
        with pytest.raises(ValueError, match=why):
            parse_centres(bad)


def test_centred_bundle_runs_the_centring_in_every_runtime(lupi_ckpt, sysu_data, tmp_path):
    """The means come from the training crops; ONNX and the PyTorch file agree with the centred network; the
    manifest says where the means came from; the centred embeddings of the centring crops average to ~0."""
    out = tmp_path / "centred"
    export_bundle([lupi_ckpt], out, centres={"rgbir": sysu_data}, centre_layout="sysu", progress=None)
    b = load_bundle(out)
    info = b.manifest.models[0].centre
    assert info["data"] == str(sysu_data) and info["split"] == "train" and info["layout"] == "sysu"
    assert set(info["crops"]) == {"rgb", "ir"} and min(info["crops"].values()) > 0
    reference = load_embedders(lupi_ckpt)
    means, again = embedding_centres(reference, sysu_data, layout="sysu")
    assert again == info
    train = dataset_crops("sysu", sysu_data, ["rgb", "ir"], split="train", limit=5000)
    test = dataset_crops("sysu", sysu_data, ["rgb", "ir"], split="test", limit=40)
    for modality, ref in reference.items():
        assert np.isclose(np.linalg.norm(means[modality]), info["norm"][modality], atol=1e-4)
        centred = Centred(ref.module, means[modality]).eval()
        with torch.no_grad():
            x = torch.from_numpy(np.stack([ref.preprocess(c) for c in train[modality].crops]))
            assert float(centred(x).mean(0).norm()) < 1e-4  # centred on its own crops
            x = torch.from_numpy(np.stack([ref.preprocess(c) for c in test[modality].crops]))
            want = torch.nn.functional.normalize(centred(x), dim=1).numpy()
            plain = torch.nn.functional.normalize(ref.embed(x), dim=1).numpy()
        assert np.sum(want * plain, axis=1).min() < 0.9999  # the centring changed the embeddings
        for runtime in ("onnx", "torch"):
            entry = next(e for e in b.embedders(runtime) if e.modality == modality)
            got = open_embedder(b, entry).embed(test[modality].crops)
            assert np.sum(got * want, axis=1).min() >= 0.9999, (runtime, modality)


def test_centre_for_an_unknown_space_is_refused_before_writing(lupi_ckpt, sysu_data, tmp_path):
    with pytest.raises(ValueError, match=r"no checkpoint has the embedding space\(s\) \['rgbd'\]"):
        export_bundle([lupi_ckpt], tmp_path / "b", centres={"rgbd": sysu_data}, progress=None)
    assert not (tmp_path / "b").exists()
