"""End to end on CPU: step I on depth, step II depth -> RGB, evaluation, and resume after a kill.

The data are a small synthetic RGB-D dataset in the RobotPKU layout, rendered
by the project's simulator; networks are tiny ResNet-18s on 128 x 64 crops.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from reidstream.pipeline.config import config_from_mapping
from reidstream.pipeline.sim.config import SimConfig
from reidstream.training.checkpoint import load_checkpoint, load_embedders
from reidstream.training.config import TrainConfig
from reidstream.training.eval_run import evaluate_checkpoint, run_eval
from reidstream.training.evaluation.protocols import FeatureSet, cross_modal_evaluation
from reidstream.training.run import train
from reidstream.training.data import LAYOUTS
from reidstream.training.data.splits import resolve_split
from reidstream.training.data.torch_data import ReIDDataset
from reidstream.training.inference import embed_all
from reidstream.training.synth_data import write_dataset


@pytest.fixture(scope="module")
def rgbd(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "rgbd"
    write_dataset("robotpku", root, SimConfig(), identities=30, images_per_camera=8, train_fraction=0.5, seed=3,
                  progress=False)
    return root


def config(root: Path, out: Path, method: dict, **loop) -> TrainConfig:
    data = {"layout": "robotpku", "root": str(root), "val_identities": 3, "height": 128, "width": 64,
            "workers": 0}
    lp = {"epochs": 6, "patience": 0, "progress": False, "eval_repeats": 2, "device": "cpu", **loop}
    opt = {"name": "sgd", "lr": 0.05} if method["name"] == "supervised" else {"name": "adam", "lr": 3e-3,
                                                                                "weight_decay": 0.0}
    return config_from_mapping(TrainConfig, {
        "output": str(out), "seed": 0, "data": data, "method": method, "optim": opt, "loop": lp,
        "model": {"arch": "resnet18", "width": 16, "embedding_dim": 64}}, "<test>")


def random_map(res: dict) -> float:
    """mAP of random embeddings for a scenario's query/gallery sizes under the same protocol (chance)."""
    rng = np.random.default_rng(0)
    n_q, n_g, ids = res["num_query"], res["num_gallery"], res["num_identities"]
    q = FeatureSet(rng.normal(size=(n_q, 8)), np.arange(n_q) % ids, np.zeros(n_q, int), np.arange(n_q), "rgb")
    g = FeatureSet(rng.normal(size=(n_g, 8)), np.arange(n_g) % ids, np.zeros(n_g, int), 10**6 + np.arange(n_g),
                   "depth")
    r = cross_modal_evaluation({"rgb": q, "depth": g}, modalities=("rgb", "depth"), repeats=3)
    return r["Q:rgb G:depth"]["mAP"]["mean"]


def pair_vs_random_distance(ckpt: Path, root: Path) -> tuple[float, float]:
    """Mean squared distance of student(rgb_i) to teacher(depth_i) vs to teacher(depth_j), training captures."""
    emb = load_embedders(ckpt)
    records = resolve_split(LAYOUTS["robotpku"].read(root), val_identities=3)["train"]
    data = ReIDDataset(records, ("rgb", "depth"), {m: e.preprocess for m, e in emb.items()})
    feats = embed_all({m: e.module for m, e in emb.items()}, data)
    r, d = feats["rgb"].embeddings, feats["depth"].embeddings
    other = np.roll(np.arange(len(d)), len(d) // 2)
    return float(((r - d) ** 2).sum(1).mean()), float(((r - d[other]) ** 2).sum(1).mean())


def test_step1_then_step2_end_to_end(rgbd, tmp_path):
    s1 = train(config(rgbd, tmp_path / "depth", {"name": "supervised", "modality": "depth", "loss": "softmax",
                                                  "batch_size": 16}))
    assert s1["best"]["value"] is not None and (tmp_path / "depth" / "best.pt").is_file()
    teacher = tmp_path / "depth" / "best.pt"
    # Step I: single-modal depth re-identification of unseen people, clearly above chance (Table 1 setting).
    r1 = evaluate_checkpoint(teacher, repeats=5)["Q:depth G:depth"]
    chance = random_map(r1)
    assert r1["mAP"]["mean"] > max(1.6 * chance, chance + 10), (r1["mAP"]["mean"], chance)
    s2 = train(config(rgbd, tmp_path / "rgb", {"name": "distill", "teacher": str(teacher), "student_modality": "rgb",
                                                "freeze_from": "layer3", "batch_size": 16}, epochs=8, patience=0))
    assert s2["monitor"] == "val/loss" and s2["epochs"] == 8
    ckpt = tmp_path / "rgb" / "best.pt"
    assert set(load_embedders(ckpt)) == {"depth", "rgb"}
    # Step II did what Eq. 3 asks: an RGB image lands near its own coupled depth image's teacher embedding.
    pair, other = pair_vs_random_distance(tmp_path / "rgb" / "last.pt", rgbd)
    assert pair < 0.7 * other, (pair, other)
    table, payload = run_eval([ckpt], out_dir=tmp_path / "eval", repeats=5)
    res = payload["results"]
    cross = np.mean([res["Q:rgb G:depth"]["mAP"]["mean"], res["Q:depth G:rgb"]["mAP"]["mean"]])
    chance = random_map(res["Q:rgb G:depth"])
    print(table, f"\ncross-modal mAP {cross:.1f}, chance {chance:.1f}")
    # Above chance on unseen people, by a modest margin on this tiny synthetic set (see docs/training.md).
    assert cross > chance + 2, (cross, chance)
    for name in ("Q:rgb G:depth", "Q:depth G:rgb", "Q:rgb G:rgb", "Q:depth G:depth"):
        assert name in table and 0 <= res[name]["mAP"]["mean"] <= 100
    assert "±" in table
    assert cv2.imread(str(tmp_path / "eval" / "cmc.png")) is not None
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["results"]["Q:rgb G:depth"]["mAP"]["mean"] == pytest.approx(res["Q:rgb G:depth"]["mAP"]["mean"])


def test_killed_run_resumes_from_last_checkpoint(rgbd, tmp_path):
    """A run killed mid-training continues from last.pt and ends bit-identical to an uninterrupted run."""
    method = {"name": "supervised", "modality": "depth", "loss": "triplet", "p": 4, "k": 4}
    ref = config(rgbd, tmp_path / "ref", method, epochs=3, checkpoint_every=2)
    train(ref)
    cut = config(rgbd, tmp_path / "cut", method, epochs=3, checkpoint_every=2)
    cfg_file = tmp_path / "cut.yaml"
    cfg_file.write_text(yaml.safe_dump(cut.to_dict()))
    exe = shutil.which("reid-train")
    assert exe, "reid-train is not installed: pip install -e ."
    proc = subprocess.Popen([exe, "--config", str(cfg_file)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = tmp_path / "cut" / "last.pt"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if last.is_file() and load_checkpoint(last)["progress"]["step"] >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(last)["progress"]
    assert 0 < killed_at["step"]
    r = subprocess.run([exe, "--config", str(cfg_file)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"resumed from {last}" in r.stderr
    a, b = load_checkpoint(tmp_path / "ref" / "last.pt"), load_checkpoint(last)
    assert a["progress"] == b["progress"]
    for k, v in a["state"].items():
        assert torch.equal(v, b["state"][k]), f"{k} differs between the resumed and the uninterrupted run"
    rows = (tmp_path / "cut" / "train_log.csv").read_text().splitlines()
    steps = [int(x.split(",")[0]) for x in rows[1:]]
    assert steps == list(range(1, b["progress"]["step"] + 1)), "the log must hold every step exactly once"


def test_torchrun_ddp_on_cpu(rgbd, tmp_path):
    """Two processes through torchrun (gloo on CPU): ranks share batches, rank 0 alone writes."""
    cfg = config(rgbd, tmp_path / "ddp", {"name": "supervised", "modality": "depth", "loss": "triplet", "p": 4, "k": 4},
                 epochs=1, max_steps_per_epoch=2)
    cfg_file = tmp_path / "ddp.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg.to_dict()))
    exe = shutil.which("torchrun")
    if exe is None:
        pytest.skip("torchrun is not on PATH")
    r = subprocess.run([exe, "--nproc_per_node", "2", "-m", "reidstream.training.cli", "--config", str(cfg_file)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert 1 <= summary["steps"] <= 2 and r.stdout.count('"steps"') == 1, "only rank 0 reports"
    assert load_checkpoint(tmp_path / "ddp" / "last.pt")["progress"]["step"] == summary["steps"]
