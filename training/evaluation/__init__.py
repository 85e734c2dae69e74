"""Evaluation of re-identification embeddings (numpy only; matplotlib only for plots).

* :mod:`.metrics`: distances, single-gallery-shot and full-gallery CMC, mAP, mINP.
* :mod:`.protocols`: :class:`FeatureSet` and the protocol of Hafner et al., CVIU 2022,
  Sec. 4.3 (single- and cross-modal scenarios, fold aggregation).
* :mod:`.report`: paper-style text / Markdown tables, atomic JSON, CMC plots.
"""

from reidstream.training.evaluation.metrics import (
    average_precision,
    cmc_all,
    cmc_from_ranks,
    cmc_single_gallery_shot,
    inverse_negative_penalty,
    mean_average_precision,
    mean_inverse_negative_penalty,
    minp,
    pairwise_distances,
    single_gallery_shot_ranks,
)
from reidstream.training.evaluation.protocols import (
    FeatureSet,
    aggregate,
    aggregate_scenarios,
    cross_modal_evaluation,
    hafner_protocol,
    scenario_key,
    single_modal_evaluation,
)
from reidstream.training.evaluation.report import format_markdown_table, format_table, plot_cmc, write_json

__all__ = [
    "FeatureSet",
    "aggregate",
    "aggregate_scenarios",
    "average_precision",
    "cmc_all",
    "cmc_from_ranks",
    "cmc_single_gallery_shot",
    "cross_modal_evaluation",
    "format_markdown_table",
    "format_table",
    "hafner_protocol",
    "inverse_negative_penalty",
    "mean_average_precision",
    "mean_inverse_negative_penalty",
    "minp",
    "pairwise_distances",
    "plot_cmc",
    "scenario_key",
    "single_gallery_shot_ranks",
    "single_modal_evaluation",
    "write_json",
]
