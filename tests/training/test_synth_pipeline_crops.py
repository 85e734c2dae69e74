"""``reid-synth dataset pipeline``: crops cut by the live pipeline's detector, every person lit and dark."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from reidstream.pipeline.sim.world import SimWorld
from reidstream.pipeline.types import Modality
from reidstream.training.data import folder, load_image
from reidstream.training.synth_cli import main as synth_main
from reidstream.training.synth_pipeline_crops import write_pipeline_dataset

TINY = {"identities": 6, "group": 3, "people": 3, "frames": 12, "every": 8, "min_crops": 4, "seed": 1,
        "progress": False}


@pytest.fixture(scope="module")
def small_cfg():
    from reidstream.pipeline.config import config_from_mapping
    from reidstream.pipeline.sim.config import SimConfig

    return config_from_mapping(SimConfig, {"camera": {"width": 320, "height": 240}}, "<test>")


@pytest.fixture(scope="module")
def written(tmp_path_factory, small_cfg):
    root = tmp_path_factory.mktemp("pipeline") / "ds"
    counts = write_pipeline_dataset(root, small_cfg, **TINY)
    return root, counts


def _lines(root):
    return [json.loads(line) for line in (root / "crops.jsonl").read_text().splitlines()]


def test_reads_back_as_folder_with_disjoint_splits_and_both_lights(written):
    root, counts = written
    meta = json.loads((root / "meta.json").read_text())
    index = folder.read(root)
    train, test = index.identities("train"), index.identities("test")
    assert train and test and not train & test
    assert len(train) + len(test) == counts["identities"] == len(meta["train"]) + len(meta["test"])
    assert counts["identities"] + counts["dropped"] == TINY["identities"]
    assert set(train) == set(meta["train"]) and set(test) == set(meta["test"])
    assert counts["train"] == len(index.records("train")) and counts["test"] == len(index.records("test"))
    cams = defaultdict(set)
    for split in ("train", "test"):
        for r in index.records(split):
            cams[r.pid].add(r.camid)
            assert r.sequence.startswith("g") and Modality.DEPTH in r.modalities and Modality.IR in r.modalities
    assert all(c == {0, 1} for c in cams.values())  # c00 lit, c01 dark for every identity
    record = index.records("test")[0]
    for m in record.modalities:
        img = load_image(record, m)
        assert img.shape[0] > img.shape[1] >= 8


def test_sidecar_describes_every_crop(written):
    root, counts = written
    lines = _lines(root)
    assert len(lines) == counts["crops"] == counts["train"] + counts["test"]
    assert {r["light"] for r in lines} == {"lit", "dark"}
    assert all((r["camera"] == 0) == (r["light"] == "lit") for r in lines)
    assert any(r["border"] for r in lines) and not all(r["border"] for r in lines)
    assert all(r["iou"] >= 0.5 and 0 <= r["visible"] <= 1 and 0.5 < r["distance"] < 9.5 for r in lines)
    # the pipeline skips colour where the detector finds it too dark; depth and IR are always there
    dark = [r for r in lines if r["light"] == "dark"]
    assert dark and all("rgb" not in r["modalities"] and r["colour_ok"] is False for r in dark)
    for r in lines[:5]:
        assert (root / r["split"] / str(r["identity"]) / "depth" / f"{r['stem']}.png").is_file()


def test_parallel_workers_write_the_same_dataset(tmp_path, small_cfg, written):
    root, _ = written
    counts = write_pipeline_dataset(tmp_path / "par", small_cfg, **TINY, workers=2)
    assert _lines(tmp_path / "par") == _lines(root)
    assert counts["crops"] == len(_lines(root))


@pytest.mark.parametrize("name,value", [("identities", 1), ("train_fraction", 1.0), ("group", 0), ("people", 0),
                                        ("frames", 0), ("every", 0), ("min_crops", -1), ("workers", 0),
                                        ("dark_level", 1.0), ("lit_level", 0.0), ("seed", -1)])
def test_bad_arguments_raise_naming_them(tmp_path, small_cfg, name, value):
    with pytest.raises(ValueError, match=f"^{name}: "):
        write_pipeline_dataset(tmp_path / "bad", small_cfg, **{**TINY, name: value})
    assert not (tmp_path / "bad").exists()


def test_cli_writes_the_layout_and_rejects_pipeline_options_elsewhere(tmp_path, capsys):
    out = tmp_path / "cli"
    rc = synth_main(["dataset", "pipeline", str(out), "--identities", "2", "--group", "1", "--people", "1",
                     "--frames", "6", "--min-crops", "0", "--seed", "2", "camera.width=320", "camera.height=240"])
    assert rc == 0 and (out / "crops.jsonl").is_file()
    assert "wrote pipeline layout" in capsys.readouterr().out
    assert synth_main(["dataset", "folder", str(tmp_path / "f"), "--frames", "3"]) == 2
    assert "--frames: only with the pipeline layout" in capsys.readouterr().err
    assert synth_main(["dataset", "pipeline", str(tmp_path / "b"), "--every", "0"]) == 2
    assert "every: expected >= 1" in capsys.readouterr().err


def test_world_identity_pool(small_cfg):
    two = small_cfg.model_copy(update={"crowd": small_cfg.crowd.model_copy(update={"people": 2})})
    world = SimWorld.from_config(two, identities=[7, 11, 7])
    seen = set()
    for _ in range(60):
        seen |= {w.identity for w in world.walkers}
        world.advance()
    assert seen == {7, 11}
    with pytest.raises(ValueError, match="identities"):
        SimWorld.from_config(two, identities=[7, 7])  # fewer than crowd.people
    with pytest.raises(ValueError, match="identities"):
        SimWorld.from_config(two, identities=[7, 500])  # the population has 500 people


def test_paired_only_keeps_the_lit_colour_and_depth_captures(written):
    from reidstream.training.run import paired

    root, _ = written
    records = folder.read(root).records("train")
    kept = paired(records, ("rgb", "depth"))
    assert kept and len(kept) < len(records)
    assert all(r.camid == 0 for r in kept)  # colour exists only lit
    assert paired(records, ("depth",)) == list(records)
