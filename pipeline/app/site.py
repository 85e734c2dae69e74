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

from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from reidstream.pipeline.app.config import BufferConfig, DetectorConfig, SourceConfig, StreamConfig, TrackerConfig
from reidstream.pipeline.body.measure import BodyConfig
from reidstream.pipeline.config import ConfigModel

SITE_FILE = "site.json"
"""A recorded site (``reid-synth site``): the directory lists its cameras in this file (read by
:func:`~reidstream.pipeline.sim.site.read_site_manifest`)."""
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


class LinkConfig(ConfigModel):
    """Two cameras a person can walk between without being seen by another camera.

    Attributes:
        between: The two camera ids.
        transit_s: Shortest and longest time (s) from leaving one camera's view to entering the other's.
    """

    between: Annotated[list[Annotated[str, Field(pattern=CAMERA_ID)]], Field(min_length=2, max_length=2)]
    transit_s: Annotated[list[Annotated[float, Field(ge=0.0, le=86400.0)]], Field(min_length=2, max_length=2)]

    @model_validator(mode="after")
    def _order(self) -> "LinkConfig":
        if self.between[0] == self.between[1]:
            raise ValueError(f"between: a link joins two different cameras, got {self.between}")
        if self.transit_s[0] > self.transit_s[1]:
            raise ValueError(f"transit_s: expected [shortest, longest], got {self.transit_s}")
        return self


class TransitConfig(ConfigModel):
    """How much a transit through a declared link counts (:class:`~reidstream.pipeline.gallery.topology.Topology`).

    Attributes:
        llr: Log prior odds added to an identity last seen in a linked camera within the transit window.
        too_soon_llr: Added to one last seen there less than the shortest transit ago.
        slack_s: Tolerance on both ends of the window.
    """

    llr: float = Field(3.0, ge=0.0, le=20.0)
    too_soon_llr: float = Field(-3.0, ge=-20.0, le=0.0)
    slack_s: float = Field(1.0, ge=0.0, le=60.0)


class SiteConfig(StreamConfig):
    """A stream config shared by the site's cameras, plus the cameras and the links between them (see the
    module docstring)."""

    cameras: Annotated[list[CameraConfig], Field(min_length=1, max_length=64)]
    run: list[str] | None = None
    """The cameras this process runs (None: all); the others are still known for the links, so one site file
    serves every worker of a site whose processes share a gallery (``--site-camera``)."""
    links: list[LinkConfig] = Field(default_factory=list)
    transit: TransitConfig = TransitConfig()

    @model_validator(mode="after")
    def _cameras(self) -> "SiteConfig":
        ids = [c.id for c in self.cameras]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"cameras: expected distinct camera ids, got {', '.join(twice)} more than once")
        unknown_run = [c for c in (self.run or []) if c not in ids]
        if unknown_run or self.run == []:
            raise ValueError(f"run: expected some of the cameras ({', '.join(ids)}), got {self.run}")
        for i, link in enumerate(self.links):
            unknown = [c for c in link.between if c not in ids]
            if unknown:
                raise ValueError(f"links[{i}].between: {', '.join(unknown)} is not one of the cameras "
                                 f"({', '.join(ids)})")
        if "source" in self.model_fields_set:
            raise ValueError("source: a site config gives each camera its own source (cameras[i].source); "
                             "remove the top-level source")
        return self

    @property
    def running(self) -> list[str]:
        """The ids of the cameras this process runs (``run``, or all), in the site's order."""
        return [c.id for c in self.cameras if self.run is None or c.id in self.run]

    def topology(self):
        """The site's :class:`~reidstream.pipeline.gallery.topology.Topology` (None without links)."""
        from reidstream.pipeline.gallery.topology import Topology

        if not self.links:
            return None
        t = self.transit
        return Topology({(lk.between[0], lk.between[1]): (lk.transit_s[0], lk.transit_s[1]) for lk in self.links},
                        llr=t.llr, too_soon_llr=t.too_soon_llr, slack_s=t.slack_s)

    def camera(self, camera_id: str) -> StreamConfig:
        """The stream config of one camera: the site's, with the camera's own sections."""
        cam = next((c for c in self.cameras if c.id == camera_id), None)
        if cam is None:
            raise KeyError(f"no camera {camera_id!r} in this site (cameras: {', '.join(c.id for c in self.cameras)})")
        data = self.model_dump(exclude={"cameras", "links", "transit", "run"})
        for key in PER_CAMERA:
            own = getattr(cam, key)
            if own is not None:
                data[key] = own.model_dump()
        return StreamConfig.model_validate(data)


def recorded_site(path: Path) -> tuple[list[dict], list[dict]]:
    """The cameras and links of a recorded site directory (its ``site.json``, read and checked by
    :func:`~reidstream.pipeline.sim.site.read_site_manifest`): ``{"id", "source"}`` per camera,
    ``{"between", "transit_s"}`` per link.

    Raises:
        FileNotFoundError / ValueError: ``site.json`` or a camera's recording is missing or malformed (naming the
            file and key).
    """
    from reidstream.pipeline.sim.site import read_site_manifest

    site = read_site_manifest(path)
    links = list(site.links)
    if not all(isinstance(lk, dict) and {"between", "transit_s"} <= set(lk) for lk in links):
        raise ValueError(f"{Path(path) / SITE_FILE}: expected 'links' to be a list of {{between, transit_s}} "
                         f"entries, got {links}")
    cams = [{"id": c.camera_id, "source": {"camera": "recording", "uri": str(c.path)}} for c in site.cameras]
    return cams, [{"between": list(lk["between"]), "transit_s": list(lk["transit_s"])} for lk in links]


def cameras_from_args(cameras: list[str], replays: list[Path]) -> tuple[list[dict], list[dict]]:
    """Site cameras (and links) from repeated ``--camera KIND`` and ``--replay PATH`` options (a recorded site
    directory given to ``--replay`` brings all its cameras and links). Ids: ``<kind><n>`` for cameras, the
    recording's name for replays (made unique with a suffix, which a recorded site's links must not need)."""
    from reidstream.pipeline.app.sources import PLAYBACK_SUFFIXES

    out: list[dict] = []
    links: list[dict] = []
    for n, kind in enumerate(cameras):
        out.append({"id": f"{kind}{n}", "source": {"camera": kind}})
    for path in replays:
        if (path / SITE_FILE).is_file():
            cams, more = recorded_site(path)
            out += cams
            links += more
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
    return out, links


__all__ = ["CameraConfig", "LinkConfig", "SITE_FILE", "SiteConfig", "TransitConfig", "cameras_from_args",
           "recorded_site"]
