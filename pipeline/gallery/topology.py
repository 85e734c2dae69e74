"""The site's camera topology as evidence: which cameras a person can walk between, and how long it takes.

A person who leaves camera A's view shows up in a linked camera B some seconds later (the transit time
through the door or corridor between them); an identity last seen in A is therefore a far likelier owner
of a track that starts in B within that window than an identity last seen anywhere else, and an unlikely
one when the track starts sooner than anyone could walk the link. :class:`Topology` turns that into a
log prior-odds term added to the fused log-likelihood ratio of each (track, identity) pair
(docs/identity.md, "Cameras and transit times"):

    prior(track in B starting at t, identity last seen in A at s) =
        llr           if A, B are linked with transit [lo, hi] and lo - slack <= t - s <= hi + slack
        too_soon_llr  if A, B are linked and t - s < lo - slack
        0             otherwise (same camera, unlinked cameras, or longer than the slowest transit)

The terms are prior odds, not calibrated likelihood ratios: they say how much likelier a hand-over through
a declared link is than a stranger, and are set in the site config (``transit``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class Topology:
    """Links between cameras and the evidence a transit through one gives.

    Args:
        links: ``(camera a, camera b) -> (shortest, longest transit in seconds)``; links are two-way.
        llr: Added to an identity last seen in a linked camera within the transit window.
        too_soon_llr: Added to one last seen in a linked camera less than the shortest transit ago.
        slack_s: Seconds of tolerance on both ends of the window (when a track starts and ends is known
            only to the detector's frame).
    """

    links: Mapping[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    llr: float = 3.0
    too_soon_llr: float = -3.0
    slack_s: float = 1.0

    def __post_init__(self) -> None:
        both: dict[tuple[str, str], tuple[float, float]] = {}
        for (a, b), (lo, hi) in dict(self.links).items():
            if a == b:
                raise ValueError(f"Topology: link {a!r} -> {b!r}: a link joins two different cameras")
            if not 0.0 <= float(lo) <= float(hi):
                raise ValueError(f"Topology: link {a!r} - {b!r}: expected 0 <= shortest <= longest transit, got "
                                 f"[{lo}, {hi}]")
            both[(a, b)] = both[(b, a)] = (float(lo), float(hi))
        if self.slack_s < 0:
            raise ValueError(f"Topology: expected slack_s >= 0, got {self.slack_s}")
        object.__setattr__(self, "links", both)

    def transit(self, a: str | None, b: str | None) -> tuple[float, float] | None:
        """The transit window from camera ``a`` to ``b`` (None: not linked)."""
        return self.links.get((a, b)) if a is not None and b is not None else None

    def prior(self, track_cameras: Sequence[str | None], first_seen: Sequence[float],
              slot_cameras: Sequence[str | None], last_seen: np.ndarray) -> np.ndarray:
        """The prior term of every (track, identity slot) pair (see the module docstring).

        Args:
            track_cameras: Camera of each track (None: unknown, no prior).
            first_seen: When each track started (s).
            slot_cameras: Camera each identity slot was last seen in (None: unknown or empty slot).
            last_seen: When each identity slot was last seen (s).

        Returns:
            ``len(track_cameras) x len(slot_cameras)`` float64.
        """
        out = np.zeros((len(track_cameras), len(slot_cameras)))
        if not self.links or not len(slot_cameras):
            return out
        cams = np.array([c if c is not None else "" for c in slot_cameras], dtype=object)
        last = np.asarray(last_seen, np.float64)[: len(slot_cameras)]
        for t, (cam, start) in enumerate(zip(track_cameras, first_seen)):
            if cam is None:
                continue
            for a in {c for c in cams.tolist() if c and c != cam}:
                window = self.transit(a, cam)
                if window is None:
                    continue
                gap = float(start) - last
                here = cams == a
                lo, hi = window[0] - self.slack_s, window[1] + self.slack_s
                out[t, here & (gap >= lo) & (gap <= hi)] = self.llr
                out[t, here & (gap < lo)] = self.too_soon_llr
        return out


__all__ = ["Topology"]
