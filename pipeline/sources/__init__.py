"""Frame sources: cameras, recordings and the simulated camera."""

from reidstream.pipeline.sources.base import AnnotatedFrame, Source, SourceError

__all__ = ["AnnotatedFrame", "Source", "SourceError"]
