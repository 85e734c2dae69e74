"""``reid-stream --site FILE`` (or repeated ``--camera`` / ``--replay``): several cameras, one gallery.

A site config is a stream config (``configs/stream/*.yaml`` keys: bundle, gallery, embed, output, ...) shared
by every camera, plus ``cameras``: each with an ``id`` and its own ``source`` (and optionally its own
``detector``, ``tracker``, ``body`` and ``buffer``). See ``configs/site/*.yaml`` and docs/pipeline.md.

Every camera gets its own reader thread, detector state and tracker; the crops of all cameras are
embedded together; one gallery decides identities for all (:mod:`reidstream.pipeline.multicam`). A camera
that fails stops alone. Outputs name their camera: ``events.jsonl`` and ``frames.jsonl`` carry it on every
line, MOT files and videos are written per camera (``tracks-<id>.txt``, ``gt-<id>.txt``,
``annotated-<id>.mp4``) and ``summary.json`` has a ``cameras`` section.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from reidstream.pipeline.app.config import BufferConfig, DetectorConfig, SourceConfig, StreamConfig, TrackerConfig
from reidstream.pipeline.body.measure import BodyConfig
from reidstream.pipeline.config import ConfigModel

SITE_FILE = "site.json"
"""A recorded site (``reid-synth site``): the directory lists its cameras in this file."""
CAMERA_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
PER_CAMERA = ("source", "buffer", "detector", "tracker", "body")
"""Stream config sections a camera of a site may set for itself."""


class CameraConfig(ConfigModel):
    """One camera of a site.

    Attributes:
        id: The camera's id: in every output (events, frames, MOT file names) and in its frames.
        source: Where its frames come from (as ``source`` of a stream config).
        buffer: Its reader buffer (None: the site's).
        detector: Its person detector (None: the site's).
        tracker: Its tracker settings (None: the site's).
        body: Its body measures (None: the site's).
    """

    id: Annotated[str, Field(pattern=CAMERA_ID)]
    source: SourceConfig
    buffer: BufferConfig | None = None
    detector: DetectorConfig | None = None
    tracker: TrackerConfig | None = None
    body: BodyConfig | None = None


class SiteConfig(StreamConfig):
    """A stream config shared by the site's cameras, plus the cameras (see the module docstring)."""

    cameras: Annotated[list[CameraConfig], Field(min_length=1, max_length=64)]

    @model_validator(mode="after")
    def _cameras(self) -> "SiteConfig":
        ids = [c.id for c in self.cameras]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"cameras: expected distinct camera ids, got {', '.join(twice)} more than once")
        if "source" in self.model_fields_set:
            raise ValueError("source: a site config gives each camera its own source (cameras[i].source); "
                             "remove the top-level source")
        return self

    def camera(self, camera_id: str) -> StreamConfig:
        """The stream config of one camera: the site's, with the camera's own sections."""
        cam = next((c for c in self.cameras if c.id == camera_id), None)
        if cam is None:
            raise KeyError(f"no camera {camera_id!r} in this site (cameras: {', '.join(c.id for c in self.cameras)})")
        data = self.model_dump(exclude={"cameras"})
        for key in PER_CAMERA:
            own = getattr(cam, key)
            if own is not None:
                data[key] = own.model_dump()
        return StreamConfig.model_validate(data)


def recorded_site_cameras(path: Path) -> list[dict]:
    """The cameras of a recorded site directory (its ``site.json``): ``{"id", "source"}`` per camera.

    Raises:
        ValueError: ``site.json`` is unreadable or lacks ``cameras`` (naming the file and what was expected).
    """
    file = Path(path) / SITE_FILE
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{file}: cannot read the site description ({e})") from None
    cams = meta.get("cameras") if isinstance(meta, dict) else None
    if not isinstance(cams, list) or not cams:
        raise ValueError(f"{file}: expected a 'cameras' list of {{id, dir}} entries")
    out = []
    for i, c in enumerate(cams):
        if not isinstance(c, dict) or "id" not in c:
            raise ValueError(f"{file}: cameras[{i}]: expected an entry with 'id' and 'dir'")
        sub = Path(path) / str(c.get("dir", c["id"]))
        out.append({"id": str(c["id"]), "source": {"camera": "recording", "uri": str(sub)}})
    return out


def cameras_from_args(cameras: list[str], replays: list[Path]) -> list[dict]:
    """Site cameras from repeated ``--camera KIND`` and ``--replay PATH`` options (a recorded site directory
    given to ``--replay`` brings all its cameras). Ids: ``<kind><n>`` for cameras, the recording's name for
    replays (made unique with a suffix)."""
    from reidstream.pipeline.app.sources import PLAYBACK_SUFFIXES

    out: list[dict] = []
    for n, kind in enumerate(cameras):
        out.append({"id": f"{kind}{n}", "source": {"camera": kind}})
    for path in replays:
        if (path / SITE_FILE).is_file():
            out += recorded_site_cameras(path)
            continue
        kind = "recording" if path.is_dir() else PLAYBACK_SUFFIXES.get(path.suffix.lower())
        if kind is None:
            raise ValueError(f"--replay {path}: expected a recording directory, a recorded site (with "
                             f"{SITE_FILE}) or a {', '.join(sorted(PLAYBACK_SUFFIXES))} file")
        out.append({"id": path.stem or "replay", "source": {"camera": kind, "uri": str(path)}})
    seen: dict[str, int] = {}
    for c in out:
        base = c["id"] = "".join(ch if ch.isalnum() or ch in "_.-" else "_" for ch in c["id"]) or "camera"
        if base in seen:
            seen[base] += 1
            c["id"] = f"{base}-{seen[base]}"
        else:
            seen[base] = 0
    return out


__all__ = ["CameraConfig", "SITE_FILE", "SiteConfig", "cameras_from_args", "recorded_site_cameras"]
