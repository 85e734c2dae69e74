"""Losses of Hafner et al. (2022): triplet (Eq. 5), softmax (Eq. 6), embedding distillation (Eq. 3)."""

from .distill import embedding_mse
from .identity import softmax_loss
from .triplet import batch_hard_triplet, batch_hard_triplet_stats, pairwise_euclidean

__all__ = ["batch_hard_triplet", "batch_hard_triplet_stats", "embedding_mse", "pairwise_euclidean",
           "softmax_loss"]
