"""Open-set threshold calibration: the rates on known distances, and the manifest written by `reid-export calibrate`."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from reidstream.export.calibrate import equal_error_threshold, threshold_at_far
from reidstream.pipeline.app import gallery_config
from reidstream.pipeline.bundle import load_bundle
from reidstream.pipeline.config import config_from_mapping
from reidstream.pipeline.stream_config import StreamConfig


def test_rates_on_known_distances():
    genuine = np.array([0.1, 0.2, 0.3, 0.4])
    impostor = np.array([0.35, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3])
    t, tar = threshold_at_far(genuine, impostor, far=0.1)  # one impostor pair in ten may pass
    assert 0.3 <= t < 0.5 and np.mean(impostor <= t) <= 0.1 and tar == np.mean(genuine <= t)
    t, tar = threshold_at_far(genuine, impostor, far=0.05)  # none may pass
    assert t < 0.35 and tar == 0.75
    t, eer = equal_error_threshold(genuine, impostor)
    assert 0.3 <= t <= 0.4 and eer <= 0.25
    with pytest.raises(ValueError, match="same-person and different-person"):
        equal_error_threshold(genuine, np.array([]))


def test_calibrate_writes_thresholds_the_pipeline_uses(bundle_dir, tmp_path):
    b = tmp_path / "b"
    shutil.copytree(bundle_dir, b)
    r = subprocess.run([shutil.which("reid-export"), "calibrate", str(b), "--limit", "40"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "strangers accepted 1.0%" in r.stdout
    bundle = load_bundle(b)  # checksums still hold: only the manifest changed
    thresholds = {m.id: m.open_set_threshold for m in bundle.manifest.models}
    assert set(thresholds) == {"distill", "lupi"} and all(0 <= t <= 2 for t in thresholds.values())
    assert all(m.metrics["open_set"]["far"] == 0.01 for m in bundle.manifest.models)
    cfg = config_from_mapping(StreamConfig, {}, "<test>")
    assert gallery_config(cfg, bundle).threshold == pytest.approx(min(thresholds.values()))
    own = config_from_mapping(StreamConfig, {"threshold_from": "config", "gallery": {"threshold": 0.3}}, "<test>")
    assert gallery_config(own, bundle).threshold == 0.3
