"""``reid-export calibrate`` on a labelled recording: the evidence calibration lands in the manifest, files intact."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from reidstream.pipeline.app.stream import DEFAULT_BUNDLE
from reidstream.pipeline.bundle import BundleError, load_bundle
from reidstream.pipeline.config import config_from_mapping
from reidstream.pipeline.recording import record
from reidstream.pipeline.sim.config import SimConfig
from reidstream.pipeline.sources.sim import SimSource


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """30 s at 15 fps, a small population that comes back often, light cycling: a site's labelled recording."""
    cfg = config_from_mapping(SimConfig, {"seed": 31, "modalities": ["rgb", "depth", "ir"], "camera": {"fps": 15.0},
                                          "lighting": {"level": 1.0, "min_level": 0.02, "period_s": 20.0},
                                          "crowd": {"people": 3, "population": 6, "population_seed": 11,
                                                    "return_prob": 0.9}}, "<test>")
    path = tmp_path_factory.mktemp("rec") / "site"
    record(SimSource.from_config(cfg, max_frames=450), path, max_frames=450)
    return path


def test_calibrate_from_a_recording_writes_the_manifest(labelled, tmp_path):
    b = tmp_path / "bundle"
    shutil.copytree(DEFAULT_BUNDLE, b)
    before = load_bundle(b).calibration()
    r = subprocess.run([shutil.which("reid-export"), "calibrate", str(b), "--recordings", str(labelled),
                        "--min-pairs", "5", "--json", str(tmp_path / "cal.json")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "AUC" in r.stderr and "threshold" in r.stdout
    cal = load_bundle(b).calibration()  # file checksums still hold: only the manifest changed
    assert cal is not None and cal.to_dict() != before.to_dict()
    assert cal.source.endswith(str(labelled)) and "lit" in cal.figures
    assert any(m.weight > 0 for m in cal.cues.values())
    assert json.loads((tmp_path / "cal.json").read_text()) == cal.to_dict()


def test_malformed_calibration_is_named(tmp_path):
    b = tmp_path / "bundle"
    shutil.copytree(DEFAULT_BUNDLE, b)
    manifest = json.loads((b / "manifest.json").read_text())
    manifest["calibration"]["treshold"] = 3.0
    (b / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="manifest.json: calibration: unknown key.*treshold"):
        load_bundle(b).calibration()
