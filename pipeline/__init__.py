"""reid-stream live system: typed stage values, sources, the simulated camera world, recordings."""

from reidstream.pipeline.types import (Alignment, Crops, DepthUnit, Detections, Embeddings, Frame, Intrinsics, Match,
                                       Modality, PersonAnnotation)

__all__ = ["Alignment", "Crops", "DepthUnit", "Detections", "Embeddings", "Frame", "Intrinsics", "Match",
           "Modality", "PersonAnnotation"]
