"""The rolling cross-modal gallery of the live pipeline.

Long-term identities, each with recent embeddings per embedding space; a frame's
tracks are matched to them by optimal assignment (open set, cosine distance),
and the gallery is saved atomically to one ``.npz`` file.
"""

from __future__ import annotations

from reidstream.pipeline.gallery.persist import FORMAT, load_gallery, save_gallery
from reidstream.pipeline.gallery.store import Gallery, GalleryConfig

__all__ = ["FORMAT", "Gallery", "GalleryConfig", "load_gallery", "save_gallery"]
