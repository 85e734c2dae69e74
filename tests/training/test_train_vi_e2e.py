"""End to end on CPU: the four visible-infrared methods on a small synthetic SYSU-MM01-layout dataset.

Each method trains through ``train`` (cross-modality sampler, one trainer), its
checkpoint rebuilds one embedder per modality, and ``reid-eval`` prints the
SYSU-MM01 table. What the data allow is asserted: the loss falls and the
networks learn identity (RGB -> RGB retrieval far above chance); the cross-modal
figures are computed and compared with chance in ``docs/vi-synthetic.md``, where
they are reported as they are (near chance on this small rendered data).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from reidstream.pipeline.config import config_from_mapping
from reidstream.pipeline.sim.config import SimConfig
from reidstream.training.checkpoint import load_embedders
from reidstream.training.config import TrainConfig
from reidstream.training.eval_run import run_eval, vi_features
from reidstream.training.evaluation.protocols import FeatureSet, single_modal_evaluation
from reidstream.training.evaluation.vi_protocols import sysu_evaluation
from reidstream.training.run import train
from reidstream.training.synth_data import write_dataset

METHODS = {
    "agw": ({"name": "agw", "p": 4, "k": 4}, {"name": "sgd", "lr": 0.05}),
    "lupi": ({"name": "lupi", "p": 4, "k": 4}, {"name": "sgd", "lr": 0.05}),
    "eat": ({"name": "eat", "p": 6}, {"name": "adam", "lr": 1e-3}),
    "dual_align": ({"name": "dual_align", "p": 8, "k": 2, "part_dim": 32}, {"name": "sgd", "lr": 0.05}),
}


@pytest.fixture(scope="module")
def sysu(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "sysu"
    write_dataset("sysu", root, SimConfig(), identities=36, images_per_camera=3, train_fraction=0.5, seed=3,
                  progress=False)
    return root


def config(root: Path, out: Path, name: str) -> TrainConfig:
    method, optim = METHODS[name]
    return config_from_mapping(TrainConfig, {
        "output": str(out), "seed": 0, "space": "rgbir",
        "data": {"layout": "sysu", "root": str(root), "val_identities": 4, "height": 96, "width": 48, "workers": 0},
        "model": {"arch": "resnet18", "width": 16},
        "method": {**method, "non_local": False} if name != "dual_align" else method,
        "optim": {**optim, "warmup_epochs": 1},
        "loop": {"epochs": 4, "patience": 0, "progress": False, "eval_repeats": 2, "device": "cpu"}}, "<test>")


def _chance_map(fs: FeatureSet) -> float:
    rng = np.random.default_rng(0)
    rand = FeatureSet(rng.normal(size=fs.embeddings.shape), fs.pids, fs.camids, fs.keys, fs.modality)
    return single_modal_evaluation(rand, repeats=2)["mAP"]["mean"]


@pytest.fixture(scope="module")
def runs(sysu, tmp_path_factory):
    """Trained lazily, once per method for the module."""
    base, done = tmp_path_factory.mktemp("vi-runs"), {}

    def get(name: str) -> tuple[Path, dict]:
        if name not in done:
            done[name] = (base / name, train(config(sysu, base / name, name)))
        return done[name]
    return get


@pytest.mark.parametrize("name", list(METHODS))
def test_vi_method_trains_end_to_end(sysu, runs, name):
    run_dir, summary = runs(name)
    assert summary["epochs"] == 4 and (run_dir / "best.pt").is_file()
    with open(run_dir / "train_log.csv") as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    emb = load_embedders(run_dir / "best.pt")
    assert set(emb) == {"rgb", "ir"} and emb["ir"].space == "rgbir" and emb["ir"].spec["model"] == "vinet"
    feats = vi_features(run_dir / "best.pt", layout="sysu", root=str(sysu))
    rgb = single_modal_evaluation(feats["rgb"], repeats=2)["mAP"]["mean"]
    assert rgb > 2 * _chance_map(feats["rgb"]), f"{name}: RGB->RGB mAP {rgb:.1f} near chance"
    res = sysu_evaluation(feats, mode="all", shots=1, trials=2)
    # Every IR test image queries the RGB gallery and vice versa (cross-modal figures: docs/vi-synthetic.md).
    assert res["Q:ir G:rgb"]["num_query"] == len(feats["ir"].pids)
    assert res["Q:rgb G:ir"]["num_query"] == len(feats["rgb"].pids)


def test_reid_eval_prints_the_sysu_table_for_a_trained_lupi_checkpoint(runs, tmp_path):
    run_dir, _ = runs("lupi")
    table, payload = run_eval([run_dir / "best.pt"], out_dir=tmp_path / "eval", trials=3)
    assert "Q:ir G:rgb" in table and "Q:rgb G:ir" in table and "mINP" in table
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["protocol"] == "sysu" and (tmp_path / "eval" / "cmc.png").stat().st_size > 1000
