"""``reid-export calibrate``: the gallery's evidence calibration, made on tracks and stored in the bundle.

The live gallery turns every cue (each embedding pair, colour statistics, height, width) into a
log-likelihood ratio and sums them (:mod:`reidstream.pipeline.gallery.calibration`). Those mappings, the
fusion weights and the open-set threshold are fitted here on tracks with ground truth, cut by the
pipeline's own detector, tracker and crop function (:func:`~reidstream.pipeline.eval.collect.collect_tracks`):

* from labelled recordings (``--recordings``), e.g. of the site the system will run at; or
* by default from simulated sequences (:data:`SIM_GROUPS`: day-night, and lit then dark) of a population
  that is neither the default bundle's training people (population 0) nor the evaluation people of
  ``reid-stream-eval`` (population 7).

The calibration goes into ``manifest.json`` (key ``calibration``) atomically; the model files are
untouched, so their checksums stay valid.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

from reidstream.export.evidence import fit_calibration
from reidstream.pipeline.bundle import MANIFEST, Bundle, load_bundle
from reidstream.pipeline.gallery.calibration import Calibration

SIM_GROUPS = {
    "day-night": [("day-night", 1800, "configs/sim/day-night.yaml", 0,
                   {"camera.fps": 15, "lighting.period_s": 40, "crowd.return_prob": 0.6})],
    "lit-then-dark": [("lit", 600, None, 0, {"camera.fps": 15, "crowd.population": 10, "crowd.return_prob": 0.6,
                                              "lighting.level": 1.0}),
                      ("dark", 600, None, 1000, {"camera.fps": 15, "crowd.population": 10, "crowd.return_prob": 0.6,
                                                  "lighting.level": 0.02})],
}
"""Simulated calibration material per seed: a day-night sequence, and a small population seen lit and then in the
dark (one timeline, so the same people give lit->dark pairs). Parts: name, frames (scaled by ``sim_frames``),
sim config, motion seed offset, sim overrides."""


def sim_recordings(seeds: Sequence[int], frames: int, population_seed: int, work: Path,
                   progress: Callable[[str], None]) -> list[list[Path]]:
    """Renders (or reuses) the simulated calibration sequences; returns groups of recordings forming one timeline."""
    from reidstream.pipeline.eval.suite import Part, render

    groups = []
    for seed in seeds:
        for group, parts in SIM_GROUPS.items():
            recs = []
            for name, n, config, offset, settings in parts:
                overrides = (f"seed={seed + offset}", f"crowd.population_seed={population_seed}",
                             *(f"{k}={v}" for k, v in settings.items()))
                rec = work / f"{group}-p{population_seed}-s{seed}" / name
                count = max(1, round(n * frames / 1800))
                part = Part("calibration", seed, name, count, config, overrides, rec, rec)
                if render(part, progress):
                    progress(f"rendered {rec}")
                recs.append(rec)
            groups.append(recs)
    return groups


def front_end(bundle: Bundle, overrides: Sequence[str] = ()):
    """The live pipeline's stages up to the gallery (detector, body meter, tracker, embedders), as configured."""
    from reidstream.pipeline.app.stream import build_detector, build_tracker, pipeline_options
    from reidstream.pipeline.config import load_config
    from reidstream.pipeline.embed.stage import EmbedStage
    from reidstream.pipeline.runner import Pipeline
    from reidstream.pipeline.app.config import StreamConfig

    cfg = load_config(StreamConfig, None, list(overrides))
    embed = EmbedStage.from_bundle(bundle, device=cfg.device, workers=cfg.embed.workers)
    return cfg, lambda fps: Pipeline(build_detector(cfg, bundle), build_tracker(cfg, fps), embed, None,
                                     **pipeline_options(cfg))


def calibrate_bundle(bundle_dir: str | Path, recordings: Sequence[Path] = (), *, sim_seeds: Sequence[int] = (101, 102, 103),
                     sim_frames: int = 1800, population_seed: int = 3, work: Path = Path("runs/calibration"),
                     false_merge_rate: float = 0.05, min_auc: float = 0.6, min_pairs: int = 20,
                     overrides: Sequence[str] = (),
                     progress: Callable[[str], None] = print) -> Calibration:
    """Collects tracks, fits the calibration and writes it into the bundle's manifest; returns it.

    Raises:
        BundleError: not a valid bundle.
        ValueError: a recording without ground truth, or too little data (the message says which).
    """
    from reidstream.pipeline.eval.collect import collect_tracks
    from reidstream.pipeline.recording import read_meta

    bundle = load_bundle(bundle_dir)
    groups = [[Path(r)] for r in recordings]
    if not groups:
        groups = sim_recordings(sim_seeds, sim_frames, population_seed, Path(work), progress)
        source = (f"reid-export calibrate --sim-seeds {' '.join(map(str, sim_seeds))} --sim-frames {sim_frames} "
                  f"--population-seed {population_seed}")
    else:
        source = "reid-export calibrate --recordings " + " ".join(str(r) for r in recordings)
    cfg, make = front_end(bundle, overrides)
    records = []
    for recs in groups:
        offset, name = 0.0, str(recs[0].parent if len(recs) > 1 else recs[0])
        for rec in recs:
            got = collect_tracks(rec, make(float(read_meta(rec).fps or 15.0)), name=name, time_offset=offset,
                                 pending_s=cfg.gallery.pending_s, min_frames=cfg.gallery.min_frames,
                                 progress=progress)
            progress(f"{rec}: {len(got)} tracks, {len({r.person for r in got if r.person >= 0})} people")
            offset = max([offset, *(r.end + 60.0 for r in got)])
            records += got
    cal = fit_calibration(records, false_merge_rate=false_merge_rate, min_auc=min_auc, min_pairs=min_pairs,
                          source=source, progress=progress)
    write_calibration(bundle, cal)
    return cal


def write_calibration(bundle: Bundle, calibration: Calibration) -> Bundle:
    """Stores ``calibration`` in the bundle's manifest atomically; returns the reloaded bundle."""
    from reidstream.pipeline.atomic import atomic_write_text

    data = bundle.manifest.model_dump(mode="json")
    data["calibration"] = calibration.to_dict()
    atomic_write_text(bundle.root / MANIFEST, json.dumps(data, indent=2) + "\n")
    return load_bundle(bundle.root)


__all__ = ["calibrate_bundle", "front_end", "sim_recordings", "write_calibration"]
