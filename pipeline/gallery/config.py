"""Settings of the gallery (section ``gallery`` of a pipeline config)."""

from __future__ import annotations

from pydantic import Field

from reidstream.pipeline.config import ConfigModel


class GalleryConfig(ConfigModel):
    """Gallery settings (section ``gallery`` of a pipeline config)."""

    threshold: float | None = None
    """Fused LLR above which a track joins its best identity; None: the bundle calibration's (false-merge rate)."""
    pending_s: float = Field(1.0, ge=0.0)
    """Seconds of evidence a track collects before it takes or creates an identity."""
    min_frames: int = Field(3, ge=1)
    """Fewest frames behind any decision."""
    decisive_margin: float = Field(6.0, ge=0.0)
    """Decide before ``pending_s`` once the best identity is this far above the threshold."""
    undecided_margin: float = Field(6.0, ge=0.0)
    """At ``pending_s``, a best identity within this margin below the threshold keeps the track pending for
    more evidence (up to ``max_pending_s``) instead of starting a new identity. 6 (dark threshold about 4.9):
    evidence that is neutral or better (fused LLR above about -1) waits: a return seen at 4-5 m in the dark
    often scores about 0 in its first second and enough later."""
    min_new_s: float = Field(1.0, ge=0.0)
    """A track that leaves the view while pending after less than this only joins an identity (if its evidence
    passes the threshold); it never founds a new one (its frames stay without identity). Tracks still in view
    when the stream ends are decided as they are."""
    min_coverage: float = Field(0.5, ge=0.0, le=1.0)
    """Share of the frames since it started that a track must be detected in to found a new identity: a person
    seen in flashes (at the far end of the depth range) only joins one, or stays pending for more frames."""
    handover_s: float = Field(1.0, ge=0.0)
    """Two tracks seen at the same time are never one identity, but a track that began before another one and
    was last seen less than this after it began (and is not in view now) is a handover, not a second person:
    the tracker started a new track on someone whose old track lingered a few frames, often drifting onto
    someone nearby. Such a visit does not bar its identity from the new track; 0: every overlap does."""
    max_pending_s: float = Field(3.0, ge=0.0)
    """Longest a track stays pending; then it is decided on what it has."""
    recheck_s: float = Field(1.0, gt=0.0)
    """How often a decided track re-checks its identity."""
    switch_after: int = Field(3, ge=1)
    """Re-checks in a row with contrary evidence before a track switches or splits."""
    switch_margin: float = Field(3.0, ge=0.0)
    """How much better another identity must be (or how far below 0 the own one) to count as contrary."""
    cut_after: int = Field(2, ge=0)
    """Re-check windows in a row that contradict the rest of their track before the track is cut into a new
    pending track (the tracker moved it onto another person; see :mod:`~reidstream.pipeline.gallery.drift`);
    0: never cut."""
    cut_margin: float = Field(3.0, ge=0.0)
    """A window contradicts its track when its fused LLR against the rest of the track is below ``-cut_margin``."""
    cut_doubt: float | None = 0.0
    """A re-check window whose fused LLR against the rest of its track is below this (but not below
    ``-cut_margin``) is *doubtful*: it is not folded into the track's anchor, and from it on the track's evidence
    is tested as one part at each re-check, until it scores at least ``cut_doubt`` again (then it is folded in)
    or below ``-cut_margin`` (then it counts towards a cut, which starts where the doubt began). A weak contrary
    signal that persists (a similar-looking person in the dark) thus adds up instead of being absorbed one
    window at a time. None: every window that is not contrary is folded in."""
    lost_s: float = Field(2.0, gt=0.0)
    """A track unseen this long has ended."""
    max_age_s: float = Field(1800.0, gt=0.0)
    """Visits that ended longer ago expire (enrolled identities excepted)."""
    max_visits_per_identity: int = Field(32, ge=1, le=1024)
    """Stored visits per identity; the oldest go first (at most 1024: each visit holds its own prototypes)."""
    max_identities: int = Field(1000, ge=1, le=1_000_000)
    """Past this the least recently seen unpinned identity is evicted (at most a million: each holds visits)."""
    url: str | None = None
    """A gallery shared by several reid-stream processes through Redis, ``redis://host:port/db`` (options
    ``?prefix=reid&worker=NAME``; see :mod:`~reidstream.pipeline.gallery.shared`); None: the in-process gallery."""


__all__ = ["GalleryConfig"]
