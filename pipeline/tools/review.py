"""``reid-review RUN_DIR --serve HOST:PORT``: the browser view over a finished run's output directory.

Read-only: the identities of ``gallery.npz`` (with ``gallery.journal`` replayed on top, as ``--resume``
would), their visits and the cameras their events name, the events of ``events.jsonl`` (filterable by
identity and camera), the run's frames/s and latency from ``summary.json``, and each frame's record of
``frames.jsonl`` (scrubbing by frame index). No thumbnails: a run keeps no images of people.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path

RUN_FILES = ("events.jsonl", "gallery.npz", "gallery.journal", "frames.jsonl", "summary.json")


def _jsonl(path: Path) -> list[dict]:
    """The JSON objects of a JSON-lines file; a torn or foreign line is skipped with a warning naming it."""
    out = []
    if not path.is_file():
        return out
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                print(f"reid-review: warning: {path}:{n}: not a JSON line; skipped", file=sys.stderr)
                continue
            if isinstance(obj, dict):
                out.append(obj)
    return out


class RunView:
    """What the page reads from a finished run (see the module docstring).

    Args:
        run: The run's output directory (``reid-stream --output``).

    Raises:
        FileNotFoundError: ``run`` is not a directory or holds none of a run's outputs.
        ValueError: ``gallery.npz`` or the journal is corrupt (naming the file).
    """

    mode = "review"

    def __init__(self, run: str | os.PathLike) -> None:
        from reidstream.pipeline.gallery import Gallery, load_gallery
        from reidstream.pipeline.gallery.journal import journal_path, replay
        from reidstream.pipeline.web.state import WebState

        self.run = Path(run)
        if not self.run.is_dir():
            raise FileNotFoundError(f"{self.run}: not a directory (expected a reid-stream --output directory)")
        if not any((self.run / f).is_file() for f in RUN_FILES):
            raise FileNotFoundError(f"{self.run}: none of a run's outputs ({', '.join(RUN_FILES)})")
        npz = self.run / "gallery.npz"
        gallery = load_gallery(npz) if npz.is_file() else Gallery()
        if journal_path(npz).is_file():
            replay(gallery, journal_path(npz), on_warning=lambda m: print(f"reid-review: warning: {m}", file=sys.stderr))
        self._events = [{"seq": i + 1, **e} for i, e in enumerate(_jsonl(self.run / "events.jsonl"))]
        self._frames: dict[int, list[dict]] = {}
        for rec in _jsonl(self.run / "frames.jsonl"):
            if isinstance(rec.get("frame"), int):
                self._frames.setdefault(rec["frame"], []).append(rec)
        summary = self.run / "summary.json"
        try:
            self.summary = json.loads(summary.read_text(encoding="utf-8")) if summary.is_file() else {}
        except json.JSONDecodeError as e:
            raise ValueError(f"{summary}: not valid JSON: {e}") from None
        state = WebState()
        for e in self._events:
            if e.get("identity") and e.get("camera"):
                state.seen_cameras.setdefault(e["identity"], set()).add(e["camera"])
        state.snapshot(gallery)
        self._identities = state.gallery
        self._lock = threading.Lock()

    def info(self) -> dict:
        frames = [min(self._frames), max(self._frames)] if self._frames else None
        cams = sorted({e.get("camera") for e in self._events if e.get("camera")})
        return {"mode": self.mode, "run": str(self.run), "privacy": False, "actions": False, "cameras": cams,
                "frames": frames}

    def cameras(self) -> dict:
        s = self.summary
        per = s.get("cameras") or ({"": s} if s else {})
        out = {}
        for cid, c in per.items():
            lat = {k: round(float(v.get("mean", 0.0)), 2) for k, v in (c.get("latency_ms") or s.get("latency_ms")
                                                                        or {}).items() if isinstance(v, dict)}
            out[cid or "run"] = {"frame": c.get("frames_processed", c.get("frames", 0)),
                                 "fps": float(c.get("fps", s.get("fps", 0.0)) or 0.0), "latency_ms": lat,
                                 "people": c.get("detections", 0), "read": c.get("frames_read"),
                                 "dropped": c.get("frames_dropped") or {}}
        return out

    def identities(self) -> list[dict]:
        return [dict(r) for r in self._identities]

    def events(self, since: int, identity: str | None, camera: str | None, limit: int) -> list[dict]:
        out = [e for e in self._events if e["seq"] > since and (not identity or e.get("identity") == identity)
               and (not camera or e.get("camera") == camera)]
        return out[-limit:]

    def thumb(self, identity: str, modality: str) -> bytes | None:
        return None

    def latest(self, camera: str) -> bytes | None:
        return None

    def frames(self, camera: str):
        return None

    def frame_record(self, index: int) -> dict | None:
        recs = self._frames.get(int(index))
        return None if recs is None else {"frame": int(index), "records": recs}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="reid-review", description="Browse a finished reid-stream run (its --output "
                                "directory) in a web browser: identities, visits, events, frames.")
    p.add_argument("run", type=Path, help="the run's output directory (events.jsonl, gallery.npz, frames.jsonl, ...)")
    p.add_argument("--serve", metavar="HOST:PORT", default="127.0.0.1:8787",
                   help="address to serve on (default 127.0.0.1:8787; a bare port binds 127.0.0.1; another host "
                   "needs --token)")
    p.add_argument("--token", help="access token (default: $REID_STREAM_TOKEN); required beyond loopback")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``reid-review``; serves until Ctrl-C or SIGTERM."""
    import signal

    args = parser().parse_args(argv)
    from reidstream.pipeline.web.server import TOKEN_ENV, WebServer, WebServerError

    token = args.token or os.environ.get(TOKEN_ENV) or None
    try:
        from reidstream.pipeline.web.app import create_app

        view = RunView(args.run)
        server = WebServer(create_app(view, token), args.serve, token)
    except (FileNotFoundError, ValueError, WebServerError) as e:
        print(f"reid-review: error: {e}", file=sys.stderr)
        return 2
    print(f"reid-review: {args.run}: {len(view.identities())} identities, {len(view._events)} events; serving on "
          f"{server.url}", file=sys.stderr, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
