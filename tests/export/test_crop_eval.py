"""``reid-export evaluate``: a bundle's ONNX networks on pipeline-style crops, scored per light."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from reidstream.export.crop_eval import bundle_features, format_scenarios, light_scenarios
from reidstream.pipeline.app.stream import DEFAULT_BUNDLE
from reidstream.pipeline.config import config_from_mapping
from reidstream.pipeline.sim.config import SimConfig
from reidstream.training.evaluation.protocols import FeatureSet
from reidstream.training.synth_pipeline_crops import write_pipeline_dataset


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    cfg = config_from_mapping(SimConfig, {"camera": {"width": 320, "height": 240}}, "<test>")
    root = tmp_path_factory.mktemp("pipeline") / "ds"
    write_pipeline_dataset(root, cfg, identities=6, group=3, people=3, frames=12, every=8, min_crops=4, seed=1,
                           train_fraction=0.4, progress=False)
    return root


def test_perfect_and_random_features_score_as_expected():
    pids = np.repeat(np.arange(5), 4)
    cams = np.tile([0, 0, 1, 1], 5)
    onehot = np.eye(5)[pids].astype(np.float32)
    feats = {"s/depth": FeatureSet(onehot, pids, cams, np.arange(20), "depth")}
    res = light_scenarios(feats)
    assert set(res) == {"s/depth <- s/depth | dark -> lit", "s/depth <- s/depth | lit -> dark"}
    assert all(r["mAP"] == 100.0 and r["rank-1"] == 100.0 and r["queries"] == 10 for r in res.values())
    constant = {"s/depth": FeatureSet(np.ones((20, 3), np.float32), pids, cams, np.arange(20), "depth")}
    # every gallery entry ties: wrong entries are counted first, so rank-1 is 0
    assert light_scenarios(constant)["s/depth <- s/depth | dark -> lit"]["rank-1"] == 0.0
    with pytest.raises(ValueError, match="distinct query and gallery cameras"):
        light_scenarios(feats, cameras=[(0, 0)])


def test_default_bundle_on_pipeline_crops(crops, tmp_path):
    feats = bundle_features(DEFAULT_BUNDLE, crops, progress=False)
    assert {"rgbd/depth", "rgbd/rgb", "rgbir/ir", "rgbir/rgb"} <= set(feats)
    assert set(np.unique(feats["rgbd/rgb"].camids)) == {0}  # colour is skipped in the dark, as live
    res = light_scenarios(feats)
    assert "rgbd/depth <- rgbd/depth | dark -> lit" in res and "rgbir/ir <- rgbir/rgb | dark -> lit" in res
    assert all(0.0 <= r["mAP"] <= 100.0 for r in res.values())
    assert "rgbd/depth <- rgbd/depth | dark -> lit" in format_scenarios(res)

    r = subprocess.run([shutil.which("reid-export"), "evaluate", str(DEFAULT_BUNDLE), "--data", str(crops),
                        "--json", str(tmp_path / "e.json")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    saved = json.loads((tmp_path / "e.json").read_text())
    assert saved["results"].keys() == res.keys()


def test_missing_split_is_named(crops):
    with pytest.raises(ValueError, match="no 'val' crops"):
        bundle_features(DEFAULT_BUNDLE, crops, subset="val", progress=False)
