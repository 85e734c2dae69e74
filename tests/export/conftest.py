"""Tiny checkpoints of the distillation method and of LUPI, trained here on synthetic data (CPU, seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("onnx", reason="export tests need onnx: pip install 'reid-stream[onnx]'")
pytest.importorskip("onnxruntime", reason="export tests need onnxruntime: pip install 'reid-stream[onnx]'")

from reidstream.pipeline.config import config_from_mapping  # noqa: E402
from reidstream.pipeline.sim.config import SimConfig  # noqa: E402
from reidstream.training.config import TrainConfig  # noqa: E402
from reidstream.training.run import train  # noqa: E402
from reidstream.training.synth_data import write_dataset  # noqa: E402

LOOP = {"epochs": 1, "patience": 0, "progress": False, "eval_repeats": 1, "device": "cpu", "max_steps_per_epoch": 6}


def _config(out: Path, space: str, data: dict, method: dict, optim: dict) -> TrainConfig:
    return config_from_mapping(TrainConfig, {
        "output": str(out), "seed": 0, "space": space,
        "data": {"height": 64, "width": 32, "workers": 0, **data},
        "model": {"arch": "resnet18", "width": 8, **({} if method["name"] == "lupi" else {"embedding_dim": 32})},
        "method": method, "optim": optim, "loop": LOOP}, "<test>")


@pytest.fixture(scope="session")
def rgbd_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export-data") / "rgbd"
    write_dataset("robotpku", root, SimConfig(), identities=12, images_per_camera=4, seed=5, progress=False)
    return root


@pytest.fixture(scope="session")
def sysu_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export-data") / "sysu"
    write_dataset("sysu", root, SimConfig(), identities=12, images_per_camera=2, seed=5, progress=False)
    return root


@pytest.fixture(scope="session")
def distill_ckpt(rgbd_data, tmp_path_factory) -> Path:
    """Hafner step I (depth teacher) then step II (depth -> RGB distillation), one short epoch each."""
    base = tmp_path_factory.mktemp("export-runs")
    data = {"layout": "robotpku", "root": str(rgbd_data), "val_identities": 0}
    train(_config(base / "depth", "rgbd", data, {"name": "supervised", "modality": "depth", "loss": "softmax",
                                                 "batch_size": 8}, {"name": "sgd", "lr": 0.05}))
    train(_config(base / "rgb", "rgbd", data, {"name": "distill", "teacher": str(base / "depth" / "best.pt"),
                                               "student_modality": "rgb", "batch_size": 8},
                  {"name": "adam", "lr": 1e-3, "weight_decay": 0.0}))
    return base / "rgb" / "best.pt"


@pytest.fixture(scope="session")
def lupi_ckpt(sysu_data, tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("export-runs")
    data = {"layout": "sysu", "root": str(sysu_data), "val_identities": 0}
    train(_config(base / "lupi", "rgbir", data, {"name": "lupi", "p": 4, "k": 2, "non_local": False},
                  {"name": "sgd", "lr": 0.01}))
    return base / "lupi" / "best.pt"


@pytest.fixture(scope="session")
def bundle_dir(distill_ckpt, lupi_ckpt, tmp_path_factory) -> Path:
    """Both checkpoints in one bundle with PyTorch and ONNX files."""
    from reidstream.export.bundle import export_bundle

    out = tmp_path_factory.mktemp("bundles") / "both"
    export_bundle([distill_ckpt, lupi_ckpt], out, progress=None)
    return out
