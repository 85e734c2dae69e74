"""Paper-style tables, atomic JSON and CMC plots."""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import pytest

from reidstream.training.evaluation.report import format_markdown_table, format_table, plot_cmc, write_json

RESULTS = {
    "Q:rgb G:depth": {"rank-1": {"mean": 26.94, "std": 1.81}, "rank-5": {"mean": 65.9, "std": 2.3},
                      "rank-10": {"mean": 84.1, "std": 3.1}, "mAP": {"mean": 27.3, "std": 1.7}},
    "Q:depth G:rgb": {"rank-1": {"mean": 29.2, "std": 2.3}, "rank-5": {"mean": 70.5, "std": 2.3},
                      "rank-10": {"mean": 88.1, "std": 0.9}},
}


def test_format_table_is_aligned_and_paper_shaped():
    text = format_table(RESULTS, title="Table 3: BIWI")
    lines = text.splitlines()
    assert lines[0] == "Table 3: BIWI"
    assert "Q:rgb G:depth" in text and "Q:depth G:rgb" in text
    assert "26.9 ± 1.8" in text and "rank-1 (%)" in text and "mAP (%)" in text
    assert "n/a" in lines[-2]  # the second scenario has no mAP
    assert len({len(line) for line in lines[1:]}) == 1  # rules, header and rows share one width
    header = lines[2]
    for row in lines[4:6]:
        assert row.index("±") < header.index("rank-1 (%)") + len("rank-1 (%)")


def test_format_markdown_table():
    text = format_markdown_table(RESULTS, title="Table 3", metrics=("rank-1", "mAP"))
    lines = text.splitlines()
    assert lines[0] == "**Table 3**"
    assert lines[2] == "| Scenario | rank-1 (%) | mAP (%) |"
    assert lines[3] == "| --- | ---: | ---: |"
    assert lines[4] == "| Q:rgb G:depth | 26.9 ± 1.8 | 27.3 ± 1.7 |"
    assert lines[5].endswith("| n/a |")


def test_write_json_is_atomic_and_converts_numpy(tmp_path):
    path = tmp_path / "nested" / "dir" / "result.json"
    payload = {"a": np.float32(1.5), "b": np.arange(3), "c": (1, 2), "d": float("nan"), "e": np.bool_(True)}
    assert write_json(path, payload) == path
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": [1, 2], "d": None, "e": True}
    write_json(path, {"x": 1})
    assert json.loads(path.read_text()) == {"x": 1}
    assert path.read_text().startswith('{\n  "x"')
    assert sorted(p.name for p in path.parent.iterdir()) == ["result.json"]


def test_plot_cmc_writes_a_png(tmp_path):
    curves = {"Q:rgb G:depth": np.linspace(27, 100, 20).tolist(), "Q:depth G:rgb": [29.0, 50.0, 70.0, 88.0]}
    path = plot_cmc(tmp_path / "plots" / "cmc.png", curves, title="BIWI")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(path))
    assert image is not None and image.ndim == 3 and image.shape[0] > 100 and image.std() > 0
    with pytest.raises(ValueError, match="curves"):
        plot_cmc(tmp_path / "x.png", {})
    with pytest.raises(ValueError, match="curves"):
        plot_cmc(tmp_path / "x.png", {"a": [1.0, float("nan")]})


def test_plot_cmc_without_matplotlib(tmp_path, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install reid-stream\[train\]"):
        plot_cmc(tmp_path / "cmc.png", {"a": [10.0, 20.0]})


def test_one_value_prints_no_spread_and_the_chance_map_is_a_column():
    one = {"Q:rgb G:depth": {"folds": 1, "mAP": {"mean": 11.0, "std": 0.0, "values": [11.0]},
                             "chance": {"mAP": 9.3, "cmc": [12.5, 25.0]}}}
    text = format_table(one, title="one fold", metrics=("mAP",))
    assert "±" not in text and "11.0" in text and "chance mAP (%)" in text and "9.3" in text
    many = {"Q:rgb G:depth": {"folds": 3, "mAP": {"mean": 11.0, "std": 1.5, "values": [9.5, 11.0, 12.5]}}}
    text = format_table(many, title="three folds", metrics=("mAP",))
    assert "11.0 ± 1.5" in text and "± = std over 3 values" in text and "3 fold(s)" in text


def test_cmc_plot_has_integer_rank_ticks_and_a_chance_curve(tmp_path):
    from reidstream.training.evaluation.report import cmc_figure

    curves = {"Q:rgb G:depth": [20.0, 30.0, 45.0, 50.0, 60.0, 62.0, 70.0, 75.0, 80.0, 85.0]}
    chance = {"Q:rgb G:depth": [100.0 * k / 8 for k in range(1, 11)]}
    fig = cmc_figure(curves, chance=chance, title="t")
    fig.canvas.draw()
    ax = fig.axes[0]
    ticks = [t for t in ax.get_xticks() if 1 <= t <= 10]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all("." not in s for s in labels), labels
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert "chance" in lines and lines["chance"].get_linestyle() == "--"
    assert np.allclose(lines["chance"].get_ydata(), chance["Q:rgb G:depth"])
    path = plot_cmc(tmp_path / "cmc.png", curves, chance=chance)
    assert cv2.imread(str(path)) is not None


def test_equal_chance_curves_are_one_line_and_different_ones_take_their_scenarios_colour():
    from reidstream.training.evaluation.report import cmc_figure

    flat, steep = [10.0, 20.0, 30.0], [25.0, 50.0, 75.0]
    curves = {"Q:rgb G:depth": [30.0, 40.0, 50.0], "Q:depth G:rgb": [35.0, 45.0, 55.0], "Q:rgb G:rgb": [60.0] * 3}
    same = cmc_figure(curves, chance={k: flat for k in curves})
    dashed = [ln for ln in same.axes[0].get_lines() if ln.get_linestyle() == "--"]
    assert [ln.get_label() for ln in dashed] == ["chance"] and list(dashed[0].get_ydata()) == flat
    mixed = cmc_figure(curves, chance={"Q:rgb G:depth": flat, "Q:depth G:rgb": flat, "Q:rgb G:rgb": steep})
    lines = mixed.axes[0].get_lines()
    solid = {ln.get_label(): ln.get_color() for ln in lines if ln.get_linestyle() == "-"}
    dashed = [ln for ln in lines if ln.get_linestyle() == "--" and len(ln.get_ydata())]
    assert [list(ln.get_ydata()) for ln in dashed] == [flat, steep]
    assert dashed[0].get_color() == "gray" and dashed[1].get_color() == solid["Q:rgb G:rgb"]  # shared: grey
    legend = [t.get_text() for t in mixed.axes[0].get_legend().get_texts()]
    assert legend == [*curves, "chance (dashed, in the scenario's colour)"]


def test_chance_rank1_column_from_the_chance_level_or_its_curve():
    results = {"a": {"mAP": 11.0, "chance": {"mAP": 9.3, "rank-1": 4.2, "cmc": [4.2, 8.4]}},
               "b": {"mAP": 12.0, "chance": {"mAP": 7.1, "cmc": [12.5, 25.0]}},
               "c": {"mAP": 13.0}}
    lines = format_table(results, title="t", metrics=("mAP",)).splitlines()
    assert lines[2].split("  ")[-2:] == ["chance mAP (%)", "chance rank-1 (%)"]
    assert lines[4].split()[-2:] == ["9.3", "4.2"] and lines[5].split()[-2:] == ["7.1", "12.5"]
    assert lines[6].split()[-2:] == ["n/a", "n/a"]
