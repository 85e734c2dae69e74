"""reid-vi-report's markdown: the table and the verdicts on the papers' orderings."""

from __future__ import annotations

from reidstream.training.vi_report import write_report


def _res(ir2rgb: list[float], rgb2ir: list[float]) -> list[dict]:
    def one(v: float) -> dict:
        return {m: {"mean": v} for m in ("rank-1", "mAP", "mINP")}
    return [{"Q:ir G:rgb": one(a), "Q:rgb G:ir": one(b)} for a, b in zip(ir2rgb, rgb2ir)]


def test_report_table_and_verdicts(tmp_path):
    results = {"agw": _res([10, 12], [10, 12]), "lupi": _res([20, 22], [21, 23]), "eat": _res([10.5, 11], [5, 6]),
               "dual_align": _res([10.5, 11.5], [5.2, 6.2])}
    text = write_report(results, {"Q:ir G:rgb": 5.0, "Q:rgb G:ir": 6.0}, out=tmp_path / "r.md", setup="setup")
    assert (tmp_path / "r.md").read_text() == text
    assert "| LUPI | 21.0 ± 1.0 | 21.0 ± 1.0 |" in text and "| chance (random embeddings) | – | 5.0 |" in text
    lines = {line.split(":")[0]: line for line in text.splitlines() if line.startswith("- ")}
    assert "**Here: holds**" in lines["- LUPI > AGW"]
    assert "does not hold" in lines["- EAT + CMKD > AGW"]  # clear in RGB -> IR (5.5 vs 11.0)
    assert "undecided" in lines["- Dual-alignment > EAT + CMKD on SYSU-MM01 all-search single-shot, across papers"]


def test_report_has_imagenet_rows_beside_the_from_scratch_ones(tmp_path):
    results = {"lupi": _res([9, 10], [10, 11]), "lupi-imagenet": _res([30, 32], [31, 33]),
               "imagenet-features": _res([17], [19])}
    text = write_report(results, {"Q:ir G:rgb": 5.0, "Q:rgb G:ir": 6.0}, out=tmp_path / "r.md", setup="setup")
    rows = [line.split(" |")[0] for line in text.splitlines() if line.startswith("| ")]
    assert rows[1:4] == ["| LUPI", "| LUPI (ImageNet init)", "| untrained ImageNet features (EfficientNet-Lite0, no "
                                                            "fine-tuning)"]
    assert "| LUPI (ImageNet init) | 31.0 ± 1.0 | 31.0 ± 1.0 |" in text


def test_rgb_rgb_column_scores_other_cameras_only(tmp_path):
    import numpy as np

    from reidstream.training.evaluation.protocols import FeatureSet
    from reidstream.training.vi_report import RGB_RGB, rgb_rgb

    pids = np.repeat(np.arange(4), 2)
    cams = np.tile([0, 1], 4)
    # same-camera duplicates would be perfect matches; across cameras the person is found only by its own vector
    emb = np.eye(4)[pids] + 0.01 * cams[:, None]
    r = rgb_rgb({"rgb": FeatureSet(emb.astype(np.float32), pids, cams, np.arange(8), "rgb")})
    assert r["mAP"]["mean"] == 100.0 and r["rank-1"]["mean"] == 100.0
    results = {"lupi": [{**_res([9], [10])[0], RGB_RGB: {"mAP": {"mean": 40.0}}}]}
    text = write_report(results, {"Q:ir G:rgb": 5.0, "Q:rgb G:ir": 6.0, RGB_RGB: 3.0}, out=tmp_path / "r.md",
                        setup="setup")
    assert "RGB → RGB (other cameras) mAP |" in text and "| 40.0 ± 0.0 |" in text and "| 3.0 |" in text
