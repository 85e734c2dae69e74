"""The score log, ``frames.jsonl``: per frame, the source's ground truth and the pipeline's identities.

Written by :class:`ScoreLogSink` in every run whose source has ground truth (the simulated camera or a
recording of it), read by :func:`read_frames` for ``reid-score`` (:mod:`reidstream.pipeline.tools.score`).
One JSON object per line: ``frame``, ``time``, ``camera``, ``lit``, ``detector``, the ground-truth people
``gt: [[id, x1, y1, x2, y2], ...]`` and the predictions ``pred: [[identity, track_id, x1, y1, x2, y2], ...]``.
A resumed run (``reid-stream --resume``) appends after a marker line ``{"restart": true}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reidstream.pipeline.result import FrameResult
from reidstream.pipeline.sinks.fanout import SinkBase

FRAMES_FILE = "frames.jsonl"
RESTART_KEY = "restart"
"""Key of the line that marks where a resumed run (``reid-stream --resume``) begins in ``frames.jsonl``."""


def mean_luma(result: FrameResult, step: int = 8) -> float | None:
    """Mean brightness (0-255) of the colour image on a subsampled grid; None without colour."""
    rgb = result.frame.rgb
    if rgb is None:
        return None
    return float(rgb[::step, ::step].mean())


class ScoreLogSink(SinkBase):
    """Writes ``frames.jsonl``: per frame, ground truth and the pipeline's identities (frames with ground truth).

    Args:
        path: The file (appended to; replaced with ``overwrite``).
        dark_luma: Brightness below which a frame counts as dark.
        min_visible: Ground-truth people less visible than this are left out (heavily occluded).
        overwrite: Replace an existing file.
        restart: This run continues the one logged in ``path`` (``reid-stream --resume``): when the file
            holds frames, a line ``{"restart": true}`` is written first, so that :func:`read_frames` starts a
            restart segment there (and does not take the frames that follow for frames logged twice).
    """

    def __init__(self, path: str | Path, *, dark_luma: float = 40.0, min_visible: float = 0.5,
                 overwrite: bool = False, restart: bool = False) -> None:
        from reidstream.pipeline.sinks.jsonl import open_text_output

        self.name = "score-log"

        self.path = Path(path)
        continues = restart and not overwrite and self.path.is_file() and self.path.stat().st_size > 0
        self._f = open_text_output(self.path, "ScoreLogSink", append=not overwrite, overwrite=overwrite)
        if continues:
            self._f.write(json.dumps({RESTART_KEY: True}) + "\n")
            self._f.flush()
        self.dark_luma, self.min_visible = dark_luma, min_visible

    def _write(self, result: FrameResult) -> None:
        if not result.has_ground_truth:
            return
        if result.lit is not None:
            lit = result.lit
        else:
            luma = mean_luma(result)
            lit = luma is not None and luma >= self.dark_luma
        line = {"frame": result.index, "time": round(result.frame.timestamp, 4), "camera": result.frame.camera_id,
                "lit": bool(lit), "detector": result.detector,
                "gt": [[a.identity, *[round(v, 1) for v in a.box]] for a in result.annotations
                       if a.visible >= self.min_visible],
                "pred": [[ident, int(t), *[round(float(v), 1) for v in box]]
                         for ident, t, box in zip(result.identities, result.detections.track_ids,
                                                  result.detections.boxes) if ident]}
        self._f.write(json.dumps(line) + "\n")
        self._f.flush()

    def _close(self) -> None:
        self._f.close()


@dataclass(frozen=True)
class LoggedFrame:
    """One line of the score log, parsed: ground truth and predictions of one frame of one camera."""

    index: int
    condition: str
    gt_ids: np.ndarray
    gt_boxes: np.ndarray
    pred_ids: list[str]
    pred_boxes: np.ndarray
    pred_tracks: list[int] = field(default_factory=list)
    segment: int = 0
    camera: str = ""
    time: float = 0.0


def read_frames(path: str | Path) -> list[LoggedFrame]:
    """Parses ``frames.jsonl`` (a cut-off last line is ignored).

    A restart marker line (``{"restart": true}``, written by ``reid-stream --resume``) or a frame index that
    does not increase starts a new restart segment. Frame indices are per camera (``camera``; lines without it,
    from old logs, are camera ``""``): a camera's index that does not increase starts a new segment for that
    camera only, and a frame is keyed by (camera, index).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: naming the file and line, when a line other than the last is not JSON, the file holds
            no frame, or the same camera and frame index appear twice with no restart marker between them
            (two runs written into one output directory, e.g. a run repeated without ``--overwrite``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; run reid-stream with --output on a source with ground truth "
                                f"(the simulated camera or a recording of it)")
    frames: list[LoggedFrame] = []
    lines = path.read_text().splitlines()
    segment = 0
    current: dict[str, tuple[int, int]] = {}  # camera -> (its segment, its last frame index)
    restarted: set[str] = set()  # cameras with frames before the last restart marker and none after it
    seen: dict[tuple[str, int], int] = {}  # (camera, frame) -> line, since the last restart marker
    for no, line in enumerate(lines, 1):
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            if no == len(lines):
                break
            raise ValueError(f"{path}, line {no}: not valid JSON") from None
        if isinstance(d, dict) and d.get(RESTART_KEY) is True:
            seen.clear()
            restarted = set(current)
            continue
        camera = str(d.get("camera", ""))
        key = (camera, d["frame"])
        if key in seen:
            raise ValueError(f"{path}, line {no}: camera {key[0]!r} frame {key[1]} is logged twice (first on line "
                             f"{seen[key]}) with no restart marker between them: two runs were written into one "
                             f"output directory; run reid-stream again with --overwrite (or into a new directory), "
                             f"or with --resume to continue a run")
        seen[key] = no
        if camera in current and (camera in restarted or d["frame"] <= current[camera][1]):
            segment += 1
            current[camera] = (segment, d["frame"])
        else:
            current[camera] = (current[camera][0] if camera in current else segment, d["frame"])
        restarted.discard(camera)
        gt = np.array([g[1:] for g in d["gt"]], float).reshape(-1, 4)
        pred = np.array([p[2:] for p in d["pred"]], float).reshape(-1, 4)
        light = "lit" if d["lit"] else "dark"
        frames.append(LoggedFrame(d["frame"], f"{camera}/{light}" if camera else light,
                             np.array([g[0] for g in d["gt"]], int), gt, [p[0] for p in d["pred"]], pred,
                             [int(p[1]) for p in d["pred"]], current[camera][0], camera, float(d.get("time", 0.0))))
    if not frames:
        raise ValueError(f"{path}: no frames with ground truth")
    return frames


__all__ = ["FRAMES_FILE", "RESTART_KEY", "LoggedFrame", "ScoreLogSink", "mean_luma", "read_frames"]
