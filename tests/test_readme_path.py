"""The README's newcomer path, command for command, through the real CLIs on a tiny dataset.

The commands are read from README.md itself (sections "Training (cross-modal distillation, RGB-D)" and
"Export: model bundles") and run in a scratch directory that links the repository's ``configs/``, so the
relative paths of the README (``data/synth-rgbd``, ``runs/synthetic/...``, ``models/mine``) resolve as they
would for a newcomer in a checkout. Only sizes are shrunk, by arguments appended to each command (argparse
and ``reid-train``'s ``key=value`` overrides: the last value wins): a 16-person dataset, one short epoch of
tiny networks. ``reid-export calibrate`` (minutes of simulation) is the one README step left out; the stream
then warns, as the README says, that nobody can be re-identified.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime", reason="the README path exports to ONNX: pip install 'reid-stream[onnx]'")

REPO = Path(__file__).resolve().parents[1]
TINY_TRAIN = ("loop.epochs=1 loop.max_steps_per_epoch=3 loop.progress=false loop.eval_repeats=1 loop.device=cpu "
              "model.width=8 model.embedding_dim=32 data.height=64 data.width=32 data.val_identities=2 "
              "method.batch_size=8")
SHRINK = {  # first words of a README command -> arguments appended to it
    "reid-synth dataset": "--identities 16 --images 3",
    "reid-train": TINY_TRAIN,
    "reid-eval": "--repeats 2",
    "reid-export bundle": "",
    "reid-export verify": "--limit 40",
    "reid-export benchmark": "--batches 1 --seconds 0.2",
    "reid-stream": "--max-frames 8",
}


def readme_commands(section: str) -> list[str]:
    """The commands of the first ``bash`` block of README section ``section``, up to its first comment line."""
    text = (REPO / "README.md").read_text()
    start = text.find(f"\n## {section}\n")
    assert start >= 0, f"README.md: no section '## {section}'"
    block = text[text.index("```bash\n", start) + len("```bash\n"):]
    block = block[:block.index("```")]
    commands = []
    for line in block.splitlines():
        if line.startswith("#"):
            break
        command = line.split(" #")[0].strip()
        if command:
            commands.append(command)
    return commands


def run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """Runs one README command with its shrinking arguments; fails with its output if it fails."""
    key = next((k for k in SHRINK if command.startswith(k)), None)
    assert key is not None, f"README.md: unexpected command on this path: {command}"
    args = shlex.split(command) + shlex.split(SHRINK[key])
    exe = shutil.which(args[0])
    assert exe, f"{args[0]} is not installed: pip install -e ."
    r = subprocess.run([exe, *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{' '.join(args)}: exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


def test_readme_train_eval_export_verify_stream(tmp_path):
    (tmp_path / "configs").symlink_to(REPO / "configs", target_is_directory=True)
    train = readme_commands("Training (cross-modal distillation, RGB-D)")
    export = [c for c in readme_commands("Export: model bundles") if not c.startswith("reid-export calibrate")]
    assert [c.split()[0] for c in train] == ["reid-synth", "reid-train", "reid-train", "reid-eval"], train
    assert [" ".join(c.split()[:2]) for c in export] == ["reid-export bundle", "reid-export verify",
                                                         "reid-export benchmark", "reid-stream --bundle"], export
    began = time.monotonic()
    out = {c: run(c, tmp_path) for c in train + export}

    # reid-eval: every scenario with its chance level beside it, a CMC plot with the chance curve
    table = out[train[3]].stdout
    eval_dir = tmp_path / Path(train[3].split()[1]).parent / "eval"
    metrics = json.loads((eval_dir / "metrics.json").read_text())["results"]
    assert set(metrics) == {"Q:rgb G:depth", "Q:depth G:rgb", "Q:rgb G:rgb", "Q:depth G:depth"}
    assert "chance mAP (%)" in table and "chance rank-1 (%)" in table
    for name, res in metrics.items():
        row = next(ln for ln in table.splitlines() if ln.startswith(name))
        assert row.split()[-2:] == [f"{res['chance']['mAP']:.1f}", f"{res['chance']['rank-1']:.1f}"], row
        assert 0 < res["chance"]["rank-1"] < 100 and len(res["chance"]["cmc"]) == len(res["cmc"])
    assert (eval_dir / "cmc.png").stat().st_size > 0

    # the exact export passes verify (the distillation model's two ONNX files, both directions)
    verify = out[export[1]].stdout
    assert "verify: PASS" in verify and [ln for ln in verify.splitlines() if ln.startswith("verify:")] == [
        "verify: PASS"], verify
    for row in ("distill      depth    onnx/fp32", "distill      rgb      onnx/fp32", "depth -> rgb", "rgb -> depth"):
        assert row in verify, verify
    assert "onnx/fp32" in out[export[2]].stdout

    # the live pipeline on the simulated camera, from the verified bundle
    stream = out[export[3]]
    stream_dir = tmp_path / shlex.split(export[3])[shlex.split(export[3]).index("--output") + 1]
    summary = json.loads((stream_dir / "summary.json").read_text())
    assert summary["frames_processed"] == 8 and summary["detections"] > 0, summary
    assert "no evidence calibration" in stream.stderr  # the README's note on the skipped calibrate step
    print(f"README path: {time.monotonic() - began:.1f} s for {len(train) + len(export)} commands")
