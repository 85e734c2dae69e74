"""Two real reid-stream workers, one camera of a recorded site each, sharing a gallery on a real redis-server
that is stopped for 10 s in the middle of the run: both finish, nothing announced is lost, both end in step."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from reidstream.pipeline.gallery import load_gallery

from ..conftest import REDIS, SITE_SECONDS as SECONDS, RedisServer

pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed (apt-get install redis-server)")


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_workers_keep_going_through_a_ten_second_redis_outage_and_converge(small_site, tmp_path):
    site = small_site
    server = RedisServer()
    server.start()
    workers = {}
    try:
        for cam in ("room", "corridor"):
            workers[cam] = subprocess.Popen(
                [shutil.which("reid-stream"), "--replay", str(site), "--site-camera", cam, "--gallery", server.url,
                 "--output", str(tmp_path / cam), "source.realtime=true"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(7)
        server.stop()           # Redis goes away for 10 s
        time.sleep(10)
        assert all(p.poll() is None for p in workers.values()), "a worker stopped while Redis was away"
        server.start()          # comes back empty, on the same port
        out = {cam: p.communicate(timeout=180) for cam, p in workers.items()}
    finally:
        for p in workers.values():
            if p.poll() is None:
                p.kill()
        if server.proc.poll() is None:
            server.stop()
    for cam, p in workers.items():
        assert p.returncode == 0, out[cam][1][-3000:]
        summary = json.loads((tmp_path / cam / "summary.json").read_text())
        assert summary["frames_processed"] == SECONDS * 15  # no frame lost to the outage
    galleries = {cam: set(load_gallery(tmp_path / cam / "gallery.npz").identities()) for cam in workers}
    assert galleries["room"] == galleries["corridor"] and galleries["room"]  # both replicas caught up
    announced, gone = set(), set()
    for cam in workers:
        for e in _events(tmp_path / cam / "events.jsonl"):
            if e["kind"] == "new":
                announced.add(e["identity"])
            elif e["kind"] == "expired":
                gone.add(e["identity"])
    assert announced and announced - gone <= galleries["room"]  # every identity announced is still there
    news = [e["identity"] for cam in workers for e in _events(tmp_path / cam / "events.jsonl") if e["kind"] == "new"]
    assert len(news) == len(set(news))  # no name handed out twice, by either worker
