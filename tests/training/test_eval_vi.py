"""``reid-eval`` on tiny VI checkpoints and synthetic SYSU-MM01 / RegDB copies: tables, JSON, CMC plot."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from reidstream.pipeline.config import config_from_mapping
from reidstream.pipeline.sim.config import SimConfig
from reidstream.training.checkpoint import embedder_entries, load_embedders, save_checkpoint
from reidstream.training.cli import eval_main
from reidstream.training.config import TrainConfig
from reidstream.training.data import LAYOUTS
from reidstream.training.data.torch_data import ReIDDataset
from reidstream.training.data.transforms import Preprocess
from reidstream.training.evaluation.vi_protocols import regdb_evaluation, sysu_evaluation
from reidstream.training.inference import embed_all
from reidstream.training.methods.baselines import TwoStreamMethod
from reidstream.training.models import TwoStreamNet
from reidstream.training.synth_data import write_dataset


def make_checkpoint(path: Path, modalities: tuple[str, str], root: Path) -> Path:
    """A randomly initialised two-stream checkpoint (tiny ResNet-18) with one embedder per modality."""
    torch.manual_seed(0)
    net = TwoStreamNet("resnet18", modalities=modalities, width=8, embedding_dim=16, num_classes=4)
    method = TwoStreamMethod(net, modalities)
    prep = {m: Preprocess(modality=m, height=64, width=32) for m in modalities}
    cfg = config_from_mapping(TrainConfig, {
        "output": str(path.parent), "data": {"layout": "folder", "root": str(root), "height": 64, "width": 32},
        "method": {"name": "two_stream", "modalities": list(modalities)},
        "model": {"arch": "resnet18", "width": 8, "embedding_dim": 16}}, "<test>")
    return save_checkpoint(path, {"method": "two_stream", "config": json.dumps(cfg.to_dict()), "space": "vi",
                                  "embedders": embedder_entries(method, prep)})


@pytest.fixture(scope="module")
def sysu(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("vi")
    root = base / "sysu"
    write_dataset("sysu", root, SimConfig(), identities=8, images_per_camera=2, train_fraction=0.5, seed=1,
                  progress=False)
    return root, make_checkpoint(base / "run" / "best.pt", ("rgb", "ir"), root)


def test_reid_eval_sysu_table_json_and_plot(sysu, tmp_path, capsys):
    root, ckpt = sysu
    out = tmp_path / "eval"
    rc = eval_main([str(ckpt), "--layout", "sysu", "--root", str(root), "--mode", "all", "indoor", "--shots", "1",
                    "10", "--trials", "2", "--device", "cpu", "--out", str(out)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    table = printed.out
    for col in ("R-1 (%)", "R-10 (%)", "R-20 (%)", "mAP (%)", "mINP (%)", "chance mAP (%)", "chance rank-1 (%)"):
        assert col in table
    rows = [f"{m}-search {s} {d}" for m in ("all", "indoor") for s in ("single-shot", "multi-shot")
            for d in ("Q:ir G:rgb", "Q:rgb G:ir")]
    for row in rows:
        assert row in table
    assert "±" in table and (out / "table.txt").read_text().strip() == table.strip()
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["protocol"] == "sysu" and list(saved["results"]) == rows
    # chance beside each scenario: its own gallery's chance mAP and rank-1 end the scenario's line
    lines = {ln.split("  ")[0].strip(): ln for ln in table.splitlines()}
    for row in rows:
        chance = saved["results"][row]["chance"]
        assert 0 < chance["rank-1"] < 100 and 0 < chance["mAP"] < 100
        assert lines[row].split()[-2:] == [f"{chance['mAP']:.1f}", f"{chance['rank-1']:.1f}"], lines[row]
    assert saved["options"]["trials"] == 2 and saved["options"]["modes"] == ["all", "indoor"]
    assert cv2.imread(str(out / "cmc.png")) is not None

    # the numbers are the protocol's on the checkpoint's own embeddings of the test split
    test_ids = [int(x) for x in (root / "exp" / "test_id.txt").read_text().split(",")]
    n_ir = sum(len(list((root / f"cam{c}" / f"{p:04d}").glob("*.jpg"))) for c in (3, 6) for p in test_ids)
    emb = load_embedders(ckpt)
    data = ReIDDataset(LAYOUTS["sysu"].read(root).splits["test"], ("rgb", "ir"),
                       {m: e.preprocess for m, e in emb.items()}, require_all=False)
    feats = embed_all({m: e.module for m, e in emb.items()}, data)
    ref = sysu_evaluation(feats, mode="indoor", shots=10, trials=2)["Q:ir G:rgb"]
    got = saved["results"]["indoor-search multi-shot Q:ir G:rgb"]
    assert got["num_query"] == n_ir == ref["num_query"] and got["trials"] == 2
    for m in ("rank-1", "rank-10", "mAP", "mINP"):
        assert got[m]["values"] == pytest.approx(ref[m]["values"])
        assert 0.0 <= got[m]["mean"] <= 100.0


def test_reid_eval_regdb_one_checkpoint_per_trial(tmp_path, capsys):
    root = tmp_path / "regdb"
    write_dataset("regdb", root, SimConfig(), identities=6, images_per_camera=2, train_fraction=0.5, seed=2,
                  progress=False)
    a = make_checkpoint(tmp_path / "t1" / "best.pt", ("rgb", "thermal"), root)
    b = make_checkpoint(tmp_path / "t2" / "best.pt", ("rgb", "thermal"), root)
    out = tmp_path / "eval"
    rc = eval_main([str(a), str(b), "--layout", "regdb", "--root", str(root), "--trial", "1", "2",
                    "--device", "cpu", "--out", str(out)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert "visible->thermal Q:rgb G:thermal" in printed.out and "thermal->visible Q:thermal G:rgb" in printed.out
    assert "chance mAP (%)" in printed.out and "chance rank-1 (%)" in printed.out
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["protocol"] == "regdb" and saved["options"]["trial"] == [1, 2]
    emb = load_embedders(a)
    per_trial = []
    for t in (1, 2):
        data = ReIDDataset(LAYOUTS["regdb"].read(root, trial=t).splits["test"], ("rgb", "thermal"),
                           {m: e.preprocess for m, e in emb.items()}, require_all=False)
        per_trial.append(embed_all({m: e.module for m, e in emb.items()}, data))
    ref = regdb_evaluation(per_trial)
    for key, row in (("Q:rgb G:thermal", "visible->thermal Q:rgb G:thermal"),
                     ("Q:thermal G:rgb", "thermal->visible Q:thermal G:rgb")):
        got = saved["results"][row]
        assert len(got["mAP"]["values"]) == 2 and got["num_query"] == len(per_trial[0][key.split()[0][2:]])
        assert got["mAP"]["values"] == pytest.approx(ref[key]["mAP"]["values"])
        assert got["rank-1"]["mean"] == pytest.approx(np.mean(ref[key]["rank-1"]["values"]))
        # chance rank-1 of a random order: a query's true images over its gallery's size, mean over queries, trials
        q_mod, g_mod = key.split()[0][2:], key.split()[1][2:]
        by_hand = [np.mean([(f[g_mod].pids == p).sum() / len(f[g_mod]) for p in f[q_mod].pids]) for f in per_trial]
        assert got["chance"]["rank-1"] == pytest.approx(100 * np.mean(by_hand))
        row_line = next(ln for ln in printed.out.splitlines() if ln.startswith(row))
        assert row_line.split()[-2:] == [f"{got['chance']['mAP']:.1f}", f"{got['chance']['rank-1']:.1f}"]
    assert cv2.imread(str(out / "cmc.png")) is not None

    # two checkpoints that do not say their trial would both be trial 1: refused, naming the flag
    rc = eval_main([str(a), str(b), "--layout", "regdb", "--root", str(root), "--device", "cpu",
                    "--out", str(out)])
    assert rc == 1 and "--trial" in capsys.readouterr().err
    rc = eval_main([str(a), "--layout", "regdb", "--root", str(root), "--trial", "1", "2", "--device", "cpu",
                    "--out", str(out)])
    assert rc == 1 and "one RegDB trial per checkpoint" in capsys.readouterr().err


def test_reid_eval_names_missing_modality_embedder(sysu, tmp_path, capsys):
    root, ckpt = sysu
    rc = eval_main([str(ckpt), "--protocol", "regdb", "--root", str(root), "--device", "cpu",
                    "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 1 and "the regdb protocol needs ['rgb', 'thermal'] (missing ['thermal'])" in err
    regdb_like = make_checkpoint(tmp_path / "x" / "best.pt", ("rgb", "thermal"), root)
    rc = eval_main([str(regdb_like), "--layout", "sysu", "--root", str(root), "--trials", "1", "--device", "cpu",
                    "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 1 and "missing ['ir']" in err
