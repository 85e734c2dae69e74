"""Identity quality of a ``reid-stream`` run against ground truth: IDF1, identity switches, identity decisions.

The run's ``frames.jsonl`` (written by :class:`~reidstream.pipeline.sinks.score_log.ScoreLogSink` when the source has
ground truth) holds, per frame, the ground-truth people ``gt: [[id, x1, y1, x2, y2], ...]``
and the pipeline's predictions ``pred: [[identity, track_id, x1, y1, x2, y2], ...]``.
Scoring uses the ``trackers`` package's implementations of the standard MOT metrics
(IDF1 of Ristani et al. 2016; CLEAR MOT identity switches). In every frame,
predictions are matched one to one to ground-truth people by IoU (optimal
assignment, at least ``iou``); all figures below use this matching.

Definitions:

- *Restart segment*: the file is read in line order; a restarted run
  (``reid-stream --resume``: gallery reloaded, frames appended) begins a new
  segment at its marker line ``{"restart": true}``, and so does a frame index
  that does not increase. Track ids are only unique within a segment. The same
  camera and frame index twice with no restart marker between them is an error
  (two runs written into one directory): :func:`read_frames` refuses the file.
- *Visit*: a person's appearances cut into runs of lines with fewer than
  ``gap_frames`` lines of absence between them; a restart also ends a visit
  (a person seen before and after it returns after the restart). A visit's *condition* is ``camera/lit`` or ``camera/dark``
  (the detector's light rule) during most of it. Visits in which the person
  was never matched are ignored below.
- *Majority identity* of a visit: the pipeline identity matched to the person
  in most of its frames. An identity is *established* for a person at the
  first frame it was matched to them in a visit whose majority identity it is.
- *Return*: a visit after the person's first. It is re-identified when its
  majority identity equals the identity the person had most often in their
  earlier visits; it is *cross-modal* when its condition differs from the
  previous visit's. Returns are also split by light, previous -> current
  (``lit->lit``, ``lit->dark``, ``dark->lit``, ``dark->dark``).
- *First-time visitor given a new identity*: the majority identity of a
  person's first visit was not established for any other person before that
  visit started (else the visitor was absorbed into someone else's identity).
- *False merge*: a visit (first or return) whose majority identity had been
  established first, before the visit started, for a different person.
  *Merged identities*: identities that are the majority identity of visits of
  more than one person.
- *Tracks*: a pipeline track (``(segment, track id)``) is *one person* when at
  least ``pure_share`` (90 %) of its matched frames belong to its majority
  ground-truth person. *ID switches inside tracks*: changes of the matched
  ground-truth person along a track's matched frames.

Several cameras (one ``frames.jsonl`` with lines of several ``camera`` values, as a
multi-camera run into one gallery writes): frame indices, duplicates and restart
segments are per camera; :func:`~reidstream.pipeline.tools.score_site.score_site` reports the multi-camera IDF1 (global
identities over all cameras), cross-camera hand-overs and :func:`score` per camera.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from reidstream.pipeline.sinks.score_log import FRAMES_FILE, LoggedFrame, read_frames

LIGHT_TRANSITIONS = ("lit->lit", "lit->dark", "dark->lit", "dark->dark")


def _assign(frames: Sequence[LoggedFrame], iou: float):
    """Per frame, the optimal IoU assignment of predictions to ground-truth people (at least ``iou``).

    Returns:
        ``codes`` (identity name -> integer code), per-frame ground-truth ids, prediction codes and IoU matrices
        (for the ``trackers`` metrics), ``matched`` (per frame: person -> identity name) and ``tracks``
        (``(camera, segment, track id)`` -> matched person per frame, in order).
    """
    from scipy.optimize import linear_sum_assignment
    from trackers.eval import box_iou

    codes: dict[str, int] = {}
    gt_ids, pr_ids, sims = [], [], []
    matched: list[dict[int, str]] = []  # per frame: gt identity -> pipeline identity (IoU assignment)
    tracks: dict[tuple[str, int, int], list[int]] = {}  # (camera, segment, track) -> matched person per frame
    for f in frames:
        s = box_iou(f.gt_boxes, f.pred_boxes) if len(f.gt_boxes) and len(f.pred_boxes) else \
            np.zeros((len(f.gt_boxes), len(f.pred_boxes)))
        gt_ids.append(f.gt_ids)
        pr_ids.append(np.array([codes.setdefault(p, len(codes) + 1) for p in f.pred_ids], int))
        sims.append(s)
        pairs = {}
        if s.size:
            r, c = linear_sum_assignment(-s)
            for i, j in zip(r, c):
                if s[i, j] >= iou:
                    pairs[int(f.gt_ids[i])] = f.pred_ids[j]
                    if j < len(f.pred_tracks):
                        tracks.setdefault((f.camera, f.segment, f.pred_tracks[j]), []).append(int(f.gt_ids[i]))
        matched.append(pairs)
    return codes, gt_ids, pr_ids, sims, matched, tracks


def score(frames: Sequence[LoggedFrame], *, iou: float = 0.5, gap_frames: int = 15,
          pure_share: float = 0.9) -> dict[str, Any]:
    """IDF1, identity switches, re-identification on return and the identity decisions of a run.

    Args:
        frames: The run's frames (:func:`read_frames`).
        iou: IoU for a prediction to count as a ground-truth person.
        gap_frames: Frames of absence that end a visit.
        pure_share: Share of a track's matched frames on one person for the track to count as one person.

    Returns:
        The figures (see the module docstring), JSON-serialisable.
    """
    from trackers.eval import compute_clear_metrics, compute_identity_metrics

    codes, gt_ids, pr_ids, sims, matched, tracks = _assign(frames, iou)
    ident = compute_identity_metrics(gt_ids, pr_ids, sims, threshold=iou)
    clear = compute_clear_metrics(gt_ids, pr_ids, sims, threshold=iou)
    visits = _visits(frames, gap_frames)
    returns = _returns(frames, matched, visits)
    cross = [r for r in returns if r["cross_modal"]]
    by_light = {}
    for key in LIGHT_TRANSITIONS:
        rs = [r for r in returns if r["light"] == key]
        by_light[key] = {"returns": len(rs), "reidentified": sum(r["reidentified"] for r in rs), "rate": _rate(rs)}
    decided = _decisions(frames, matched, visits)
    first = [v for v in decided if v["first"]]
    track_rows = [_track_row(seg, tid, people, pure_share) for (_, seg, tid), people in tracks.items()]
    pure = [t for t in track_rows if t["one_person"]]
    return {"frames": len(frames), "gt_people": len({int(i) for f in frames for i in f.gt_ids}),
            "identities_created": len(codes),
            "IDF1": 100 * float(ident["IDF1"]), "IDP": 100 * float(ident["IDP"]), "IDR": 100 * float(ident["IDR"]),
            "ID_switches": int(clear["IDSW"]), "MOTA": 100 * float(clear["MOTA"]),
            "returns": len(returns), "reid_rate": _rate(returns),
            "returns_reidentified": sum(r["reidentified"] for r in returns),
            "cross_modal_returns": len(cross), "cross_modal_reid_rate": _rate(cross),
            "cross_modal_reidentified": sum(r["reidentified"] for r in cross),
            "reid_by_light": by_light,
            "first_visits": len(first), "first_visits_new": sum(v["new"] for v in first),
            "first_visit_new_rate": _pct(sum(v["new"] for v in first), len(first)),
            "visits": len(decided), "false_merges": sum(v["false_merge"] for v in decided),
            "merged_identities": _merged(decided),
            "tracks": len(track_rows), "tracks_one_person": len(pure), "pure_share": pure_share,
            "tracks_one_person_rate": _pct(len(pure), len(track_rows)),
            "track_switches": sum(t["switches"] for t in track_rows),
            "return_details": returns, "visit_details": decided, "track_details": track_rows}


def _pct(k: int, n: int) -> float | None:
    return 100 * k / n if n else None


def _rate(rs: list[dict]) -> float | None:
    return _pct(sum(r["reidentified"] for r in rs), len(rs))


def _visits(frames: Sequence[LoggedFrame], gap: int) -> dict[int, list[list[int]]]:
    """Per ground-truth person, their visits as lists of line numbers (0-based)."""
    visits: dict[int, list[list[int]]] = {}
    for k, f in enumerate(frames):  # line order is time order, also across restarts (frame indices restart at 0)
        for g in f.gt_ids:
            runs = visits.setdefault(int(g), [])
            if runs and k - runs[-1][-1] <= gap and frames[runs[-1][-1]].segment == f.segment:
                runs[-1].append(k)
            else:
                runs.append([k])
    return visits


def _light(condition: str | None) -> str:
    return str(condition).rsplit("/", 1)[-1]


def _returns(frames: Sequence[LoggedFrame], matched: list[dict[int, str]], visits: dict[int, list[list[int]]]) -> list[dict]:
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
                            "light": f"{_light(previous_condition)}->{_light(condition)}",
                            "identity": got.most_common(1)[0][0], "established": established,
                            "reidentified": got.most_common(1)[0][0] == established})
            history.update(got)
            if got:
                previous_condition = condition
    return out


def _decisions(frames: Sequence[LoggedFrame], matched: list[dict[int, str]],
               visits: dict[int, list[list[int]]]) -> list[dict]:
    """Every matched visit with its majority identity, whether it is the person's first, new, or a false merge."""
    rows = []
    for person, runs in visits.items():
        first = True
        for run in runs:
            got = Counter(matched[k].get(person) for k in run if matched[k].get(person))
            if not got:
                continue
            identity = got.most_common(1)[0][0]
            since = next(k for k in run if matched[k].get(person) == identity)
            rows.append({"person": person, "frame": frames[run[0]].index, "line": run[0] + 1, "start": run[0],
                         "since": since, "identity": identity, "first": first})
            first = False
    established: dict[str, list[tuple[int, int]]] = {}  # identity -> (line established, person), earliest first
    for r in rows:
        established.setdefault(r["identity"], []).append((r["since"], r["person"]))
    for ests in established.values():
        ests.sort()
    for r in rows:
        before = [p for line, p in established[r["identity"]] if line < r["start"]]
        r["owner"] = before[0] if before else None  # the person the identity was established for first
        r["false_merge"] = r["owner"] is not None and r["owner"] != r["person"]
        r["new"] = r["first"] and not any(p != r["person"] for p in before)
    rows.sort(key=lambda r: (r["start"], r["person"]))
    for r in rows:
        del r["start"], r["since"]
    return rows


def _merged(rows: list[dict]) -> int:
    people: dict[str, set[int]] = {}
    for r in rows:
        people.setdefault(r["identity"], set()).add(r["person"])
    return sum(len(p) > 1 for p in people.values())


def _track_row(segment: int, track: int, people: list[int], pure_share: float) -> dict:
    person, n = Counter(people).most_common(1)[0]
    return {"segment": segment, "track": track, "frames": len(people), "person": person,
            "purity": n / len(people), "one_person": n / len(people) >= pure_share,
            "switches": sum(a != b for a, b in zip(people, people[1:]))}


def _of(k: int, n: int) -> str:
    return f"{k} of {n} ({100 * k / n:.1f}%)" if n else "0 of 0 (-)"


def format_score(s: dict[str, Any]) -> str:
    """The score as a short table.

    Lines (see the module docstring for the definitions): IDF1 (IDP, IDR), CLEAR MOT identity switches and
    MOTA; returns re-identified (a return: a person's visit after their first; re-identified: the visit's
    majority identity is the one they had most before), in another modality or in the dark (condition differs
    from the previous visit's), and by light, previous -> current visit; first-time visitors given a new
    identity (the majority identity of a person's first visit was not established for anyone else before);
    false merges (visits whose majority identity was first established for someone else) and identities
    shared by several people; tracks that stay one person (>= ``pure_share`` of their matched frames) and
    identity switches inside tracks (changes of the matched person along a track).
    """
    light = s.get("reid_by_light", {})
    return "\n".join([
        f"frames scored            {s['frames']}",
        f"people (ground truth)    {s['gt_people']}",
        f"identities created       {s['identities_created']}",
        f"IDF1                     {s['IDF1']:.1f}%  (IDP {s['IDP']:.1f}%, IDR {s['IDR']:.1f}%)",
        f"identity switches        {s['ID_switches']}",
        f"MOTA                     {s['MOTA']:.1f}%",
        f"returns re-identified    {_of(s['returns_reidentified'], s['returns'])}  (majority identity = the "
        f"person's earlier one)",
        f"  in another modality / in the dark: {_of(s['cross_modal_reidentified'], s['cross_modal_returns'])}",
        "  by light (previous -> this visit): " + ", ".join(
            f"{k} {_of(v['reidentified'], v['returns'])}" for k, v in light.items()),
        f"first-time visitors new  {_of(s['first_visits_new'], s['first_visits'])}  (identity not already "
        f"another person's)",
        f"false merges             {s['false_merges']} of {s['visits']} visits took another person's identity; "
        f"{s['merged_identities']} identities shared by several people",
        f"tracks one person        {_of(s['tracks_one_person'], s['tracks'])}  (>= {100 * s['pure_share']:.0f}% "
        f"of frames on one person)",
        f"ID switches in tracks    {s['track_switches']}  (matched person changes along a track)",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``reid-score``: scores a ``reid-stream --output`` directory."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="reid-score", description="Identity quality of a reid-stream run against the "
                                "ground truth of its source: IDF1, identity switches, re-identification of people "
                                "who return (in another modality, in the dark), first-time visitors given a new "
                                "identity, false merges, tracks that stay one person.")
    p.add_argument("run", type=Path, help="the reid-stream --output directory (its frames.jsonl may hold several "
                   "cameras, e.g. of reid-stream --site: then multi-camera IDF1, hand-overs and per-camera figures)")
    p.add_argument("--iou", type=float, default=0.5, help="IoU for a prediction to count as the person")
    p.add_argument("--gap", type=int, default=15, help="frames of absence that end a visit")
    p.add_argument("--pure-share", type=float, default=0.9,
                   help="share of a track's frames on one person for it to count as one person")
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    a = p.parse_args(argv)
    from reidstream.pipeline.tools.score_site import cameras_of, format_site_score, score_site  # it imports score

    try:
        frames = read_frames(a.run / FRAMES_FILE)
        multi = len(cameras_of(frames)) > 1
        s = (score_site if multi else score)(frames, iou=a.iou, gap_frames=a.gap, pure_share=a.pure_share)
    except (FileNotFoundError, ValueError) as e:
        print(f"reid-score: error: {e}", file=sys.stderr)
        return 2
    print(format_site_score(s) if multi else format_score(s))
    if a.json:
        a.json.write_text(json.dumps(s, indent=2) + "\n")
    return 0


__all__ = ["LIGHT_TRANSITIONS", "format_score", "score"]
