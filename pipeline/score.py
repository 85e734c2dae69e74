"""Identity quality of a ``reid-stream`` run against ground truth: IDF1, identity switches, cross-modal re-id.

The run's ``frames.jsonl`` (written by :class:`ScoreLogSink` when the source has
ground truth) holds, per frame, the ground-truth people and the pipeline's
identities. Scoring uses the ``trackers`` package's implementations of the
standard MOT metrics (IDF1 of Ristani et al. 2016; CLEAR MOT identity switches).

Cross-modal re-identification rate: a person's appearances are cut into *visits*
(runs of frames with gaps shorter than ``gap_frames``). A visit's *condition* is
the camera and whether the colour image was usable (the detector's light rule:
bright and clean enough; else mean brightness) or dark during most of it. A *return* is
a visit after the first; it is *cross-modal* when its condition differs from the
previous visit's (the person comes back in the dark after being seen in colour,
or the other way round, or at another camera). A return is re-identified when
the pipeline identity matched to the person during most of the visit equals the
identity they had during most of their earlier visits.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from reidstream.pipeline.result import FrameResult
from reidstream.pipeline.sinks.fanout import SinkBase

FRAMES_FILE = "frames.jsonl"


def mean_luma(result: FrameResult, step: int = 8) -> float | None:
    """Mean brightness (0-255) of the colour image on a subsampled grid; None without colour."""
    rgb = result.frame.rgb
    if rgb is None:
        return None
    return float(rgb[::step, ::step].mean())


class ScoreLogSink(SinkBase):
    """Writes ``frames.jsonl``: per frame, ground truth and the pipeline's identities (frames with ground truth).

    Args:
        path: The file (created; an existing file is an error unless ``overwrite``).
        dark_luma: Brightness below which a frame counts as dark.
        min_visible: Ground-truth people less visible than this are left out (heavily occluded).
    """

    def __init__(self, path: str | Path, *, dark_luma: float = 40.0, min_visible: float = 0.5,
                 overwrite: bool = False) -> None:
        from reidstream.pipeline.sinks.jsonl import open_text_output

        self.name = "score-log"

        self.path = Path(path)
        self._f = open_text_output(self.path, "ScoreLogSink", append=not overwrite, overwrite=overwrite)
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
class _Frame:
    index: int
    condition: str
    gt_ids: np.ndarray
    gt_boxes: np.ndarray
    pred_ids: list[str]
    pred_boxes: np.ndarray


def read_frames(path: str | Path) -> list[_Frame]:
    """Parses ``frames.jsonl`` (a cut-off last line is ignored)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; run reid-stream with --output on a source with ground truth "
                                f"(the simulated camera or a recording of it)")
    frames = []
    lines = path.read_text().splitlines()
    for no, line in enumerate(lines, 1):
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            if no == len(lines):
                break
            raise ValueError(f"{path}, line {no}: not valid JSON") from None
        gt = np.array([g[1:] for g in d["gt"]], float).reshape(-1, 4)
        pred = np.array([p[2:] for p in d["pred"]], float).reshape(-1, 4)
        frames.append(_Frame(d["frame"], f"{d['camera']}/{'lit' if d['lit'] else 'dark'}",
                             np.array([g[0] for g in d["gt"]], int), gt, [p[0] for p in d["pred"]], pred))
    if not frames:
        raise ValueError(f"{path}: no frames with ground truth")
    return frames


def score(frames: Sequence[_Frame], *, iou: float = 0.5, gap_frames: int = 15) -> dict[str, Any]:
    """IDF1, identity switches and the (cross-modal) re-identification rate of a run."""
    from scipy.optimize import linear_sum_assignment
    from trackers.eval import box_iou, compute_clear_metrics, compute_identity_metrics

    codes: dict[str, int] = {}
    gt_ids, pr_ids, sims = [], [], []
    matched: list[dict[int, str]] = []  # per frame: gt identity -> pipeline identity (IoU assignment)
    for f in frames:
        s = box_iou(f.gt_boxes, f.pred_boxes) if len(f.gt_boxes) and len(f.pred_boxes) else \
            np.zeros((len(f.gt_boxes), len(f.pred_boxes)))
        gt_ids.append(f.gt_ids)
        pr_ids.append(np.array([codes.setdefault(p, len(codes) + 1) for p in f.pred_ids], int))
        sims.append(s)
        pairs = {}
        if s.size:
            r, c = linear_sum_assignment(-s)
            pairs = {int(f.gt_ids[i]): f.pred_ids[j] for i, j in zip(r, c) if s[i, j] >= iou}
        matched.append(pairs)
    ident = compute_identity_metrics(gt_ids, pr_ids, sims, threshold=iou)
    clear = compute_clear_metrics(gt_ids, pr_ids, sims, threshold=iou)
    returns = _returns(frames, matched, gap_frames)
    cross = [r for r in returns if r["cross_modal"]]
    return {"frames": len(frames), "gt_people": len({int(i) for f in frames for i in f.gt_ids}),
            "identities_created": len(codes),
            "IDF1": 100 * float(ident["IDF1"]), "IDP": 100 * float(ident["IDP"]), "IDR": 100 * float(ident["IDR"]),
            "ID_switches": int(clear["IDSW"]), "MOTA": 100 * float(clear["MOTA"]),
            "returns": len(returns), "reid_rate": _rate(returns),
            "cross_modal_returns": len(cross), "cross_modal_reid_rate": _rate(cross), "return_details": returns}


def _rate(rs: list[dict]) -> float | None:
    return 100 * sum(r["reidentified"] for r in rs) / len(rs) if rs else None


def _returns(frames: Sequence[_Frame], matched: list[dict[int, str]], gap: int) -> list[dict]:
    visits: dict[int, list[list[int]]] = {}
    for k, f in enumerate(frames):  # line order is time order, also across restarts (frame indices restart at 0)
        for g in f.gt_ids:
            runs = visits.setdefault(int(g), [])
            if runs and k - runs[-1][-1] <= gap:
                runs[-1].append(k)
            else:
                runs.append([k])
    out = []
    for person, runs in visits.items():
        history: Counter = Counter()
        previous_condition = None
        for run in runs:
            got = Counter(matched[k].get(person) for k in run if matched[k].get(person))
            condition = Counter(frames[k].condition for k in run).most_common(1)[0][0]
            if history and got:
                established = history.most_common(1)[0][0]
                out.append({"person": person, "frame": frames[run[0]].index, "line": run[0] + 1, "condition": condition,
                            "previous_condition": previous_condition, "cross_modal": condition != previous_condition,
                            "identity": got.most_common(1)[0][0], "established": established,
                            "reidentified": got.most_common(1)[0][0] == established})
            history.update(got)
            if got:
                previous_condition = condition
    return out


def format_score(s: dict[str, Any]) -> str:
    """The score as a short table."""
    rate = lambda v: "-" if v is None else f"{v:.1f}%"  # noqa: E731
    return "\n".join([
        f"frames scored            {s['frames']}",
        f"people (ground truth)    {s['gt_people']}",
        f"identities created       {s['identities_created']}",
        f"IDF1                     {s['IDF1']:.1f}%  (IDP {s['IDP']:.1f}%, IDR {s['IDR']:.1f}%)",
        f"identity switches        {s['ID_switches']}",
        f"MOTA                     {s['MOTA']:.1f}%",
        f"returns re-identified    {rate(s['reid_rate'])} of {s['returns']}",
        f"  in another modality / in the dark: {rate(s['cross_modal_reid_rate'])} of {s['cross_modal_returns']}",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``reid-score``: scores a ``reid-stream --output`` directory."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="reid-score", description="Identity quality of a reid-stream run against the "
                                "ground truth of its source: IDF1, identity switches, re-identification of people "
                                "who return (in another modality, in the dark).")
    p.add_argument("run", type=Path, help="the reid-stream --output directory")
    p.add_argument("--iou", type=float, default=0.5, help="IoU for a prediction to count as the person")
    p.add_argument("--gap", type=int, default=15, help="frames of absence that end a visit")
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    a = p.parse_args(argv)
    try:
        s = score(read_frames(a.run / FRAMES_FILE), iou=a.iou, gap_frames=a.gap)
    except (FileNotFoundError, ValueError) as e:
        print(f"reid-score: error: {e}", file=sys.stderr)
        return 2
    print(format_score(s))
    if a.json:
        a.json.write_text(json.dumps(s, indent=2) + "\n")
    return 0


__all__ = ["FRAMES_FILE", "ScoreLogSink", "format_score", "mean_luma", "read_frames", "score"]
