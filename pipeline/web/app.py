"""The browser view's HTTP API and page (FastAPI), over a live run or a finished one.

Routes (all ``GET`` but the actions):

============================================  ================================================================
``/``, ``/static/app.js``, ``/static/style.css``  the page (plain HTML / JS, shipped in the package)
``/api/info``                                 mode (``live`` / ``review``), privacy, whether actions are allowed
``/api/cameras``                              per camera: frame, frames/s, per-stage latency, drops, people
``/api/camera/{id}/stream.mjpg``              live: the annotated tiles as MJPEG (``multipart/x-mixed-replace``)
``/api/camera/{id}/frame.jpg``                live: the latest annotated frame
``/api/identities``                           identities: thumbnails, first / last seen, cameras, visits
``/api/thumb/{identity}/{modality}``          an identity's thumbnail (JPEG; 404 for anything else)
``/api/events?since=&identity=&camera=``      the events timeline, newest last
``/api/frames?frame=N``                       review: the ``frames.jsonl`` record of frame N (scrubbing)
``/api/evidence/{identity}``                  live: the evidence behind its latest decision (per-cue LLRs)
``/api/evidence?track=N``                     live: the same for a live track
``POST /api/identity/{id}/name|merge|forget``  live: JSON ``{"name": ...}`` / ``{"other": ...}`` / ``{}``
``POST /api/identity/{id}/split``             live: JSON ``{"rows": [visit rows]}``: those visits become a new identity
============================================  ================================================================

With a token every request needs it (``?token=`` or the ``X-Reid-Token`` header), else 401. Actions also
need ``Content-Type: application/json`` (a cross-site form cannot send it) and are applied by the
pipeline thread between frames (:class:`~reidstream.pipeline.web.state.WebState`).
"""

from __future__ import annotations

import hmac
import queue
from importlib import resources
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Iterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from reidstream.pipeline.web.state import Action, WebState

STATIC = {"app.js": "application/javascript", "style.css": "text/css"}
ACTION_TIMEOUT_S = 15.0
BOUNDARY = "reidframe"


def _static(name: str) -> bytes:
    return resources.files("reidstream.pipeline.web").joinpath("static", name).read_bytes()


class LiveView:
    """What the page reads from a running pipeline (a :class:`WebState`)."""

    mode = "live"

    def __init__(self, state: WebState) -> None:
        self.state = state

    def touch(self) -> None:
        self.state.last_request = self.state.clock()

    def info(self) -> dict:
        return {"mode": self.mode, "privacy": self.state.privacy, "actions": not self.state.closed,
                "cameras": sorted(self.state.cameras)}

    def cameras(self) -> dict:
        with self.state.lock:
            return {cid: {"frame": c.frame, "fps": round(c.fps, 2), "latency_ms": c.latency_ms, "people": c.people,
                          "in_view": c.in_view, "read": c.read, "dropped": c.dropped, "processed": c.processed,
                          "encoded": c.encoded, "clients": len(c.clients)} for cid, c in self.state.cameras.items()}

    def identities(self) -> list[dict]:
        with self.state.lock:
            return [dict(row) for row in self.state.gallery]

    def events(self, since: int, identity: str | None, camera: str | None, limit: int) -> list[dict]:
        return self.state.events_since(since, identity, camera, limit)

    def thumb(self, identity: str, modality: str) -> bytes | None:
        return self.state.thumb(identity, modality)

    def latest(self, camera: str) -> bytes | None:
        with self.state.lock:
            c = self.state.cameras.get(camera)
            return c.jpeg if c is not None and c.jpeg else None

    def frames(self, camera: str) -> Iterator[bytes] | None:
        if camera not in self.state.cameras:
            return None
        q = self.state.subscribe(camera)

        def gen() -> Iterator[bytes]:
            try:
                while not self.state.closed:
                    try:
                        jpeg = q.get(timeout=1.0)
                    except queue.Empty:
                        continue
                    yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                           .encode() + jpeg + b"\r\n")
            finally:
                self.state.unsubscribe(camera, q)

        return gen()

    def submit(self, action: Action) -> dict:
        return self.state.submit(action).result(timeout=ACTION_TIMEOUT_S)

    def frame_record(self, index: int) -> dict | None:
        return None

    def evidence(self, identity: str | None = None, track: int | None = None) -> dict | None:
        return self.state.explanation(identity, track)


def create_app(view, token: str | None = None):
    """The FastAPI app of the browser view.

    Args:
        view: :class:`LiveView` (a running pipeline) or :class:`~reidstream.pipeline.tools.review.RunView`
            (a finished run's output directory; read-only).
        token: Required on every request when set.
    """
    app = FastAPI(title="reid-stream", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if token is not None:
            given = request.query_params.get("token") or request.headers.get("x-reid-token") or ""
            if not hmac.compare_digest(given.encode(), token.encode()):
                return JSONResponse({"error": "missing or wrong token (?token= or X-Reid-Token header)"}, 401)
        if request.method not in ("GET", "HEAD", "POST"):
            return JSONResponse({"error": f"method {request.method} not allowed"}, 405)
        if request.method == "POST" and not request.headers.get("content-type", "").startswith("application/json"):
            return JSONResponse({"error": "actions need Content-Type: application/json"}, 415)
        touch = getattr(view, "touch", None)
        if touch is not None:
            touch()
        return await call_next(request)

    @app.get("/")
    def index() -> Response:
        return Response(_static("index.html"), media_type="text/html", headers={"Cache-Control": "no-store"})

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            return JSONResponse({"error": "not found"}, 404)
        return Response(_static(name), media_type=STATIC[name])

    @app.get("/api/info")
    def info() -> dict:
        return view.info()

    @app.get("/api/cameras")
    def cameras() -> dict:
        return view.cameras()

    @app.get("/api/camera/{camera}/stream.mjpg")
    def stream(camera: str) -> Response:
        frames = view.frames(camera)
        if frames is None:
            return JSONResponse({"error": f"no live camera {camera!r}"}, 404)
        return StreamingResponse(frames, media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                                 headers={"Cache-Control": "no-store"})

    @app.get("/api/camera/{camera}/frame.jpg")
    def latest(camera: str) -> Response:
        jpeg = view.latest(camera)
        if jpeg is None:
            return JSONResponse({"error": f"no frame of camera {camera!r} yet"}, 404)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/api/identities")
    def identities() -> list:
        return view.identities()

    @app.get("/api/thumb/{identity}/{modality}")
    def thumb(identity: str, modality: str) -> Response:
        jpeg = view.thumb(identity, modality)
        if jpeg is None:
            return JSONResponse({"error": "not found"}, 404)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/api/events")
    def events(since: int = 0, identity: str = "", camera: str = "", limit: int = 500) -> list:
        return view.events(since, identity or None, camera or None, max(1, min(limit, 5000)))

    @app.get("/api/frames")
    def frame_record(frame: int) -> Response:
        rec = view.frame_record(frame)
        if rec is None:
            return JSONResponse({"error": f"no record of frame {frame}"}, 404)
        return JSONResponse(rec)

    @app.get("/api/evidence/{identity}")
    def evidence(identity: str) -> Response:
        return explained(identity=identity)

    @app.get("/api/evidence")
    def track_evidence(track: int) -> Response:
        return explained(track=track)

    def explained(**key) -> Response:
        get = getattr(view, "evidence", None)
        if get is None:
            return JSONResponse({"error": "a finished run keeps no decision evidence"}, 404)
        found = get(**key)
        if found is None:
            what = f"identity {key['identity']!r}" if "identity" in key else f"live track {key['track']}"
            return JSONResponse({"error": f"no decision of {what} is known (pending, ended, or not decided since "
                                          f"the run started)"}, 404)
        return JSONResponse(found)

    async def act(request: Request, action: Action) -> Response:
        if view.mode != "live":
            return JSONResponse({"error": "a finished run is read-only"}, 405)
        try:
            done = await run_in_threadpool(view.submit, action)
        except KeyError as e:
            return JSONResponse({"error": str(e.args[0]) if e.args else "unknown identity"}, 404)
        except ValueError as e:
            return JSONResponse({"error": str(e)}, 400)
        except FutureTimeout:
            return JSONResponse({"error": "the pipeline did not take the action in time (no frames?)"}, 503)
        except RuntimeError as e:
            return JSONResponse({"error": str(e)}, 409)
        return JSONResponse({"ok": True, **done})

    async def body(request: Request) -> dict:
        try:
            data = await request.json()
        except ValueError:
            data = None
        return data if isinstance(data, dict) else {}

    @app.post("/api/identity/{identity}/name")
    async def name(identity: str, request: Request) -> Response:
        new = (await body(request)).get("name")
        if not isinstance(new, str):
            return JSONResponse({"error": 'expected JSON {"name": "..."}'}, 400)
        return await act(request, Action("rename", identity, name=new))

    @app.post("/api/identity/{identity}/merge")
    async def merge(identity: str, request: Request) -> Response:
        other = (await body(request)).get("other")
        if not isinstance(other, str):
            return JSONResponse({"error": 'expected JSON {"other": "<identity merged into this one>"}'}, 400)
        return await act(request, Action("merge", identity, other=other))

    @app.post("/api/identity/{identity}/split")
    async def split(identity: str, request: Request) -> Response:
        rows = (await body(request)).get("rows")
        if not isinstance(rows, list) or not rows or not all(isinstance(r, int) and not isinstance(r, bool)
                                                             for r in rows):
            return JSONResponse({"error": 'expected JSON {"rows": [visit row, ...]} (the rows of /api/identities\' '
                                          'visit_list)'}, 400)
        return await act(request, Action("split", identity, rows=tuple(rows)))

    @app.post("/api/identity/{identity}/forget")
    async def forget(identity: str, request: Request) -> Response:
        return await act(request, Action("forget", identity))

    return app


__all__ = ["LiveView", "create_app"]
