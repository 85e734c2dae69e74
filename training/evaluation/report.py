"""Reports of protocol results: tables shaped like Hafner et al., CVIU 2022, Tables 1-5, JSON and CMC plots.

Tables have one row per scenario and one ``"<metric> (%)"`` column per metric, with cells
``"mean ± std"`` (one decimal) and ``"n/a"`` where a scenario lacks the metric. The ``±`` is shown
only where the std was measured over more than one value (random gallery draws, pooled over
folds); a table with any ``±`` ends with a line saying over how many values it is taken. Where the
results carry a ``"chance"`` level (see :func:`.protocols.hafner_protocol` and
:mod:`.vi_protocols`), ``chance mAP (%)`` and ``chance rank-1 (%)`` columns follow.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from reidstream.pipeline.atomic import atomic_write_text

_METRICS = ("rank-1", "rank-5", "rank-10", "mAP")


def format_table(results: Mapping[str, Mapping], *, title: str, metrics: Sequence[str] = _METRICS) -> str:
    """Plain-text table with aligned columns, like the paper's tables.

    Args:
        results: Protocol results keyed by scenario (e.g. ``"Q:rgb G:depth"``).
        title: First line of the table.
        metrics: Metric keys to show, one column each.

    Returns:
        The table; the first column is left-aligned, metric columns right-aligned.
    """
    header, rows = _cells(results, metrics)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    rule = "-" * len(line(header))
    return "\n".join([str(title), rule, line(header), rule, *(line(r) for r in rows), rule,
                      *_spread_note(results, metrics)]) + "\n"


def format_markdown_table(results: Mapping[str, Mapping], *, title: str, metrics: Sequence[str] = _METRICS) -> str:
    """The same table as :func:`format_table`, in Markdown (bold title line, then the table)."""
    header, rows = _cells(results, metrics)
    esc = [[c.replace("|", "\\|") for c in r] for r in [header, *rows]]
    align = ["---"] + ["---:"] * (len(header) - 1)
    lines = [f"**{title}**", "", "| " + " | ".join(esc[0]) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return "\n".join(lines) + "\n"


def write_json(path: str | os.PathLike, payload) -> Path:
    """Writes ``payload`` as indented JSON atomically (temporary file, then ``os.replace``).

    Numpy scalars and arrays, tuples and paths are converted; NaN and infinities become
    ``null`` so the file is strict JSON. Parent folders are created.

    Args:
        path: Destination file.
        payload: JSON-able data.

    Returns:
        The destination path.
    """
    text = json.dumps(_jsonable(payload), indent=2, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


def plot_cmc(path: str | os.PathLike, curves: Mapping[str, Sequence[float]], *, title: str = "CMC",
             chance: Mapping[str, Sequence[float]] | None = None) -> Path:
    """Writes a PNG of CMC curves: rank 1..N on x, matching rate (%) on y, one line per scenario.

    Uses matplotlib's Agg canvas directly (no pyplot, no global backend change).

    Args:
        path: Destination PNG; parent folders are created.
        curves: Matching rates in percent by scenario name, e.g. the ``"cmc"`` of results.
        title: Plot title.
        chance: Chance CMC curves (%) by scenario name (the results' ``"chance"["cmc"]``), drawn
            dashed; equal curves are drawn once.

    Returns:
        The destination path.

    Raises:
        ValueError: If ``curves`` is empty or a curve is not a non-empty finite 1-D sequence.
        ImportError: If matplotlib is not installed.
    """
    if not curves:
        raise ValueError("curves: expected at least one named curve, got none")
    fig = cmc_figure(curves, title=title, chance=chance)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def cmc_figure(curves: Mapping[str, Sequence[float]], *, title: str = "CMC",
               chance: Mapping[str, Sequence[float]] | None = None):
    """The matplotlib ``Figure`` of :func:`plot_cmc` (integer rank ticks, dashed chance curves).

    One chance level is a grey dashed curve labelled ``chance``; several (VI settings with
    their own galleries) are dashed in their scenario's colour under one legend entry. With
    more than four scenarios the legend goes below the axes.

    Args:
        curves: Matching rates in percent by scenario name.
        title: Plot title.
        chance: Chance CMC curves (%) by scenario name, or None.

    Returns:
        A ``matplotlib.figure.Figure`` on an Agg canvas.

    Raises:
        ValueError: If ``curves`` is empty or a curve is not a non-empty finite 1-D sequence.
        ImportError: If matplotlib is not installed.
    """
    if not curves:
        raise ValueError("curves: expected at least one named curve, got none")
    data = {}
    for name, c in curves.items():
        a = np.asarray(c, dtype=float)
        if a.ndim != 1 or a.size == 0 or not np.isfinite(a).all():
            raise ValueError(f"curves[{name!r}]: expected a non-empty finite 1-D sequence, got shape {a.shape}")
        data[str(name)] = a
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as exc:
        raise ImportError("plot_cmc needs matplotlib: pip install reid-stream[train]") from exc
    many = len(data) > 4  # a legend below the axes, not over the curves
    fig = Figure(figsize=(6.0, 4.5 + (0.22 * ((len(data) + 1) // 2 + 1) if many else 0.0)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    colour = {}
    for name, a in data.items():
        colour[name] = ax.plot(np.arange(1, len(a) + 1), a, marker="o", markersize=3, label=name)[0].get_color()
    groups: list[tuple[np.ndarray, list[str]]] = []  # equal chance curves are drawn once
    for name, c in (chance or {}).items():
        a = np.asarray(c, dtype=float)
        if a.ndim != 1 or a.size == 0 or not np.isfinite(a).all():
            raise ValueError(f"chance[{name!r}]: expected a non-empty finite 1-D sequence, got shape {a.shape}")
        same = next((g for g in groups if len(g[0]) == len(a) and np.allclose(g[0], a)), None)
        if same is None:
            groups.append((a, [str(name)]))
        else:
            same[1].append(str(name))
    for a, names in groups:
        # one chance level: grey; several: each in its scenario's colour (grey where scenarios share it)
        own = colour.get(names[0]) if len(groups) > 1 and len(names) == 1 else None
        ax.plot(np.arange(1, len(a) + 1), a, linestyle="--", color=own or "gray", linewidth=1,
                label="chance" if len(groups) == 1 else "_nolegend_")
    if len(groups) > 1:  # one legend entry for all of them
        ax.plot([], [], linestyle="--", color="gray", linewidth=1, label="chance (dashed, in the scenario's colour)")
    longest = max(len(a) for a in data.values())
    ax.set_xlim(1, max(longest, 2))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, 100)
    ax.set_xlabel("Rank")
    ax.set_ylabel("Matching rate (%)")
    ax.set_title("\n".join(textwrap.wrap(str(title), 70)) or " ", fontsize="medium")
    ax.grid(True, alpha=0.3)
    if many:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize="small", frameon=False)
    else:
        ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig


def _cells(results: Mapping[str, Mapping], metrics: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    if not isinstance(results, Mapping):
        raise ValueError(f"results: expected a mapping of scenario name to result, got {type(results).__name__}")
    metrics = list(metrics)
    if not metrics:
        raise ValueError("metrics: expected at least one metric name, got none")
    header = ["Scenario"] + [f"{m} (%)" for m in metrics]
    rows = [[str(name)] + [_cell(res.get(m) if isinstance(res, Mapping) else None) for m in metrics]
            for name, res in results.items()]
    for key in ("mAP", "rank-1"):
        if any(_chance(r, key) is not None for r in results.values()):
            header.append(f"chance {key} (%)")
            for row, res in zip(rows, results.values()):
                c = _chance(res, key)
                row.append("n/a" if c is None else f"{c:.1f}")
    return header, rows


def _chance(res, key: str) -> float | None:
    """The chance level ``key`` (``"mAP"``, ``"rank-1"``: else the first point of its ``"cmc"``) of a result."""
    c = res.get("chance") if isinstance(res, Mapping) else None
    if not isinstance(c, Mapping):
        return None
    v = c.get(key)
    if v is None and key == "rank-1" and isinstance(c.get("cmc"), Sequence) and len(c["cmc"]):
        v = c["cmc"][0]
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def _spread_note(results: Mapping[str, Mapping], metrics: Sequence[str]) -> list[str]:
    """The line saying over what the ``±`` is taken (none when no cell shows one)."""
    counts = sorted({len(v["values"]) for r in results.values() if isinstance(r, Mapping) for m in metrics
                     for v in [r.get(m)] if isinstance(v, Mapping) and "values" in v and _has_spread(v)})
    if not counts:
        return []
    n = "/".join(map(str, counts))
    folds = {r.get("folds") for r in results.values() if isinstance(r, Mapping)} - {None}
    over = f", pooled over {'/'.join(map(str, sorted(folds)))} fold(s)" if folds else ""
    return [f"± = std over {n} values (random gallery draws or trials{over})"]


def _has_spread(v: Mapping) -> bool:
    values = v.get("values")
    return not (isinstance(values, Sequence) and len(values) <= 1)


def _cell(v) -> str:
    if isinstance(v, Mapping) and "mean" in v:
        mean, std = v["mean"], v.get("std")
        if mean is None or not math.isfinite(mean):
            return "n/a"
        if std is None or not math.isfinite(std) or not _has_spread(v):
            return f"{mean:.1f}"
        return f"{mean:.1f} ± {std:.1f}"
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v):
        return f"{float(v):.1f}"
    return "n/a"


def _jsonable(obj):
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in (obj.tolist() if isinstance(obj, np.ndarray) else obj)]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj
