"""``reid-stream-eval``: render named synthetic sequences for given seeds, run the live pipeline on each, score them.

Each sequence is one or more recordings of the simulated camera (``reid-synth sequence``), replayed in order by
``reid-stream --replay REC --output RUN`` into the same run directory (a later part is a restart,
``--resume``: the gallery is reloaded from ``RUN/gallery.npz`` and ``RUN/frames.jsonl`` is appended to, after a
restart marker), then scored by ``reid-score RUN``.
Every parameter is in :data:`SEQUENCES`; ``--print-commands`` prints the equivalent shell commands, and the
suite runs exactly those steps in-process. Recordings are cached under ``WORK/recordings`` (rendered again only
if missing, incomplete or made with other parameters); runs under ``WORK/runs`` are replaced on every call.

The people come from population seed 7 (``crowd.population_seed``), not from seed 0 that the embedded default
bundle was trained on; the sequence seed sets the motion and sensor noise (``seed``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

POPULATION_SEED = 7
_PEOPLE = {"crowd.population_seed": POPULATION_SEED, "crowd.people": 4}
_SMALL = {**_PEOPLE, "camera.fps": 15, "crowd.population": 8, "crowd.return_prob": 0.6}

SEQUENCES: dict[str, dict[str, Any]] = {
    "lit": {"description": "lit room, 4 people at a time, 30 fps (the README's first row)",
            "parts": [{"name": "lit", "frames": 300, "config": None, "seed_offset": 0, "set": dict(_PEOPLE)}]},
    "day-night": {"description": "day-night cycle of 40 s (20 s light, 20 s dark), 4 people walking in and out, 15 fps",
                  "parts": [{"name": "day-night", "frames": 1800, "config": "configs/sim/day-night.yaml",
                             "seed_offset": 0, "set": {**_PEOPLE, "camera.fps": 15, "lighting.period_s": 40,
                                                       "crowd.return_prob": 0.6}}]},
    "lit-then-dark": {"description": "8 people seen lit, then (restart, gallery reloaded) in the dark, 15 fps",
                      "parts": [{"name": "lit", "frames": 450, "config": None, "seed_offset": 0,
                                 "set": {**_SMALL, "lighting.level": 1.0}},
                                {"name": "dark", "frames": 450, "config": None, "seed_offset": 1000,
                                 "set": {**_SMALL, "lighting.level": 0.02}}]},
}
"""Sequence name -> description and parts: frames, sim config file, seed offset (motion seed = seed + offset),
sim overrides. Config paths are relative to the working directory, else to the repository root."""

STAMP = "reid-stream-eval.json"
"""Written into a recording once it is complete: the parameters it was rendered with."""


class EvalError(RuntimeError):
    """A step of the suite failed; the message names the sequence and seed."""


@dataclass(frozen=True)
class Part:
    """One recording of a sequence for one seed, and the run directory it is replayed into."""

    sequence: str
    seed: int
    name: str
    frames: int
    config: str | None
    overrides: tuple[str, ...]
    recording: Path
    run: Path

    def stamp(self) -> dict:
        """The parameters that make a cached recording reusable."""
        return {"frames": self.frames, "config": self.config, "overrides": list(self.overrides)}


def parts(sequence: str, seed: int, work: Path, frames: int | None = None) -> list[Part]:
    """The recordings of ``sequence`` for ``seed`` under ``work``; ``frames`` overrides every part's length."""
    if sequence not in SEQUENCES:
        raise EvalError(f"unknown sequence {sequence!r}; expected one of {', '.join(SEQUENCES)}")
    spec = SEQUENCES[sequence]["parts"]
    key = f"{sequence}-s{seed}"
    out = []
    for p in spec:
        rec = work / "recordings" / key if len(spec) == 1 else work / "recordings" / key / p["name"]
        overrides = (f"seed={seed + p['seed_offset']}", *(f"{k}={v}" for k, v in p["set"].items()))
        out.append(Part(sequence, seed, p["name"], frames or p["frames"], p["config"], overrides, rec,
                        work / "runs" / key))
    return out


def stream_argv(part: Part, bundle: Path | None, sets: Sequence[str], *, resume: bool = False) -> list[str]:
    """The ``reid-stream`` arguments that replay ``part`` into its run directory.

    Args:
        part: The recording and its run directory.
        bundle: The model bundle (None: the embedded one).
        sets: Config overrides (``key=value``).
        resume: ``part`` continues the run of the parts before it (``--resume``: gallery reloaded, logs appended).
    """
    return ["--replay", str(part.recording), "--output", str(part.run), *(["--resume"] if resume else []),
            *(["--bundle", str(bundle)] if bundle else []), *sets]


def commands(sequence: str, seed: int, work: Path, *, bundle: Path | None = None, sets: Sequence[str] = (),
             frames: int | None = None) -> list[str]:
    """The shell commands equivalent to evaluating ``sequence`` for ``seed``."""
    ps = parts(sequence, seed, work, frames)
    lines = [f"# {sequence}, seed {seed}: {SEQUENCES[sequence]['description']}"]
    for p in ps:
        lines.append(shlex.join(["reid-synth", "sequence", str(p.recording), "--frames", str(p.frames),
                                 *(["--config", p.config] if p.config else []), *p.overrides, "--overwrite"]))
    lines.append(shlex.join(["rm", "-rf", str(ps[0].run)]))
    lines += [shlex.join(["reid-stream", *stream_argv(p, bundle, sets, resume=i > 0)]) for i, p in enumerate(ps)]
    lines.append(shlex.join(["reid-score", str(ps[0].run), "--json", str(ps[0].run / "score.json")]))
    return lines


def _config_path(config: str | None) -> Path | None:
    if config is None or Path(config).is_file():
        return None if config is None else Path(config)
    in_repo = Path(__file__).resolve().parents[2] / config
    if in_repo.is_file():
        return in_repo
    raise FileNotFoundError(f"{config}: sim config not found (run from the repository root)")


def is_complete(part: Part) -> bool:
    """Whether ``part.recording`` holds all its frames, rendered with ``part``'s parameters."""
    from reidstream.pipeline.recording import INDEX_FILE, META_FILE

    rec = part.recording
    try:
        stamp = json.loads((rec / STAMP).read_text())
        index = (rec / INDEX_FILE).read_text().splitlines()
    except (OSError, ValueError):
        return False
    return (rec / META_FILE).is_file() and stamp == part.stamp() and len(index) == part.frames


def render(part: Part, progress: Callable[[str], None]) -> bool:
    """Renders ``part``'s recording unless a complete one is cached; returns whether it rendered."""
    from reidstream.pipeline.config import load_config
    from reidstream.pipeline.recording import record
    from reidstream.pipeline.sim.config import SimConfig
    from reidstream.pipeline.sources.sim import SimSource

    if is_complete(part):
        return False
    cfg = load_config(SimConfig, _config_path(part.config), part.overrides)
    source = SimSource.from_config(cfg, max_frames=part.frames)
    t0 = time.perf_counter()
    try:
        def report(n: int) -> None:
            if n % 150 == 0:
                progress(f"rendering {part.name}: {n}/{part.frames} frames ({n / (time.perf_counter() - t0):.1f}/s)")

        n = record(source, part.recording, max_frames=part.frames, overwrite=True, progress=report,
                   description=f"reid-synth sequence seed={cfg.seed}")
    finally:
        source.close()
    if n != part.frames:
        raise EvalError(f"rendered {n} of {part.frames} frames")
    (part.recording / STAMP).write_text(json.dumps(part.stamp(), indent=2) + "\n")
    return True


def run_and_score(ps: list[Part], bundle: Path | None, sets: Sequence[str],
                  progress: Callable[[str], None]) -> dict:
    """Replays the parts in order into a fresh run directory (``--resume`` after the first) and scores the run."""
    from reidstream.pipeline.app.stream import stream
    from reidstream.pipeline.app.cli import stream_config_from_args, stream_parser
    from reidstream.pipeline.config import parse_args_with_overrides
    from reidstream.pipeline.sinks.score_log import FRAMES_FILE, read_frames
    from reidstream.pipeline.tools.score import format_score, score

    run = ps[0].run
    if run.exists():
        shutil.rmtree(run)
    wall, frames = 0.0, 0
    for i, p in enumerate(ps):
        argv = stream_argv(p, bundle, sets, resume=i > 0)
        cfg = stream_config_from_args(parse_args_with_overrides(stream_parser(), argv))
        log, calls = io.StringIO(), itertools.count()

        def report(msg: str, p: Part = p) -> None:
            if next(calls) % 6 == 0:  # reid-stream reports every 25 frames: one line in 150 frames
                progress(f"reid-stream {p.name}: {msg}")

        with contextlib.redirect_stdout(log):  # the end-of-run summary; kept in RUN/stream.txt
            summary = stream(cfg, progress=report)
        with open(run / "stream.txt", "a") as f:
            f.write(f"# {p.recording}\n{log.getvalue()}")
        wall, frames = wall + summary["wall_s"], frames + summary["frames_processed"]
    s = score(read_frames(run / FRAMES_FILE))
    (run / "score.json").write_text(json.dumps(s, indent=2) + "\n")
    (run / "score.txt").write_text(format_score(s) + "\n")
    row = {k: v for k, v in s.items() if not k.endswith("_details")}
    return row | {"pipeline_fps": frames / wall if wall else None}


def evaluate(sequences: Sequence[str], seeds: Sequence[int], work: Path, *, bundle: Path | None = None,
             sets: Sequence[str] = (), frames: int | None = None,
             progress: Callable[[str], None] = lambda msg: None) -> list[dict]:
    """Renders (or reuses), runs and scores every sequence for every seed.

    Returns:
        One row per (sequence, seed): ``sequence``, ``seed``, ``commands`` and the score of the run
        (:func:`reidstream.pipeline.tools.score.score` without the per-visit details) plus ``pipeline_fps``.

    Raises:
        EvalError: naming the sequence and seed of the step that failed.
    """
    from reidstream.pipeline.config import ConfigError, load_config
    from reidstream.pipeline.app.config import StreamConfig

    try:
        load_config(StreamConfig, None, sets)
    except ConfigError as e:
        raise EvalError(f"--set: {e}") from None
    rows = []
    for name in sequences:
        for seed in seeds:
            ps = parts(name, seed, work, frames)
            say = lambda msg, name=name, seed=seed: progress(f"{name} seed {seed}: {msg}")  # noqa: E731
            step = "rendering"
            try:
                for p in ps:
                    t0 = time.perf_counter()
                    if render(p, say):
                        say(f"rendered {p.recording} ({p.frames} frames, {time.perf_counter() - t0:.0f} s)")
                    else:
                        say(f"cached {p.recording}")
                step = "running reid-stream"
                t0 = time.perf_counter()
                s = run_and_score(ps, bundle, sets, say)
                say(f"done in {time.perf_counter() - t0:.0f} s: IDF1 {s['IDF1']:.1f}%")
            except EvalError as e:
                raise EvalError(f"{name} seed {seed}: {step}: {e}") from e
            except Exception as e:  # noqa: BLE001 - any failure is reported with the sequence and seed
                raise EvalError(f"{name} seed {seed}: {step}: {type(e).__name__}: {e}") from e
            rows.append({"sequence": name, "seed": seed, "commands": commands(name, seed, work, bundle=bundle,
                                                                              sets=sets, frames=frames), **s})
    return rows


def _frac(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.0f}%)" if n else "0/0"


def _mean_std(values: list[float | None], unit: str = "") -> str:
    v = [x for x in values if x is not None]
    if not v:
        return "-"
    if len(v) == 1:
        return f"{v[0]:.1f}{unit}"
    return f"{np.mean(v):.1f} ± {np.std(v, ddof=1):.1f}{unit}"


COLUMNS = ("sequence", "seed", "frames", "IDF1", "identities / people", "returns re-id", "lit->dark",
           "first-time new", "tracks 1 person", "false merges")


def format_table(rows: list[dict]) -> str:
    """Per sequence and seed, then mean ± std (sample std over seeds) per sequence."""
    table = [list(COLUMNS)]
    for name in dict.fromkeys(r["sequence"] for r in rows):
        rs = [r for r in rows if r["sequence"] == name]
        for r in rs:
            ld = r["reid_by_light"]["lit->dark"]
            table.append([name, str(r["seed"]), str(r["frames"]), f"{r['IDF1']:.1f}%",
                          f"{r['identities_created']} / {r['gt_people']}",
                          _frac(r["returns_reidentified"], r["returns"]), _frac(ld["reidentified"], ld["returns"]),
                          _frac(r["first_visits_new"], r["first_visits"]),
                          _frac(r["tracks_one_person"], r["tracks"]), f"{r['false_merges']} / {r['visits']}"])
        if len(rs) > 1:
            table.append([name, "mean ± std", "", _mean_std([r["IDF1"] for r in rs], "%"),
                          _mean_std([r["identities_created"] for r in rs]) + " / "
                          + _mean_std([r["gt_people"] for r in rs]),
                          _mean_std([r["reid_rate"] for r in rs], "%"),
                          _mean_std([r["reid_by_light"]["lit->dark"]["rate"] for r in rs], "%"),
                          _mean_std([r["first_visit_new_rate"] for r in rs], "%"),
                          _mean_std([r["tracks_one_person_rate"] for r in rs], "%"),
                          _mean_std([r["false_merges"] for r in rs])])
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The ``reid-stream-eval`` argument parser."""
    p = argparse.ArgumentParser(
        prog="reid-stream-eval", description="Reproducible evaluation of reid-stream: renders (and caches) named "
        "synthetic sequences for the given seeds, runs the live pipeline on each (reid-stream --replay) and scores "
        "it (reid-score); prints a table per sequence and seed, with mean ± std per sequence. "
        + " ".join(f"{k}: {v['description']}." for k, v in SEQUENCES.items()))
    p.add_argument("--sequences", nargs="+", choices=list(SEQUENCES), default=list(SEQUENCES), metavar="NAME",
                   help=f"sequences to evaluate ({', '.join(SEQUENCES)}; default: all)")
    p.add_argument("--seeds", nargs="+", type=int, default=[11, 12, 13], help="motion seeds (default: 11 12 13)")
    p.add_argument("--work", type=Path, default=Path("runs/eval"),
                   help="cache of recordings (WORK/recordings) and runs (WORK/runs) (default: runs/eval)")
    p.add_argument("--bundle", type=Path, help="model bundle for reid-stream (default: the embedded bundle)")
    p.add_argument("--set", dest="sets", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="reid-stream config overrides, e.g. --set gallery.threshold=0.3")
    p.add_argument("--frames", type=int, help="frames of every part instead of the sequence's own (quick checks)")
    p.add_argument("--json", type=Path, help="also write the figures (and the commands) to this file")
    p.add_argument("--print-commands", action="store_true",
                   help="print the equivalent reid-synth / reid-stream / reid-score commands and exit")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``reid-stream-eval``."""
    a = build_parser().parse_args(argv)
    bad = [s for s in a.sets if "=" not in s]
    if bad or (a.frames is not None and a.frames < 1):
        build_parser().error(f"--set expects key=value, got {bad[0]!r}" if bad else "--frames must be >= 1")
    if a.print_commands:
        print("\n\n".join("\n".join(commands(n, s, a.work, bundle=a.bundle, sets=a.sets, frames=a.frames))
                          for n in a.sequences for s in a.seeds))
        return 0

    def progress(msg: str) -> None:
        print(f"reid-stream-eval: {msg}", file=sys.stderr, flush=True)

    try:
        rows = evaluate(a.sequences, a.seeds, a.work, bundle=a.bundle, sets=a.sets, frames=a.frames,
                        progress=progress)
    except EvalError as e:
        print(f"reid-stream-eval: error: {e}", file=sys.stderr)
        return 2
    print(format_table(rows))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"sequences": {n: SEQUENCES[n] for n in a.sequences}, "seeds": a.seeds,
                                      "set": a.sets, "frames": a.frames, "runs": rows}, indent=2, default=str) + "\n")
    return 0


__all__ = ["SEQUENCES", "EvalError", "Part", "commands", "evaluate", "format_table", "is_complete", "main", "parts",
           "render", "run_and_score", "stream_argv"]
