"""Two real reid-stream workers, one camera of a recorded site each, sharing a gallery on a real redis-server
that is stopped for 10 s in the middle of the run: both finish, nothing announced is lost, and the worker that
stops last holds exactly what Redis holds (the one that stops first cannot know what the other decides after it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from reidstream.pipeline.gallery import load_gallery
from reidstream.pipeline.gallery.shared import SharedGallery

from ..conftest import REDIS, SITE_SECONDS as SECONDS, RedisServer

pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed (apt-get install redis-server)")


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_for_line(path: Path, text: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if path.is_file() and text in path.read_text():
            return
        time.sleep(0.1)
    raise AssertionError(f"{path}: no {text!r} within {timeout} s (exit code {proc.poll()})")


def test_workers_keep_going_through_a_ten_second_redis_outage_and_converge(small_site, tmp_path):
    site = small_site
    server = RedisServer()
    server.start()
    workers, logs = {}, {}
    try:
        # corridor first, room once corridor's gallery is up: room (starting later) is the one that stops last
        for cam in ("corridor", "room"):
            logs[cam] = tmp_path / f"{cam}.stderr"
            with open(logs[cam], "w") as err:
                workers[cam] = subprocess.Popen(
                    [shutil.which("reid-stream"), "--replay", str(site), "--site-camera", cam, "--gallery",
                     server.url, "--output", str(tmp_path / cam), "source.realtime=true"],
                    stdout=subprocess.DEVNULL, stderr=err, text=True)
            _wait_for_line(logs[cam], "gallery shared through", workers[cam])
        time.sleep(4)
        server.stop()           # Redis goes away for 10 s
        time.sleep(10)
        assert all(p.poll() is None for p in workers.values()), "a worker stopped while Redis was away"
        server.start()          # comes back empty, on the same port
        for p in workers.values():
            p.wait(timeout=180)
        check = SharedGallery(server.url, worker="check")  # a replica of what Redis holds once both stopped
        assert check.catch_up(10.0)
        shared = set(check.identities())
        merges = [f for _, f in check.link.client.xrange("reid:events") if f[b"kind"] == b"merge"]
        check.link.close(0.5)
    finally:
        for p in workers.values():
            if p.poll() is None:
                p.kill()
        if server.proc.poll() is None:
            server.stop()
    for cam, p in workers.items():
        assert p.returncode == 0, logs[cam].read_text()[-3000:]
        summary = json.loads((tmp_path / cam / "summary.json").read_text())
        assert summary["frames_processed"] == SECONDS * 15  # no frame lost to the outage
    galleries = {cam: set(load_gallery(tmp_path / cam / "gallery.npz").identities()) for cam in workers}
    announced, gone = set(), {f[b"from"].decode() for f in merges}
    for cam in workers:
        for e in _events(tmp_path / cam / "events.jsonl"):
            if e["kind"] == "new":
                announced.add(e["identity"])
            elif e["kind"] == "expired":
                gone.add(e["identity"])
    assert shared and galleries["room"] == shared  # the last to stop caught up with everything
    assert galleries["corridor"] <= shared | gone  # the first holds nothing the site lost (only what came later)
    assert announced and announced - gone <= shared  # every identity announced is still there
    news = [e["identity"] for cam in workers for e in _events(tmp_path / cam / "events.jsonl") if e["kind"] == "new"]
    assert len(news) == len(set(news))  # no name handed out twice, by either worker
