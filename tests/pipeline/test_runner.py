"""The runner's per-track embedding cadence (``embed.every``) and the embedding stage's parallel networks."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from reidstream.pipeline.app.stream import DEFAULT_BUNDLE, build_body, build_detector, build_tracker, calibration_of
from reidstream.pipeline.bundle import load_bundle
from reidstream.pipeline.tools.bench import render
from reidstream.pipeline.config import load_config
from reidstream.pipeline.embed.stage import EmbedStage
from reidstream.pipeline.gallery import Gallery
from reidstream.pipeline.runner import Pipeline
from reidstream.pipeline.app.config import StreamConfig

FRAMES = 24


class CountingStage:
    """The real embedding stage, recording which tracks it was given on which frame."""

    def __init__(self, stage: EmbedStage) -> None:
        self.stage = stage
        self.modalities = stage.modalities
        self.calls: list[tuple[int, list[int]]] = []

    def __call__(self, crops):
        self.calls.append((crops.frame_index, sorted(crops.track_ids.tolist())))
        return self.stage(crops)


@pytest.fixture(scope="module")
def frames() -> list:
    """Frames of the bench scene: people in view from the first frame."""
    return render(FRAMES, 3, seed=4, light=1.0)


def _run(frames: list, every: int):
    cfg = load_config(StreamConfig, None, [])
    bundle = load_bundle(DEFAULT_BUNDLE)
    stage = CountingStage(EmbedStage.from_bundle(bundle))
    pipe = Pipeline(build_detector(cfg, bundle), build_tracker(cfg, 15.0), stage, Gallery(calibration_of(bundle)),
                    body=build_body(cfg), embed_every=every)
    return [pipe.process(item) for item in frames], stage.calls


def test_default_config_embeds_one_frame_in_three():
    assert load_config(StreamConfig, None, []).embed.every == 3
    with pytest.raises(ValueError, match="every"):
        load_config(StreamConfig, None, ["embed.every=0"])


def test_every_frame_embeds_every_track(frames):
    results, calls = _run(frames, 1)
    with_people = [r for r in results if len(r.detections)]
    calls = [c for c in calls if c[1]]
    assert len(with_people) == len(calls) > FRAMES // 2
    for r, (index, tids) in zip(with_people, calls):
        assert index == r.frame.index and tids == sorted(r.detections.track_ids.tolist())


def test_cadence_embeds_each_track_once_in_k_frames_and_still_reports_it_every_frame(frames):
    k = 3
    results, calls = _run(frames, k)
    embedded = {index: set(tids) for index, tids in calls}
    seen = Counter()
    first: dict[int, int] = {}
    for r in results:
        tids = r.detections.track_ids.tolist()
        # identities and matches for every track on every frame, embedded or not
        assert sorted(m.track_id for m in r.matches) == sorted(tids)
        for t in tids:
            first.setdefault(t, r.frame.index)
            seen[t] += 1
    assert sum(len(t) for t in embedded.values()) < sum(seen.values()) * 0.6
    for t, n in seen.items():
        on = [i for i, tids in embedded.items() if t in tids]
        assert first[t] in on, f"track {t} was not embedded on its first frame"
        gaps = [b - a for a, b in zip(on, on[1:])]
        assert all(1 <= g <= k for g in gaps), (t, on)
        assert len(on) >= n // k
    # staggered: tracks started together do not all embed on the same frames
    assert max(len(tids) for i, tids in embedded.items() if i > min(first.values())) < len(seen)


def test_networks_side_by_side_give_what_they_give_in_turn(frames):
    from reidstream.pipeline.crops import cut_crops

    bundle = load_bundle(DEFAULT_BUNDLE)
    serial, parallel = EmbedStage.from_bundle(bundle, workers=1), EmbedStage.from_bundle(bundle, workers=2)
    assert serial.workers == 1 and parallel.workers == 2
    r = _run(frames[:6], 1)[0][-1]
    crops = cut_crops(r.frame, r.detections)
    a, b = serial(crops), parallel(crops)
    assert [(e.space, e.modality.value) for e in a] == [(e.space, e.modality.value) for e in b]
    assert len(a) == len(serial.embedders) and len(a[0]) == len(r.detections) > 0
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.vectors, y.vectors, atol=1e-5)
        assert (x.track_ids == y.track_ids).all()
    parallel.close()
    with pytest.raises(ValueError, match="workers"):
        EmbedStage(serial.embedders, workers=-1)


class SpyTracker:
    """The real tracker, recording the appearance it is given."""

    def __init__(self, tracker) -> None:
        self.tracker = tracker
        self.given: list = []

    @property
    def last_index(self):
        return self.tracker.last_index

    def update(self, detections, timestamp, measures=None, appearance=None):
        self.given.append((len(detections), None if appearance is None else np.asarray(appearance).shape))
        return self.tracker.update(detections, timestamp, measures=measures, appearance=appearance)


@pytest.mark.parametrize("setting", ["colour", "none"])
def test_tracker_gets_colour_statistics_of_lit_detections_when_asked(frames, setting):
    from reidstream.pipeline.app.stream import pipeline_options
    from reidstream.pipeline.gallery.cues import COLOUR_DIM

    cfg = load_config(StreamConfig, None, [f"tracker.appearance={setting}"])
    bundle = load_bundle(DEFAULT_BUNDLE)
    spy = SpyTracker(build_tracker(cfg, 15.0))
    pipe = Pipeline(build_detector(cfg, bundle), spy, EmbedStage.from_bundle(bundle), Gallery(calibration_of(bundle)),
                    **pipeline_options(cfg))
    for item in frames[:8]:
        pipe.process(item)
    with_people = [(n, shape) for n, shape in spy.given if n]
    assert with_people
    if setting == "colour":
        assert all(shape == (n, COLOUR_DIM) for n, shape in with_people)
    else:
        assert all(shape is None for _, shape in with_people)


def test_no_appearance_in_the_dark():
    dark = render(4, 2, seed=4, light=0.02)
    cfg = load_config(StreamConfig, None, ["tracker.appearance=colour"])
    bundle = load_bundle(DEFAULT_BUNDLE)
    spy = SpyTracker(build_tracker(cfg, 15.0))
    from reidstream.pipeline.app.stream import pipeline_options

    pipe = Pipeline(build_detector(cfg, bundle), spy, EmbedStage.from_bundle(bundle), Gallery(calibration_of(bundle)),
                    **pipeline_options(cfg))
    for item in dark:
        pipe.process(item)
    assert any(n for n, _ in spy.given) and all(shape is None for _, shape in spy.given)


class SpyGallery:
    """The real gallery, recording the cues of each frame."""

    def __init__(self, gallery) -> None:
        self.gallery = gallery
        self.cues: list = []

    def match(self, observations, timestamp, cues=None, *, camera=None):
        self.cues.append(cues)
        return self.gallery.match(observations, timestamp, cues)

    def __getattr__(self, name):
        return getattr(self.gallery, name)


@pytest.mark.parametrize("body", [True, False])
def test_colour_cues_are_those_the_tracker_was_given(frames, body):
    """The colour statistics computed for the tracker serve as the frame's colour cues: computed once, same values."""
    from reidstream.pipeline.gallery.cues import colour_histograms

    cfg = load_config(StreamConfig, None, ["tracker.appearance=colour"])
    bundle = load_bundle(DEFAULT_BUNDLE)
    spy = SpyGallery(Gallery(calibration_of(bundle)))
    pipe = Pipeline(build_detector(cfg, bundle), build_tracker(cfg, 15.0), EmbedStage.from_bundle(bundle), spy,
                    body=build_body(cfg) if body else None, track_appearance="colour", embed_every=3)
    results = [pipe.process(item) for item in frames[:8]]
    checked = 0
    for r, cues in zip(results, spy.cues):
        if not len(r.detections):
            continue
        assert cues.colour is not None and (cues.track_ids == r.detections.track_ids).all()
        if not body:  # without body measures there is no depth window: recompute from the boxes alone
            np.testing.assert_allclose(cues.colour, colour_histograms(r.frame.rgb, r.detections.boxes), atol=1e-6)
            checked += 1
    assert body or checked


class CuttingGallery(SpyGallery):
    """The real gallery; once a track is decided it cuts it (as :mod:`.drift` does when a track's last seconds
    contradict the rest of it), recording the call at which it did."""

    def __init__(self, gallery) -> None:
        super().__init__(gallery)
        self.calls, self.cut, self.at = 0, None, None

    def match(self, observations, timestamp, cues=None, *, camera=None):
        from reidstream.pipeline.gallery import drift

        self.calls += 1
        decided = [(t, s) for t, s in sorted(self.gallery._tracks.items()) if s.slot is not None and s.window.frames]
        if self.cut is not None or not decided:
            return self.gallery.match(observations, timestamp, cues)
        tid, st = decided[0]
        st.since_contrary = st.window
        drift.cut(self.gallery, st)
        out = self.gallery.match(observations, timestamp, cues)
        self.gallery.last_cut.append(tid)  # match() starts a new list; the cut belongs to this frame
        self.gallery.last_cut_from[tid] = st.since_contrary.first_seen
        self.cut, self.at, self.since = tid, self.calls, st.since_contrary.first_seen
        return out


def test_a_cut_track_goes_on_under_a_new_id_pending_again():
    from reidstream.pipeline.runner import CUT_BASE

    cfg = load_config(StreamConfig, None, [])
    bundle = load_bundle(DEFAULT_BUNDLE)
    gallery = CuttingGallery(Gallery(calibration_of(bundle)))
    pipe = Pipeline(build_detector(cfg, bundle), build_tracker(cfg, 15.0), EmbedStage.from_bundle(bundle), gallery,
                    body=build_body(cfg))
    results = [pipe.process(item) for item in render(45, 3, seed=4, light=1.0)]
    k = gallery.at - 1  # the result of the frame in which the track was cut
    assert gallery.cut is not None and k < 40
    assert gallery.cut in results[k - 1].detections.track_ids
    assert not any(gallery.cut in r.detections.track_ids for r in results[k:])
    assert CUT_BASE in results[k].detections.track_ids and CUT_BASE in results[k + 1].detections.track_ids
    pending = [e for r in results[k:] for e in r.events if e.kind == "pending" and e.track >= CUT_BASE]
    assert [(e.track, e.since) for e in pending] == [(CUT_BASE, results[k].frame.index)]
    j = list(results[k].detections.track_ids).index(CUT_BASE)
    assert results[k].identities[j] == ""  # pending again under its new id
    # the result says which track was cut and from when (for the logs, which move those frames to the new id)
    assert results[k].cuts == {CUT_BASE: (gallery.cut, gallery.since)}
    assert results[k - 1].frame.timestamp >= gallery.since and not any(r.cuts for r in results[:k] + results[k + 1:])
