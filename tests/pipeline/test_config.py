"""Configs reject unknown keys and wrong types, naming the file, the key and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from reidstream.pipeline.config import ConfigError, load_config, parse_overrides
from reidstream.pipeline.sim.config import SimConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("path", sorted((CONFIGS / "sim").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_sim_configs_load(path):
    from reidstream.pipeline.sim.config import SimSiteConfig

    cls = SimSiteConfig if path.name.startswith("site-") else SimConfig  # a site of several simulated cameras
    assert isinstance(load_config(cls, path), cls)


def test_default_yaml_is_the_builtin_default():
    assert load_config(SimConfig, CONFIGS / "sim" / "default.yaml") == SimConfig()


def test_unknown_key_names_file_key_and_allowed(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("camera:\n  hieght: 2.0\n")
    with pytest.raises(ConfigError) as e:
        load_config(SimConfig, f)
    msg = str(e.value)
    assert str(f) in msg and "camera.hieght" in msg and "unknown key" in msg and "mount_height" in msg


def test_wrong_type_names_file_key_and_expected(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("crowd:\n  people: four\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: key 'crowd.people': expected a valid integer, got 'four'"):
        load_config(SimConfig, f)
    f.write_text("camera:\n  fps: '30'\n")  # a string is not a number: no silent coercion
    with pytest.raises(ConfigError, match="camera.fps"):
        load_config(SimConfig, f)
    f.write_text("lighting:\n  level: -1\n")
    with pytest.raises(ConfigError, match="lighting.level.*greater than 0"):
        load_config(SimConfig, f)


def test_overrides_apply_and_errors_point_at_command_line(tmp_path):
    cfg = load_config(SimConfig, None, ["crowd.people=6", "lighting.level=0.05", "modalities=[rgb, depth]"])
    assert cfg.crowd.people == 6 and cfg.lighting.level == 0.05 and cfg.modalities == ["rgb", "depth"]
    with pytest.raises(ConfigError, match=r"command line: key 'crowd.people': expected a valid integer"):
        load_config(SimConfig, None, ["crowd.people=many"])
    with pytest.raises(ConfigError, match="command line: key 'crowd.peeple': unknown key"):
        load_config(SimConfig, None, ["crowd.peeple=3"])
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["crowd.people"])


def test_yaml_syntax_and_missing_file(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("camera:\n  width: [640\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: not valid YAML at line \d+"):
        load_config(SimConfig, f)
    with pytest.raises(ConfigError, match="nothere.yaml: cannot read"):
        load_config(SimConfig, tmp_path / "nothere.yaml")
    f.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(SimConfig, f)


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="max_distance"):
        load_config(SimConfig, None, ["crowd.min_distance=5", "crowd.max_distance=2"])


def test_configs_are_frozen_and_round_trip():
    cfg = SimConfig()
    with pytest.raises(Exception):
        cfg.seed = 3  # type: ignore[misc]
    from reidstream.pipeline.config import config_from_mapping

    assert config_from_mapping(SimConfig, cfg.to_dict()) == cfg


def test_stream_default_yaml_is_the_builtin_default():
    from reidstream.pipeline.app.config import StreamConfig

    assert load_config(StreamConfig, CONFIGS / "stream" / "default.yaml") == StreamConfig()


def test_binary_file_given_as_config_names_the_file(tmp_path):
    import cv2
    import numpy as np

    png = tmp_path / "photo.yaml"
    png.write_bytes(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    with pytest.raises(ConfigError, match=r"photo\.yaml: not a text file \(byte 0 is not UTF-8.*expected a YAML "
                                          r"config"):
        load_config(SimConfig, png)
    nul = tmp_path / "zeros.yaml"
    nul.write_bytes(b"\x00" * 64)  # valid UTF-8, still binary
    with pytest.raises(ConfigError, match=r"zeros\.yaml: not a text file.*NUL.*expected a YAML config"):
        load_config(SimConfig, nul)


@pytest.mark.parametrize("key, bad, limit", [("gallery.max_visits_per_identity", 100_000_000, 1024),
                                             ("gallery.max_identities", 100_000_000, 1_000_000),
                                             ("buffer.maxsize", 100_000_000, 256),
                                             ("source.width", 100_000_000, 8192),
                                             ("source.height", 100_000_000, 8192)])
def test_stream_sizes_are_bounded(key, bad, limit):
    from reidstream.pipeline.app.config import StreamConfig

    with pytest.raises(ConfigError, match=rf"command line: key '{key}': expected less than or equal to {limit}"):
        load_config(StreamConfig, None, [f"{key}={bad}"])
    cfg = load_config(StreamConfig, None, [f"{key}={limit}"])  # the bound itself is allowed
    section, name = key.split(".")
    assert getattr(getattr(cfg, section), name) == limit


def test_sim_population_is_bounded():
    with pytest.raises(ConfigError, match=r"key 'crowd.population': expected less than or equal to 1000000"):
        load_config(SimConfig, None, ["crowd.population=100000000"])
