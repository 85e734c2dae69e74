"""Multi-camera figures of ``reid-score``: one ``frames.jsonl`` with the frames of several cameras.

A multi-camera run into one gallery (``reid-stream --site``) logs every camera into one file; here the
identities are scored over all cameras together (multi-camera IDF1), people walking from one camera to another
(hand-overs), and each camera alone with :func:`~reidstream.pipeline.tools.score.score`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from reidstream.pipeline.sinks.score_log import LoggedFrame
from reidstream.pipeline.tools.score import _assign, _light, _of, _pct, _visits, format_score, score


def cameras_of(frames: Sequence[LoggedFrame]) -> list[str]:
    """The cameras of a run, in order of first appearance."""
    return list(dict.fromkeys(f.camera for f in frames))


def score_site(frames: Sequence[LoggedFrame], *, iou: float = 0.5, gap_frames: int = 15,
               pure_share: float = 0.9) -> dict[str, Any]:
    """Multi-camera figures of a run over several cameras into one gallery (one ``frames.jsonl``).

    - *Multi-camera IDF1*: IDF1 (IDP, IDR) with one matching of pipeline identity names to global ground-truth
      person ids over the frames of all cameras together (a frame is a (camera, index)).
    - *Hand-over*: a person's matched visit to camera B that follows (by the site clock, the ``time`` of the
      visits' first frames) their previous matched visit, which was to another camera A. It is *correct* when
      the visit's majority identity in B equals the majority identity of that visit in A. Visits are cut per
      camera as in :func:`score` (``gap_frames`` of that camera's lines); unmatched visits are left out.
    - *Per camera*: :func:`score` of each camera's frames alone.

    Raises:
        ValueError: the frames come from fewer than two cameras.
    """
    from trackers.eval import compute_identity_metrics

    cams = cameras_of(frames)
    if len(cams) < 2:
        raise ValueError(f"score_site: expected frames of two or more cameras, got {cams}")
    codes, gt_ids, pr_ids, sims, matched, _ = _assign(frames, iou)
    ident = compute_identity_metrics(gt_ids, pr_ids, sims, threshold=iou)
    visits: list[dict] = []
    for cam in cams:
        lines = [k for k, f in enumerate(frames) if f.camera == cam]
        sub = [frames[k] for k in lines]
        for person, runs in _visits(sub, gap_frames).items():
            for run in runs:
                got = Counter(matched[lines[k]].get(person) for k in run if matched[lines[k]].get(person))
                if got:
                    first = frames[lines[run[0]]]
                    visits.append({"person": person, "camera": cam, "time": first.time, "frame": first.index,
                                   "light": _light(Counter(sub[k].condition for k in run).most_common(1)[0][0]),
                                   "identity": got.most_common(1)[0][0]})
    visits.sort(key=lambda v: (v["person"], v["time"], cams.index(v["camera"])))
    handovers = [{"person": b["person"], "from": a["camera"], "to": b["camera"], "time": b["time"],
                  "frame": b["frame"], "light": f"{a['light']}->{b['light']}", "previous_identity": a["identity"],
                  "identity": b["identity"], "correct": a["identity"] == b["identity"]}
                 for a, b in zip(visits, visits[1:]) if a["person"] == b["person"] and a["camera"] != b["camera"]]
    by_cameras: dict[str, dict] = {}
    for h in handovers:
        row = by_cameras.setdefault(f"{h['from']}->{h['to']}", {"handovers": 0, "correct": 0})
        row["handovers"] += 1
        row["correct"] += h["correct"]
    for row in by_cameras.values():
        row["rate"] = _pct(row["correct"], row["handovers"])
    correct = sum(h["correct"] for h in handovers)
    return {"cameras": cams, "frames": len(frames),
            "frames_by_camera": {c: sum(f.camera == c for f in frames) for c in cams},
            "gt_people": len({int(i) for f in frames for i in f.gt_ids}), "identities_created": len(codes),
            "IDF1": 100 * float(ident["IDF1"]), "IDP": 100 * float(ident["IDP"]), "IDR": 100 * float(ident["IDR"]),
            "handovers": len(handovers), "handovers_correct": correct, "handover_rate": _pct(correct, len(handovers)),
            "handover_by_cameras": by_cameras, "handover_details": handovers,
            "per_camera": {c: score([f for f in frames if f.camera == c], iou=iou, gap_frames=gap_frames,
                                    pure_share=pure_share) for c in cams}}


def format_site_score(s: dict[str, Any]) -> str:
    """The multi-camera score (:func:`score_site`) as a short table, then :func:`format_score` per camera."""
    out = [
        f"cameras                  {', '.join(s['cameras'])}",
        f"frames scored            {s['frames']}  (" + ", ".join(f"{c} {n}" for c, n in s["frames_by_camera"].items())
        + ")",
        f"people (ground truth)    {s['gt_people']}",
        f"identities created       {s['identities_created']}",
        f"multi-camera IDF1        {s['IDF1']:.1f}%  (IDP {s['IDP']:.1f}%, IDR {s['IDR']:.1f}%; one identity per "
        f"person over all cameras)",
        f"hand-overs correct       {_of(s['handovers_correct'], s['handovers'])}  (identity in the new camera = "
        f"the one in the previous camera)",
    ]
    if s["handover_by_cameras"]:
        out.append("  by cameras: " + ", ".join(f"{k} {_of(v['correct'], v['handovers'])}"
                                              for k, v in s["handover_by_cameras"].items()))
    for cam, cs in s["per_camera"].items():
        out += ["", f"camera {cam}:"] + ["  " + line for line in format_score(cs).splitlines()]
    return "\n".join(out)


__all__ = ["cameras_of", "format_site_score", "score_site"]
