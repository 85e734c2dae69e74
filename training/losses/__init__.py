"""Losses: Hafner et al. (triplet Eq. 5, softmax Eq. 6, distillation Eq. 3) and the visible-infrared methods.

Visible-infrared: AGW's weighted-regularisation triplet, LUPI's intermediate dual
triplet and colour-free loss (seed 004), the enumerate angular triplet and CMKD of
Gao et al. (seed 002), the distribution and correlation losses of Hao et al. (seed 003).
"""

from .angular import compactness, enumerate_angular_triplet
from .cmkd import cmkd_loss
from .distill import embedding_mse
from .dual_align import correlation_loss, distribution_loss
from .identity import softmax_loss
from .lupi import colour_free_loss, intermediate_dual_triplet
from .triplet import batch_hard_triplet, batch_hard_triplet_stats, pairwise_euclidean
from .wrt import weighted_regularization_triplet

__all__ = ["batch_hard_triplet", "batch_hard_triplet_stats", "cmkd_loss", "colour_free_loss", "compactness",
           "correlation_loss", "distribution_loss", "embedding_mse", "enumerate_angular_triplet",
           "intermediate_dual_triplet", "pairwise_euclidean", "softmax_loss", "weighted_regularization_triplet"]
