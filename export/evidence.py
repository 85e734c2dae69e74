"""Fitting the gallery's evidence calibration from tracks with ground truth (``reid-export calibrate``).

Input: :class:`~reidstream.pipeline.eval.collect.TrackRecord` lists, one per labelled recording, cut by
the live pipeline itself (so the crops are the ones the gallery will see: border-cut, occluded, far,
lit and dark). Pairs are formed as the gallery forms them: a track's first ``pending_s`` (the query)
against the whole of every track that ended before it started (a stored visit). Tracks whose frames
are less than ``min_purity`` one person are left out.

1. Per cue and light condition: the distances of same-person and different-person pairs give a
   :class:`~reidstream.pipeline.gallery.calibration.CueModel` (logistic for embeddings and colour,
   Gaussian for height and width; a light condition with too few pairs falls back to all lights).
   A cue whose AUC is below ``min_auc`` gets weight 0.
2. Fusion weights: :func:`~reidstream.pipeline.gallery.calibration.fit_weights` on the per-cue LLRs.
3. Thresholds: the gallery is replayed per recording in time order. A track whose person was not seen
   before is a *stranger*; its best score over the earlier people (fused LLR, best visit each) is what
   would merge it. A returning person's best score over everyone *but* themselves is also a stranger's
   score (what they would score had they never been seen: the gallery minus one identity), so a
   return can stand for a stranger too (without it a light condition with few first-time
   visitors, typically the dark, sets its threshold from the maximum of a dozen values); this is done
   for a light condition with fewer than ``min_first`` first-time visitors. The threshold is
   one that at most ``false_merge_rate`` of the strangers exceed and that best separates returns from
   strangers, in the middle of its range (:func:`choose_threshold`), separately for tracks seen lit and
   seen dark (fewer cues in the dark: smaller scores for everyone) when there are ``min_dark`` dark
   strangers. Returning people's acceptance at each threshold is reported with it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Sequence

import numpy as np

from reidstream.pipeline.eval.collect import TrackRecord
from reidstream.pipeline.gallery.calibration import (ANY_LIGHT, LIGHTS, Calibration, CueModel, fit_gauss,
                                                     fit_logistic, fit_weights)
from reidstream.pipeline.gallery.evidence import VisitTable
from reidstream.pipeline.gallery.fusion import MEASURES, cue_distances, fused_llr, light_classes, per_identity


def _pairs(records: Sequence[TrackRecord], min_purity: float):
    """Per recording: (queries, table, valid pair mask Q x R, same mask, query person, row person)."""
    by_seq: dict[str, list[TrackRecord]] = defaultdict(list)
    for r in records:
        if r.person >= 0 and r.purity >= min_purity:
            by_seq[r.sequence].append(r)
    for seq, recs in sorted(by_seq.items()):
        recs.sort(key=lambda r: r.start)
        table = VisitTable()
        rows = [table.add(0, r.track, r.full, r.start, r.end) for r in recs]
        rows = np.array(rows)
        end = table.end[rows]
        start = np.array([r.start for r in recs])
        person = np.array([r.person for r in recs])
        valid = np.zeros((len(recs), table.capacity), bool)
        valid[:, rows] = end[None, :] < start[:, None]
        same = np.zeros_like(valid)
        same[:, rows] = person[:, None] == person[None, :]
        row_person = np.full(table.capacity, -1)
        row_person[rows] = person
        yield seq, [r.early for r in recs], table, valid, same, person, row_person


def fit_calibration(records: Sequence[TrackRecord], *, false_merge_rate: float = 0.05, min_auc: float = 0.6,
                    min_purity: float = 0.8, min_pairs: int = 20, source: str = "",
                    progress: Callable[[str], None] | None = None) -> Calibration:
    """Fits every cue, the fusion weights and the open-set threshold (see the module docstring).

    Raises:
        ValueError: too few labelled tracks for any cue.
    """
    say = progress or (lambda _m: None)
    data: dict[tuple[str, str], dict[str, list]] = defaultdict(lambda: {"ds": [], "vs": [], "dd": [], "vd": []})
    seqs = list(_pairs(records, min_purity))
    for _, queries, table, valid, same, _, _ in seqs:
        lights = light_classes(queries, table)
        for cue, d, var, ok in cue_distances(queries, table):
            var = np.broadcast_to(var, d.shape)
            for light, mask in lights.items():
                for cls, sel in (("s", ok & valid & same & mask), ("d", ok & valid & ~same & mask)):
                    for key in ((cue, light), (cue, ANY_LIGHT)):
                        data[key]["d" + cls].append(d[sel])
                        data[key]["v" + cls].append(var[sel])
    cues: dict[str, CueModel] = {}
    for (cue, light), parts in sorted(data.items()):
        ds, dd = np.concatenate(parts["ds"]), np.concatenate(parts["dd"])
        if len(ds) < min_pairs or len(dd) < min_pairs:
            continue
        if cue in MEASURES:  # per light too: in the dark, holes in the depth make wrong heights more frequent
            m = fit_gauss(ds, np.concatenate(parts["vs"]), dd, np.concatenate(parts["vd"]))
        else:
            m = fit_logistic(ds, dd)
        m.weight = 1.0 if m.auc >= min_auc else 0.0
        cues[f"{cue}|{light}"] = m
        say(f"cue {cue:<28} {light:<9} AUC {m.auc:.3f}  pairs {m.n_same} same / {m.n_diff} different"
            f"{'' if m.weight else '  (below min AUC: weight 0)'}")
    if not cues:
        raise ValueError("calibration: too few labelled track pairs for any cue; record longer sequences with more "
                         "returning people")
    for name in {key.split("|")[0] for key in cues}:  # one model per light, so each can get its own weight
        pooled = cues.pop(f"{name}|{ANY_LIGHT}", None)
        for light in LIGHTS:
            if f"{name}|{light}" not in cues and pooled is not None:
                cues[f"{name}|{light}"] = CueModel(**vars(pooled))
    cal = Calibration(cues, threshold=0.0, false_merge_rate=false_merge_rate, min_auc=min_auc, source=source)
    _fit_weights(cal, seqs, say)
    _fit_threshold(cal, seqs, false_merge_rate, say)
    return cal


def _fit_weights(cal: Calibration, seqs, say: Callable[[str], None]) -> None:
    """Fusion weights per light condition (the cues present differ: no colour in the dark)."""
    names = sorted(cal.cue_names())
    columns: dict[str, list] = {light: [] for light in LIGHTS}
    labels: dict[str, list] = {light: [] for light in LIGHTS}
    for _, queries, table, valid, same, _, _ in seqs:
        lights = light_classes(queries, table)
        cols = {}
        for cue, d, var, ok in cue_distances(queries, table):
            if cue not in names:
                continue
            llr = np.zeros(d.shape)
            for light, mask in lights.items():
                m = cal.model(cue, light)
                if m is not None:
                    sel = ok & mask
                    llr[sel] = m.llr(d[sel], var[sel] if isinstance(var, np.ndarray) else var)
            cols[cue] = llr
        for light, mask in lights.items():
            sel = valid & mask
            columns[light].append(np.stack([cols[n][sel] if n in cols else np.zeros(int(sel.sum())) for n in names],
                                           axis=1))
            labels[light].append(same[sel])
    cal.figures["fusion_weights"] = {}
    for light in LIGHTS:
        x, y = np.concatenate(columns[light]), np.concatenate(labels[light])
        if y.sum() < 5 or (1 - y).sum() < 5:
            continue  # too few pairs in this light: the cues keep weight 1
        w = fit_weights(x, y)
        for n, v in zip(names, w):
            m = cal.cues.get(f"{n}|{light}")
            if m is not None and m.weight > 0:
                m.weight = float(v)
        cal.figures["fusion_weights"][light] = {n: round(float(v), 3) for n, v in zip(names, w)}
        say(f"fusion weights {light}: " + ", ".join(f"{n} {v:.2f}" for n, v in zip(names, w) if v > 0))


def choose_threshold(strangers: Sequence[float], returns: Sequence[tuple[float, float]], rate: float) -> float:
    """The open-set threshold on fused evidence for one light condition (step 3 of the module docstring).

    Among the thresholds that at most ``rate`` of the ``strangers`` exceed, the one that maximises
    ``right - wrong - merged``: the shares of returns that join their own identity (``own > t`` and no
    other above it), of returns that join another one, and of strangers that join anyone. That value is
    constant between consecutive observed scores, so the middle of the best such interval is taken (the
    largest margin on both sides) rather than its lower edge, which sits exactly on a stranger's score.
    Never below 0 (a track never joins on evidence against it).

    Args:
        strangers: Best score of each stranger over the identities already seen.
        returns: ``(score of the person's own identity, best score of any other)`` per return.
        rate: The false-merge rate: the most strangers allowed to join a known identity.
    """
    s = np.sort(np.asarray(strangers, np.float64))
    r = np.asarray(returns, np.float64).reshape(-1, 2)
    own, other = r[:, 0], r[:, 1]
    values = np.concatenate([s, own, other])
    cand = np.unique(np.maximum(values[np.isfinite(values)], 0.0))
    if not len(s) or not len(cand):
        return 0.0
    merged = 1.0 - np.searchsorted(s, cand, side="right") / len(s)  # share of strangers above each candidate
    right = ((own[None, :] > cand[:, None]) & (own >= other)[None, :]).mean(1) if len(r) else np.zeros(len(cand))
    wrong = ((other[None, :] > cand[:, None]) & (other > own)[None, :]).mean(1) if len(r) else np.zeros(len(cand))
    value = np.where(merged <= rate + 1e-12, right - wrong - merged, -np.inf)
    best = int(np.argmax(value))
    end = best
    while end + 1 < len(cand) and value[end + 1] == value[best]:
        end += 1
    return float(cand[best] if end + 1 == len(cand) else 0.5 * (cand[best] + cand[end + 1]))


def _fit_threshold(cal: Calibration, seqs, rate: float, say: Callable[[str], None], min_dark: int = 10,
                   min_first: int = 50) -> None:
    """The open-set thresholds: one for tracks seen lit, one for tracks seen in the dark when there are enough.

    A light condition with fewer than ``min_first`` first-time visitors also takes its returns scored
    without their own identity as strangers (see the module docstring).
    """
    first: dict[bool, list[float]] = {True: [], False: []}  # first-time visitors' best score
    loo: dict[bool, list[float]] = {True: [], False: []}  # returns' best score over everyone else
    returns: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for _, queries, table, valid, _, person, row_person in seqs:
        fused = fused_llr(queries, table, cal)
        fused = np.where(valid, fused, -np.inf)
        owners = np.maximum(row_person, 0)
        score = per_identity(fused, owners, table.used & (row_person >= 0), int(owners.max()) + 1)
        for t, p in enumerate(person):
            seen = np.isfinite(score[t])
            if not seen.any():
                continue
            lit = bool(queries[t].lit)
            if not seen[p]:
                first[lit].append(float(score[t][seen].max()))
                continue
            others = np.where(np.arange(score.shape[1]) == p, -np.inf, score[t])
            returns[lit].append((float(score[t, p]), float(others.max())))
            if np.isfinite(others.max()):
                loo[lit].append(float(others.max()))
    strangers = {lit: first[lit] + (loo[lit] if len(first[lit]) < min_first else []) for lit in (True, False)}
    if not first[True] and not first[False]:
        raise ValueError("calibration: no first-time visitor after another person was seen; record longer sequences")

    lit_returns = returns[True] if strangers[True] else returns[True] + returns[False]
    cal.threshold = choose_threshold(strangers[True] or strangers[False], lit_returns, rate)
    cal.dark_threshold = choose_threshold(strangers[False], returns[False], rate) \
        if len(strangers[False]) >= min_dark else None
    rate_or_none = lambda v: None if np.isnan(v) else round(v, 4)  # noqa: E731 - JSON has no NaN
    mean_or_nan = lambda v: float(np.mean(v)) if len(v) else float("nan")  # noqa: E731
    for lit, name in ((True, "lit"), (False, "dark")):
        th = cal.threshold_for(lit)
        own = np.array([r[0] for r in returns[lit]]) if returns[lit] else np.zeros(0)
        other = np.array([r[1] for r in returns[lit]]) if returns[lit] else np.zeros(0)
        merged = mean_or_nan(np.array(strangers[lit]) > th)
        merged_first = mean_or_nan(np.array(first[lit]) > th)
        right = mean_or_nan((own > th) & (own >= other))
        wrong = mean_or_nan((other > th) & (other > own))
        cal.figures[name] = {"threshold": round(th, 3), "strangers": len(strangers[lit]),
                             "first_visits": len(first[lit]), "first_visits_merged": rate_or_none(merged_first),
                             "strangers_merged": rate_or_none(merged), "returns": len(own),
                             "returns_right": rate_or_none(right), "returns_wrong": rate_or_none(wrong)}
        say(f"{name} tracks: threshold {th:.2f} (fused LLR): strangers merged {100 * merged:.1f}% of "
            f"{len(strangers[lit])} ({len(first[lit])} first visits: {100 * merged_first:.1f}% merged; "
            f"{len(strangers[lit]) - len(first[lit])} returns scored without their own identity); returns to the "
            f"right identity {100 * right:.1f}%, to a wrong one {100 * wrong:.1f}% of {len(own)}")


__all__ = ["choose_threshold", "fit_calibration"]
