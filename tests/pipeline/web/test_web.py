"""The browser view: a real ``reid-stream --serve`` in headless Chromium, privacy, security, ``reid-review``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from reidstream.pipeline.gallery import Gallery, load_gallery  # noqa: E402
from reidstream.pipeline.gallery.journal import journal_path, replay  # noqa: E402
from reidstream.pipeline.result import FrameResult  # noqa: E402
from reidstream.pipeline.sinks.privacy import PrivacyFilter  # noqa: E402
from reidstream.pipeline.sinks.web import WebSink  # noqa: E402
from reidstream.pipeline.types import Detections, Modality  # noqa: E402
from reidstream.pipeline.viz import colourize  # noqa: E402
from reidstream.pipeline.web import WebServerError, check_bind  # noqa: E402
from reidstream.pipeline.web.app import LiveView, create_app  # noqa: E402
from reidstream.pipeline.web.state import WebState  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exe(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    assert Path(path).exists(), f"{name} is not installed: run pip install -e ."
    return path


def wait_for(check, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            got = check()
        except Exception:  # noqa: BLE001 - not there yet (no answer, no element): try again until the timeout
            got = None
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def start_stream(out: Path, port: int, log: Path, *extra: str) -> subprocess.Popen:
    cmd = [exe("reid-stream"), "--camera", "sim", "--serve", f"127.0.0.1:{port}", "--output", str(out),
           "--max-frames", "100000", *extra]
    proc = subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{base}/api/info", timeout=2).status_code == 200 or proc.poll() is not None,
                 90, "the browser view to answer")
    except AssertionError:
        proc.kill()
        raise
    assert proc.poll() is None, log.read_text()[-3000:]
    return proc


def stop(proc: subprocess.Popen, log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()


def saved_gallery(out: Path) -> Gallery:
    g = load_gallery(out / "gallery.npz")
    if journal_path(out / "gallery.npz").is_file():
        replay(g, journal_path(out / "gallery.npz"))
    return g


# ---------------------------------------------------------------- (a) live, in a browser
@pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                    reason="needs Debian chromium and chromedriver at /usr/bin")
def test_live_page_streams_lists_identities_and_names_merges_forgets_splits_across_a_restart(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    out, log, port = tmp_path / "run", tmp_path / "stream.log", free_port()
    base = f"http://127.0.0.1:{port}"
    api = lambda path: httpx.get(base + path, timeout=5).json()  # noqa: E731
    proc = start_stream(out, port, log)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1100"):
        opts.add_argument(a)
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    try:
        driver.get(base + "/")
        # the camera streams: the MJPEG image decodes and the frame counter moves on
        img = wait_for(lambda: driver.find_element(By.CSS_SELECTOR, ".camera img.stream"), 30, "the stream")
        wait_for(lambda: driver.execute_script("return arguments[0].naturalWidth", img) > 0, 30, "a decoded frame")
        first = wait_for(lambda: driver.find_element(By.CSS_SELECTOR, ".camera .frame").text, 20, "a frame counter")
        wait_for(lambda: driver.find_element(By.CSS_SELECTOR, ".camera .frame").text != first, 20, "a new frame")
        # identities appear with a thumbnail per modality
        def with_thumbs():
            boxes = driver.find_elements(By.CSS_SELECTOR, ".identity")
            ok = [b.get_attribute("data-identity") for b in boxes if driver.execute_script(
                "return [...arguments[0].querySelectorAll('img.thumb')].some(i => i.naturalWidth > 0)", b)]
            return ok if len(ok) >= 4 else None
        wait_for(with_thumbs, 90, "four identities with thumbnails")
        # name an identity that is in view: the events that follow carry the name
        target = wait_for(lambda: next((p["identity"] for c in api("/api/cameras").values() for p in c["in_view"]
                                        if p["identity"]), None), 30, "an identity in view")
        box = driver.find_element(By.CSS_SELECTOR, f'.identity[data-identity="{target}"]')
        box.find_element(By.CSS_SELECTOR, ".name-input").send_keys("alice")
        box.find_element(By.CSS_SELECTOR, ".name-btn").click()
        wait_for(lambda: any(r["identity"] == "alice" and r["pinned"] for r in api("/api/identities")), 20, "alice")
        wait_for(lambda: any(e.get("kind") in ("matched", "new") for e in api("/api/events?identity=alice")), 30,
                 "an event of alice")
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, '#events li.matched[data-identity="alice"]'), 10,
                 "alice in the page's timeline")
        # merge one identity into another, and forget a third
        others = [r["identity"] for r in api("/api/identities") if r["identity"] != "alice"]
        keep, gone, erased = others[0], others[1], others[2]
        def merge() -> bool:  # the options are redrawn every second: choose and click on fresh elements
            box = driver.find_element(By.CSS_SELECTOR, f'.identity[data-identity="{keep}"]')
            Select(box.find_element(By.CSS_SELECTOR, ".merge-select")).select_by_value(gone)
            box.find_element(By.CSS_SELECTOR, ".merge-btn").click()
            return True
        wait_for(merge, 10, "the merge request")
        wait_for(lambda: gone not in {r["identity"] for r in api("/api/identities")}, 20, "the merge")
        driver.find_element(By.CSS_SELECTOR, f'.identity[data-identity="{erased}"] .forget-btn').click()
        wait_for(lambda: erased not in {r["identity"] for r in api("/api/identities")}, 20, "the forget")
        assert httpx.get(f"{base}/api/thumb/{erased}/depth").status_code == 404
        wait_for(lambda: not driver.find_elements(By.CSS_SELECTOR, f'.identity[data-identity="{erased}"]'), 10,
                 "the forgotten identity to leave the page")
        # the evidence behind keep's latest decision: a click on its name shows the per-cue table
        sel = f'.identity[data-identity="{keep}"]'
        # the page redraws an identity's details every second: find the name afresh for the click
        wait_for(lambda: driver.find_element(By.CSS_SELECTOR, f"{sel} .name").click() or True, 10,
                 "a click on the identity's name")

        def table_matches_api():
            ev = api(f"/api/evidence/{keep}")
            cells = lambda css: [td.text for td in driver.find_elements(By.CSS_SELECTOR, f"{sel} .evidence-table {css}")]  # noqa: E731
            return cells("tr.threshold td:nth-child(2)") == [f'{ev["threshold"]:.2f}'] and \
                cells("tr.cue td:first-child") == [c["cue"] for c in ev["cues"]] and len(ev["cues"]) >= 1
        wait_for(table_matches_api, 20, "the evidence table of the API's latest decision")
        # split the merged identity again, by visit: tick its newest visit and "split off"
        row = [v["row"] for v in next(r for r in api("/api/identities") if r["identity"] == keep)["visit_list"]][-1]

        def tick():
            box = driver.find_element(By.CSS_SELECTOR, sel)
            visits = box.find_element(By.CSS_SELECTOR, "details.visits")
            if not visits.get_attribute("open"):
                visits.find_element(By.TAG_NAME, "summary").click()
            check = box.find_element(By.CSS_SELECTOR, f'input.visit-check[data-row="{row}"]')
            if not check.is_selected():
                check.click()
            return driver.find_element(By.CSS_SELECTOR, f'{sel} input.visit-check[data-row="{row}"]').is_selected()
        wait_for(tick, 20, "the visit to be ticked")
        wait_for(lambda: driver.find_element(By.CSS_SELECTOR, f"{sel} .split-btn").click() or True, 10, "split off")
        split_off = wait_for(lambda: next((r["identity"] for r in api("/api/identities") if r["identity"] != keep
                                           and [v["row"] for v in r["visit_list"]] == [row]), None), 20, "the split")
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, f'#events li.split[data-identity="{split_off}"]'), 10,
                 "the split in the page's timeline")
        if os.environ.get("REID_STREAM_SCREENSHOT") == "1":
            time.sleep(2)
            driver.save_screenshot(str(REPO / "docs" / "web.png"))
    finally:
        driver.quit()
        stop(proc, log)
    g = saved_gallery(out)
    assert "alice" in g and g.is_pinned("alice") and gone not in g and erased not in g
    assert g.visits_of(keep) >= 1 and split_off in g
    assert erased.encode() not in (out / "gallery.npz").read_bytes()
    # a restart with --resume keeps the name, the merge and the erasure
    port = free_port()
    proc = start_stream(out, port, log, "--resume")
    try:
        names = {r["identity"] for r in httpx.get(f"http://127.0.0.1:{port}/api/identities", timeout=5).json()}
        names = names or wait_for(lambda: {r["identity"] for r in httpx.get(
            f"http://127.0.0.1:{port}/api/identities", timeout=5).json()}, 30, "the reloaded identities")
        assert "alice" in names and gone not in names and erased not in names and split_off in names
    finally:
        stop(proc, log)


# ---------------------------------------------------------------- (b) privacy
def sim_results(n: int = 3):
    from reidstream.pipeline.sim.config import SimConfig
    from reidstream.pipeline.sources.sim import SimSource

    src = SimSource.from_config(SimConfig(), max_frames=40)
    out = []
    for item in src:
        anns = [a for a in item.annotations if a.visible > 0.6 and a.box[3] - a.box[1] > 60]
        if not anns:
            continue
        boxes = np.array([a.box for a in anns], np.float32)
        det = Detections(boxes, np.ones(len(anns), np.float32), np.arange(len(anns), dtype=np.int64),
                         Modality.DEPTH, item.frame.index)
        out.append(FrameResult(item.frame, det, tuple(f"id-{a.identity}" for a in anns)))
        if len(out) == n:
            break
    assert out, "the simulator showed nobody in 40 frames"
    return out


def test_privacy_mode_serves_no_colour(tmp_path):
    results = sim_results()
    views = {}
    for privacy in (False, True):
        state = WebState(privacy=privacy)
        state.last_request = state.clock()  # someone watches: frames are drawn
        sink = WebSink(state, max_fps=1000, privacy=privacy)
        for r in results:
            (PrivacyFilter(sink) if privacy else sink)(r)
        views[privacy] = state
    grey = lambda img: np.abs(img.astype(int) - img.mean(axis=2, keepdims=True)).max(axis=2)  # noqa: E731
    r = results[-1]
    shown = cv2.imdecode(np.frombuffer(views[True].cameras[r.frame.camera_id].jpeg, np.uint8), cv2.IMREAD_COLOR)
    coloured = cv2.imdecode(np.frombuffer(views[False].cameras[r.frame.camera_id].jpeg, np.uint8), cv2.IMREAD_COLOR)
    w, h = r.frame.size
    # the colour tile: the colour frame in normal mode, flat grey in privacy mode
    assert np.percentile(grey(coloured[30:h, :w]), 90) > 20
    assert np.percentile(grey(shown[30:h, :w]), 99) <= 12
    # the depth tile is the depth rendering (up to JPEG loss)
    depth = colourize(Modality.DEPTH, r.frame.depth)
    assert np.abs(shown[40:h, w:2 * w].astype(int) - depth[40:h].astype(int)).mean() < 12
    for ident, thumbs in views[True].thumbs.items():
        assert "rgb" not in thumbs and {"depth", "ir"} <= set(thumbs), (ident, sorted(thumbs))
    assert any("rgb" in t for t in views[False].thumbs.values())
    # served thumbnails (cut from the first frame of an identity): the depth one is the depth crop's
    # rendering, grey IR stays grey
    client = TestClient(create_app(LiveView(views[True])))
    r = results[0]
    k, ident = 0, r.identities[0]
    x1, y1, x2, y2 = (int(round(float(v))) for v in r.detections.boxes[k])
    res = client.get(f"/api/thumb/{ident}/depth")
    assert res.status_code == 200 and res.headers["content-type"] == "image/jpeg"
    served = cv2.imdecode(np.frombuffer(res.content, np.uint8), cv2.IMREAD_COLOR)
    crop = colourize(Modality.DEPTH, r.frame.depth[max(0, y1):y2, max(0, x1):x2])
    crop = cv2.resize(crop, (served.shape[1], served.shape[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(served.astype(int) - crop.astype(int)).mean() < 15
    ir = cv2.imdecode(np.frombuffer(client.get(f"/api/thumb/{ident}/ir").content, np.uint8), cv2.IMREAD_COLOR)
    assert np.percentile(grey(ir), 99) <= 10
    assert client.get(f"/api/thumb/{ident}/rgb").status_code == 404


# ---------------------------------------------------------------- (c) security
def test_a_public_address_needs_a_token_and_requests_must_carry_it():
    with pytest.raises(WebServerError, match="--token"):
        check_bind("0.0.0.0:0", None)
    assert check_bind("8080", None) == ("127.0.0.1", 8080)
    env = {k: v for k, v in os.environ.items() if k != "REID_STREAM_TOKEN"}
    done = subprocess.run([exe("reid-stream"), "--camera", "sim", "--serve", "0.0.0.0:0", "--max-frames", "1"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "--token" in done.stderr and "REID_STREAM_TOKEN" in done.stderr, done.stderr
    state = WebState()
    client = TestClient(create_app(LiveView(state), token="s3cret-token"))
    assert client.get("/api/info").status_code == 401
    assert client.get("/api/info?token=wrong-token").status_code == 401
    assert client.post("/api/identity/x/forget", json={}).status_code == 401
    assert client.get("/api/info?token=s3cret-token").json()["mode"] == "live"
    assert client.get("/", headers={"X-Reid-Token": "s3cret-token"}).status_code == 200


def test_no_path_traversal_and_actions_need_json_posts():
    state = WebState()
    state.thumbs["id-0001"] = {"depth": b"\xff\xd8jpeg"}
    client = TestClient(create_app(LiveView(state)))
    assert client.get("/api/thumb/id-0001/depth").content == b"\xff\xd8jpeg"
    for path in ("/api/thumb/..%2F..%2F..%2Fetc%2Fpasswd/depth", "/api/thumb/id-0001/..%2F..%2Fapp.py",
                 "/static/..%2Fstate.py", "/static/../../pyproject.toml", "/static/%2Fetc%2Fpasswd",
                 "/api/thumb/id-0001/..", "/static/index.html/..%2F..%2Fserver.py"):
        res = client.get(path)
        assert res.status_code == 404, (path, res.status_code)
        assert b"import" not in res.content and b"root:" not in res.content
    assert client.get("/api/identity/id-0001/forget").status_code == 405
    assert client.post("/api/identity/id-0001/forget", content="{}",
                       headers={"Content-Type": "text/plain"}).status_code == 415
    assert client.post("/api/identity/id-0001/name", json={"nom": "x"}).status_code == 400


# ---------------------------------------------------------------- (d) reid-review
def test_review_lists_a_finished_runs_identities_events_and_frames(tmp_path):
    from reidstream.pipeline.app.cli import stream_main
    from reidstream.pipeline.tools.review import RunView

    out = tmp_path / "run"
    assert stream_main(["--camera", "sim", "--max-frames", "90", "--output", str(out)]) == 0
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    decided = {e["identity"] for e in events if e["kind"] in ("new", "matched")}
    assert decided
    client = TestClient(create_app(RunView(out)))
    info = client.get("/api/info").json()
    assert info["mode"] == "review" and not info["actions"] and info["frames"][0] == 0
    listed = {r["identity"]: r for r in client.get("/api/identities").json()}
    assert set(listed) == set(load_gallery(out / "gallery.npz").identities()) and decided <= set(listed)
    some = sorted(decided)[0]
    assert listed[some]["visits"] >= 1 and listed[some]["visit_list"] and listed[some]["cameras"] == ["sim0"]
    mine = client.get(f"/api/events?identity={some}").json()
    assert mine and all(e["identity"] == some for e in mine)
    assert len(client.get("/api/events?limit=5000").json()) == len(events)
    assert client.get("/api/frames?frame=10").json()["records"][0]["frame"] == 10
    assert client.post(f"/api/identity/{some}/forget", json={}).status_code == 405
    # the command serves the same
    port = free_port()
    proc = subprocess.Popen([exe("reid-review"), str(out), "--serve", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        got = wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/api/identities", timeout=2).json(), 30,
                       "reid-review to answer")
        assert {r["identity"] for r in got} == set(listed)
        assert "reid-stream" in httpx.get(f"http://127.0.0.1:{port}/").text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
