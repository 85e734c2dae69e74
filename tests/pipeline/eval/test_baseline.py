"""The evidence gallery against the first version's rule, end to end on a short simulated day-night replay.

Both run behind the same detector, body meter, tracker and embedders of the embedded default bundle, on the
same recording, and are scored against its ground truth (reid-score's definitions).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reidstream.pipeline.app.stream import DEFAULT_BUNDLE, build_detector, build_tracker, calibration_of, pipeline_options
from reidstream.pipeline.bundle import load_bundle
from reidstream.pipeline.config import config_from_mapping, load_config
from reidstream.pipeline.embed.stage import EmbedStage
from reidstream.pipeline.eval.baseline import MinDistanceGallery
from reidstream.pipeline.gallery import Gallery
from reidstream.pipeline.recording import record
from reidstream.pipeline.runner import Pipeline
from reidstream.pipeline.sinks.score_log import ScoreLogSink, read_frames
from reidstream.pipeline.tools.score import score
from reidstream.pipeline.sim.config import SimConfig
from reidstream.pipeline.sinks.relabel import Relabel
from reidstream.pipeline.sources.recording import RecordingSource
from reidstream.pipeline.sources.sim import SimSource
from reidstream.pipeline.app.config import StreamConfig

FRAMES = 600


@pytest.fixture(scope="module")
def day_night(tmp_path_factory) -> Path:
    """40 s at 15 fps: light cycling with a 20 s period, 3 people at a time from 6 who come back often."""
    cfg = config_from_mapping(SimConfig, {"seed": 21, "modalities": ["rgb", "depth", "ir"],
                                          "camera": {"fps": 15.0},
                                          "lighting": {"level": 1.0, "min_level": 0.02, "period_s": 20.0},
                                          "crowd": {"people": 3, "population": 6, "population_seed": 9,
                                                    "return_prob": 0.8}}, "<test>")
    path = tmp_path_factory.mktemp("rec") / "day-night"
    record(SimSource.from_config(cfg, max_frames=FRAMES), path, max_frames=FRAMES)
    return path


def _replay(recording: Path, gallery, out: Path) -> dict:
    cfg = load_config(StreamConfig, None, [])
    bundle = load_bundle(DEFAULT_BUNDLE)
    pipe = Pipeline(build_detector(cfg, bundle), build_tracker(cfg, 15.0), EmbedStage.from_bundle(bundle), gallery,
                    **pipeline_options(cfg))
    log = Relabel(ScoreLogSink(out))  # as reid-stream writes it: pending frames get the decided identity
    with RecordingSource(recording) as source:
        for item in source:
            log(pipe.process(item))
    log.resolve(*pipe.finish())
    log.close()
    return score(read_frames(out))


def test_evidence_gallery_beats_the_min_distance_rule(day_night, tmp_path):
    bundle = load_bundle(DEFAULT_BUNDLE)
    assert bundle.calibration() is not None, "the embedded bundle ships its evidence calibration"
    old = _replay(day_night, MinDistanceGallery(), tmp_path / "old.jsonl")
    new = _replay(day_night, Gallery(calibration_of(bundle)), tmp_path / "new.jsonl")
    print(f"IDF1 min-distance {old['IDF1']:.1f}% ({old['identities_created']} identities), evidence "
          f"{new['IDF1']:.1f}% ({new['identities_created']} identities), {new['gt_people']} people")
    # Measured: with the previous bundle the evidence gallery won by 11 points (63.7 % against 52.4 %); the
    # rebuilt bundle first brought the two close (63.9 % against 61.2 %); with colour-aware tracking, the
    # calibrated dark threshold, cuts of tracks carried onto another person and no identities from glimpses
    # the evidence gallery reaches 88.3 % (6 identities for 5 people) against 32.0 % for the rule (5).
    assert new["IDF1"] >= old["IDF1"] + 10.0, "the evidence gallery should beat the rule by a clear margin"
    assert new["false_merges"] <= old["false_merges"]
