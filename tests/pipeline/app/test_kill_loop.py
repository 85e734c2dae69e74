"""``reid-stream`` killed with SIGKILL at random moments and restarted with ``--resume``, 20 times, on the
simulator: no identity name is handed out twice, every announced identity survives in the gallery
(``gallery.npz`` + ``gallery.journal``), and ``reid-score`` counts every logged frame once."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

from reidstream.pipeline.gallery import journal_path, load_gallery, replay
from reidstream.pipeline.sinks.score_log import RESTART_KEY
from reidstream.pipeline.tools.score import main as score_main

KILLS = 20
SIM_WORLD = """\
seed: {seed}
modalities: [rgb, depth]
camera: {width: 320, height: 240, fps: 10.0}
crowd: {people: 3, mean_gap_s: 0.5, return_prob: 0.5}
"""


def exe(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed: run pip install -e ."
    return path


def start(out: Path, world: Path, log: Path, frames: int, seed: int) -> subprocess.Popen:
    """A resumed run on a simulated world of its own (``seed``: other people and motion each time)."""
    world.write_text(SIM_WORLD.replace("{seed}", str(seed)))
    argv = [exe("reid-stream"), "--camera", "sim", "--output", str(out), "--resume", f"source.sim={world}",
            "source.realtime=false", "output.save_every_s=1.0", "output.video=false", "--max-frames", str(frames)]
    with open(log, "w") as f:
        return subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)


def segments(path: Path) -> list[list[int]]:
    """The frame indices each run logged to ``frames.jsonl``, one list per run (split at restart markers)."""
    runs: list[list[int]] = [[]]
    for line in path.read_text().splitlines():
        d = json.loads(line)  # every line whole: a torn tail is cut before the next run appends
        if d.get(RESTART_KEY) is True:
            runs.append([])
        else:
            runs[-1].append(d["frame"])
    return [r for r in runs if r]


def test_sigkill_restart_loop_never_reuses_a_name_and_keeps_every_announced_identity(tmp_path):
    rng = random.Random(20240611)
    out = tmp_path / "run"
    killed = 0
    t0 = time.monotonic()
    for k in range(KILLS):
        log = tmp_path / f"run{k}.log"
        # 400 frames: ~8 s at the ~47 frames/s a 320 x 240 run reaches here, so a kill 0-4 s after frame 0
        # lands mid-run (150 frames took 3.2 s, and 3 of 20 runs ended before their kill)
        proc = start(out, tmp_path / f"world{k}.yaml", log, frames=400, seed=k)
        if rng.random() < 0.2:  # during start-up (the gallery and journal being loaded)
            time.sleep(rng.uniform(0.0, 1.5))
        else:  # while processing: mid-frame, mid-journal-write, mid-save
            deadline = time.monotonic() + 60
            while "frame 0:" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 4.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        rc = proc.wait(timeout=60)
        assert rc in (0, -signal.SIGKILL), log.read_text()[-3000:]
    assert killed >= KILLS - 2, f"only {killed} of {KILLS} runs were killed (the runs end too soon)"
    final = tmp_path / "final.log"
    proc = start(out, tmp_path / "world-final.yaml", final, frames=60, seed=KILLS)
    assert proc.wait(timeout=120) == 0, final.read_text()[-3000:]
    elapsed = time.monotonic() - t0

    # 1. names: every 'new' event names an identity never announced before (not even by an earlier run)
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    announced: set[str] = set()
    for no, e in enumerate(events, 1):
        if e["kind"] == "new":
            assert e["identity"] not in announced, f"events.jsonl line {no}: {e['identity']} handed out again"
        if e["kind"] in ("new", "matched"):
            announced.add(e["identity"])
    assert sum(e["kind"] == "new" for e in events) >= 5, "too few identities created to test anything"

    # 2. every identity an event names is in the final gallery (snapshot + journal), unless it expired
    gallery = load_gallery(out / "gallery.npz")
    replay(gallery, journal_path(out / "gallery.npz"))
    expired = {e["identity"] for e in events if e["kind"] == "expired"}
    named = {e["identity"] for e in events if e["identity"] and e["kind"] != "expired"}
    missing = sorted(named - expired - set(gallery.identities()))
    assert not missing, f"identities announced in events.jsonl but gone from the gallery: {missing}"
    assert gallery.next_id > max(int(n.split("-")[1]) for n in named if n.startswith("id-"))

    # 3. frames: each run logged frames 0, 1, ... once; reid-score counts them all, once
    runs = segments(out / "frames.jsonl")
    assert all(r == list(range(len(r))) for r in runs), [r[:3] + ["..."] + r[-3:] for r in runs]
    assert runs[-1] == list(range(60))  # the final run, not killed, logged every frame it processed
    assert json.loads((out / "summary.json").read_text())["frames_processed"] == 60
    figures = tmp_path / "score.json"
    assert score_main([str(out), "--json", str(figures)]) == 0
    assert json.loads(figures.read_text())["frames"] == sum(len(r) for r in runs)
    assert elapsed < 170, f"the loop took {elapsed:.0f} s"
