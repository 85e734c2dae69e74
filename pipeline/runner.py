"""Wires the stages of one frame: detector -> body measures -> tracker -> crops -> embedders + cues -> gallery.

:class:`Pipeline` turns one frame into its :class:`~reidstream.pipeline.result.FrameResult`; the run loop
that feeds it from a source and hands its results to the sinks is :func:`reidstream.pipeline.loop.run`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from reidstream.pipeline.crops import cut_crops, valid_boxes
from reidstream.pipeline.embed.stage import EmbedStage
from reidstream.pipeline.gallery import Gallery
from reidstream.pipeline.gallery.cues import colour_histograms, frame_cues, ir_histograms
from reidstream.pipeline.result import Event, FrameResult
from reidstream.pipeline.sources.base import AnnotatedFrame
from reidstream.pipeline.types import Alignment, Crops, Detections, Embeddings, Match

TRACK_SPAN = 100_000_000
"""Track ids of one camera stay below this; a site's camera ``k`` has ``track_base = k * TRACK_SPAN``."""
CUT_BASE = 50_000_000
"""A track the gallery cut (the tracker carried it onto another person) goes on under a new id from here up."""


@dataclass(frozen=True)
class Prepared:
    """A frame after detection, tracking and cropping, waiting for its embeddings (:meth:`Pipeline.prepare`)."""

    item: AnnotatedFrame
    detections: Detections
    crops: Crops
    cues: object
    lit: bool | None
    latency: dict[str, float]


@dataclass
class Pipeline:
    """Per-frame processing, from one frame to its :class:`FrameResult`.

    Args:
        detector: ``detect(frame) -> Detections`` (``last_used`` names the detector that ran, if it has one;
            ``floor`` is its floor plane, if it has one).
        tracker: ``update(detections, timestamp, measures=...) -> Detections`` with track ids, setting
            ``last_index`` (the input rows it kept); None: untracked, every detection a new track.
        embed: The embedding stage.
        gallery: The cross-modal gallery.
        min_box_height: Detections shorter than this are dropped before embedding.
        body: Measures people in depth (:class:`~reidstream.pipeline.body.measure.BodyMeter`); None: no
            body measures (and the tracker associates on image boxes only).
        track_appearance: Give the tracker each detection's appearance: ``colour`` statistics on lit frames
            with colour, ``colour+ir`` also infrared statistics in the dark; "" none.
        embed_every: Embed each track on one frame in this many (staggered across tracks by track id; a
            new track at once). Its cues (quality, body measures, colour statistics) and its match are
            still given on every frame; consecutive crops of one person carry nearly the same embedding.
        track_base: Added to this pipeline's track ids where the gallery sees them (a camera of a site,
            :class:`~reidstream.pipeline.multicam.SitePipeline`, which also routes ``resolved_elsewhere``:
            this camera's tracks the gallery decided during another camera's frame).

    A track the gallery cuts (``gallery.last_cut``: the tracker carried it from one person onto another, see
    :mod:`~reidstream.pipeline.gallery.drift`) continues in the results under a new track id (from
    :data:`CUT_BASE`), pending again: a track in the outputs is one person as far as the gallery can tell.
    """

    detector: object
    tracker: object | None
    embed: EmbedStage
    gallery: Gallery
    min_box_height: int = 48
    body: object | None = None
    embed_every: int = 1
    track_appearance: str = ""
    _appearance_kind: str | None = None
    _embedded: dict[int, int] = field(default_factory=dict)
    _track_identity: dict[int, str] = field(default_factory=dict)
    _first_frame: dict[int, int] = field(default_factory=dict)
    track_base: int = 0
    resolved_elsewhere: dict[int, str] = field(default_factory=dict)
    _next_untracked: int = 1_000_000
    _last: tuple[str, float] | None = None
    _alias: dict[int, int] = field(default_factory=dict)  # tracker's id -> id in the results, after a cut
    _next_alias: int = CUT_BASE

    def process(self, item: AnnotatedFrame) -> FrameResult:
        """Runs every stage on one frame."""
        prepared = self.prepare(item)
        t = time.perf_counter()
        observations = self.embed(prepared.crops)
        return self.conclude(prepared, observations, embed_s=time.perf_counter() - t)

    def prepare(self, item: AnnotatedFrame) -> "Prepared":
        """The stages before embedding: detection, body measures, tracking, crops and cues."""
        frame = item.frame
        self._last = (frame.camera_id, frame.timestamp)
        t0 = time.perf_counter()
        dets = self.detector.detect(frame)
        t1 = time.perf_counter()
        measures = None
        if self.body is not None and frame.depth is not None:
            measures = self.body.measure(frame, dets, getattr(self.detector, "floor", None))
        t_body = time.perf_counter()
        # In the dark, auto-gain turns the colour image into noise: its crops would pollute the gallery.
        lit = getattr(self.detector, "colour_ok", None)
        appearance = None
        if self.tracker is not None:
            appearance = self._appearance(frame, dets, measures, lit) if self.track_appearance else None
            dets = self.tracker.update(dets, frame.timestamp, measures=measures, appearance=appearance)
            index = np.asarray(getattr(self.tracker, "last_index", np.arange(len(dets))), np.int64)
        else:
            n = len(dets)
            dets = Detections(dets.boxes, dets.scores, np.arange(self._next_untracked, self._next_untracked + n),
                              dets.modality, dets.frame_index)
            self._next_untracked += n
            index = np.arange(n)
        row_of = {int(t): int(i) for t, i in zip(dets.track_ids, index)}
        dets = valid_boxes(dets, min_size=1.0, frame=frame)
        keep = (dets.boxes[:, 3] - dets.boxes[:, 1]) >= self.min_box_height
        dets = Detections(dets.boxes[keep], dets.scores[keep], dets.track_ids[keep], dets.modality, frame.index)
        rows = np.array([row_of[int(t)] for t in dets.track_ids], np.int64)
        if measures is not None:
            measures = measures.subset(rows)
        # the colour statistics the tracker was given are the cues' own (same boxes, same depth window)
        colour = appearance[rows] if appearance is not None and self._appearance_kind == "colour" else None
        t2 = time.perf_counter()
        mods = [m for m in frame.modalities
                if m.value in self.embed.modalities and not (m.value == "rgb" and lit is False)]
        crops = cut_crops(frame, self._due(dets, frame.index), mods)
        cues = frame_cues(frame, dets, measures, lit, colour=colour)
        t3 = time.perf_counter()
        return Prepared(item, dets, crops, cues, lit, {"detect": t1 - t0, "body": t_body - t1, "track": t2 - t_body,
                                                       "crop": t3 - t2})

    def conclude(self, prepared: "Prepared", observations: list[Embeddings], embed_s: float = 0.0) -> FrameResult:
        """The stages after embedding: the gallery's decisions, the events and the frame's result.

        Args:
            prepared: What :meth:`prepare` made of the frame.
            observations: The embeddings of ``prepared.crops``.
            embed_s: Time the embedding took (for the latency report).
        """
        item, frame, dets, lit = prepared.item, prepared.item.frame, prepared.detections, prepared.lit
        t4 = time.perf_counter()
        matches, resolved = self._match(observations, frame.timestamp, prepared.cues, frame.camera_id)
        expired = list(getattr(self.gallery, "last_expired", []) or [])
        t5 = time.perf_counter()
        dets, matches, resolved, cuts = self._renamed(dets, matches, resolved)
        events = self._events(frame, dets, matches, expired)
        by_track = {m.track_id: m.identity for m in matches}
        identities = tuple(by_track.get(int(t), "") for t in dets.track_ids)
        latency = {**prepared.latency, "embed": embed_s, "gallery": t5 - t4}
        return FrameResult(frame, dets, identities, tuple(matches), tuple(events),
                           detector=str(getattr(self.detector, "last_used", getattr(self.detector, "name", ""))),
                           latency_ms={k: 1000 * v for k, v in latency.items()}, annotations=item.annotations,
                           has_ground_truth=item.has_ground_truth, lit=lit, resolved=resolved, cuts=cuts)

    def _match(self, observations: list[Embeddings], timestamp: float, cues,
               camera: str | None = None) -> tuple[list[Match], dict[int, str]]:
        """The gallery's matches of this camera's tracks, and the tracks it decided after they left. With a
        ``track_base`` (a camera of a site) the gallery sees track ids offset by it, and decisions about other
        cameras' tracks are left in ``gallery.last_resolved`` for the site to route."""
        base = self.track_base
        if base:
            observations = [Embeddings(o.vectors, o.modality, o.space, o.track_ids + base, o.normalized,
                                       o.frame_index) for o in observations]
            cues = dataclasses.replace(cues, track_ids=cues.track_ids + base)
        matches = self.gallery.match(observations, timestamp, cues, camera=camera)
        resolved = {int(t) - base: i for t, i in (getattr(self.gallery, "last_resolved", {}) or {}).items()
                    if base <= int(t) < base + TRACK_SPAN}
        if self.resolved_elsewhere:
            resolved = {**self.resolved_elsewhere, **resolved}
            self.resolved_elsewhere = {}
        if base:
            matches = [dataclasses.replace(m, track_id=m.track_id - base) for m in matches]
        return matches, resolved

    def _renamed(self, dets: Detections, matches: list[Match], resolved: dict[int, str]):
        """The frame's tracks under their ids in the results: a track cut by the gallery in this frame gets a
        new one (see the class docstring). Also returns the cuts, new id -> (id it was cut from, capture time
        from which the frames are the new track's: the gallery's ``last_cut_from``)."""
        base = self.track_base
        cuts: dict[int, tuple[int, float]] = {}
        since = getattr(self.gallery, "last_cut_from", {}) or {}
        for t in getattr(self.gallery, "last_cut", ()) or ():
            if base <= int(t) < base + TRACK_SPAN:
                local = int(t) - base
                cuts[self._next_alias] = (self._alias.get(local, local), float(since.get(t, self._last[1])))
                self._alias[local] = self._next_alias
                self._next_alias += 1
        if not self._alias:
            return dets, matches, resolved, cuts
        alias = self._alias
        ids = np.array([alias.get(int(t), int(t)) for t in dets.track_ids], np.int64)
        dets = Detections(dets.boxes, dets.scores, ids, dets.modality, dets.frame_index)
        matches = [dataclasses.replace(m, track_id=alias[m.track_id]) if m.track_id in alias else m for m in matches]
        resolved = {alias.get(int(t), int(t)): i for t, i in resolved.items()}
        if len(alias) > 4096:  # tracks long gone
            live = {int(t) for t in dets.track_ids}
            self._alias = {t: a for t, a in alias.items() if a in live}
        return dets, matches, resolved, cuts

    def _appearance(self, frame, dets: Detections, measures, lit: bool | None) -> np.ndarray | None:
        """Colour statistics of every detection for the tracker; in the dark (``track_appearance="colour+ir"``)
        infrared statistics instead; None without either. The tracker forgets the running appearance of its
        tracks when the kind changes."""
        aligned = frame.alignment is Alignment.ALIGNED_TO_COLOR
        depth = dist = None
        if measures is not None and frame.depth is not None and aligned:
            depth, dist = frame.depth_metres(), np.asarray(measures.distance, np.float64)
        kind, app = None, None
        if frame.rgb is not None and lit is not False:
            kind = "colour"
            app = colour_histograms(frame.rgb, dets.boxes, depth, dist) if len(dets) else None
        elif self.track_appearance == "colour+ir" and frame.ir is not None and aligned:
            kind = "ir"
            app = ir_histograms(frame.ir, dets.boxes, depth, dist) if len(dets) else None
        if kind != self._appearance_kind and kind is not None:
            if self._appearance_kind is not None and hasattr(self.tracker, "reset_appearance"):
                self.tracker.reset_appearance()
            self._appearance_kind = kind
        return app

    def _due(self, dets: Detections, index: int) -> Detections:
        """The tracks of ``dets`` to embed on frame ``index`` (see ``embed_every``)."""
        k = self.embed_every
        if k <= 1:
            return dets
        last = self._embedded
        due = np.array([t not in last or (index + t) % k == 0 or index - last[t] >= k or index < last[t]
                        for t in dets.track_ids.tolist()], bool)
        for t in dets.track_ids[due].tolist():
            last[t] = index
        if len(last) > 4096:  # tracks long gone
            for t in [t for t, i in last.items() if abs(index - i) > 1000]:
                del last[t]
        return Detections(dets.boxes[due], dets.scores[due], dets.track_ids[due], dets.modality, dets.frame_index)

    def finish(self) -> tuple[str, dict[int, str]]:
        """Ends the stream: the gallery decides every track still pending. Returns ``(camera id, track -> identity)``."""
        finish = getattr(self.gallery, "finish", None)
        if finish is None or self._last is None:
            return "", {}
        return self._last[0], {self.result_id(t): i for t, i in finish(self._last[1]).items()}

    def result_id(self, track: int) -> int:
        """The id under which the results carry the tracker's ``track`` (a new one after a cut)."""
        return self._alias.get(int(track), int(track))

    def _events(self, frame, dets: Detections, matches: list[Match], expired: list[str]) -> list[Event]:
        """``pending`` when a track appears without an identity yet, ``new`` when a track starts an identity,
        ``matched`` when a track is given (or switches to) a known one, ``expired`` when the gallery drops an
        identity (or merges it into another); a track that keeps its identity emits nothing. ``since`` is the
        first frame of the track: a decision covers the track's frames from there on."""
        boxes = {int(t): dets.boxes[i] for i, t in enumerate(dets.track_ids)}
        out = []
        for m in matches:
            since = self._first_frame.setdefault(m.track_id, frame.index)
            previous = self._track_identity.get(m.track_id)
            if m.pending:
                if previous is None:
                    out.append(Event("pending", frame.index, frame.timestamp, frame.camera_id, "", m.track_id,
                                     m.modality.value, "", tuple(boxes.get(m.track_id, ())), since=since))
                self._track_identity[m.track_id] = ""
                continue
            if m.is_new or previous != m.identity:
                out.append(Event("new" if m.is_new else "matched", frame.index, frame.timestamp, frame.camera_id,
                                 m.identity, m.track_id, m.modality.value, m.space,
                                 tuple(boxes.get(m.track_id, ())), float(m.distance), float(m.evidence), since))
            self._track_identity[m.track_id] = m.identity
        if len(self._first_frame) > 4096:  # tracks end; keep the memory bounded
            live = {m.track_id for m in matches}
            self._first_frame = {t: f for t, f in self._first_frame.items() if t in live}
        for identity in expired:
            out.append(Event("expired", frame.index, frame.timestamp, frame.camera_id, identity))
            self._track_identity = {t: i for t, i in self._track_identity.items() if i != identity}
        return out
