"""The cross-modal gallery of the live pipeline (see docs/identity.md).

An identity is a set of per-visit prototypes (``evidence``); each cue's distance becomes a calibrated
log-likelihood ratio (``calibration``), the cues are summed (``fusion``) and a track takes or creates an
identity once it has collected enough evidence (``store``, ``decide``); the gallery is saved atomically to
one ``.npz`` file (``persist``), and every change in between to an append-only journal (``journal``).
"""

from __future__ import annotations

from reidstream.pipeline.gallery.config import GalleryConfig
from reidstream.pipeline.gallery.journal import GalleryJournal, Mutation, journal_path, replay
from reidstream.pipeline.gallery.persist import FORMAT, load_gallery, save_gallery
from reidstream.pipeline.gallery.store import Gallery

__all__ = ["FORMAT", "Gallery", "GalleryConfig", "GalleryJournal", "Mutation", "journal_path", "load_gallery",
           "replay", "save_gallery"]
