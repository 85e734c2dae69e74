"""On-disk layouts of the real re-identification datasets: writers and readers (no torch).

Each layout module (``biwi``, ``robotpku``, ``sysu``, ``regdb``, ``openreid``, ``folder``) has
``write(root, captures, *, train_ids, test_ids, val_ids=(), ...)``, which writes
:class:`CropCapture` values in the dataset's real folder/file layout with its own
split files, and ``read(root, ...)``, which indexes a copy (ours or a real one)
into a :class:`DatasetIndex` of :class:`Record` paths. ``load_image`` decodes a
record's file into the project's array conventions. See ``docs/datasets.md``.

Modalities per layout (``LAYOUT_MODALITIES``): ``biwi``, ``robotpku`` and ``openreid``
(Hafner et al.'s prepared copies) hold paired rgb + depth; ``sysu`` holds rgb + ir
(unpaired cameras); ``regdb`` holds rgb + thermal; ``folder`` (users' own data) holds
any of the four.

Also here, without torch: :mod:`.splits` (published identity splits,
``resolve_split``) and :mod:`.transforms` (``Preprocess``, paired ``augment``). The
torch parts are imported explicitly: :mod:`.torch_data` (``ReIDDataset``) and
:mod:`.samplers` (``PKBatchSampler``, ``PairedBatchSampler``).
"""

from __future__ import annotations

from reidstream.pipeline.types import Modality

from . import biwi, folder, openreid, regdb, robotpku, sysu
from ._io import load_image
from .samples import CropCapture, DatasetIndex, Record, id_sets

LAYOUTS = {"biwi": biwi, "robotpku": robotpku, "sysu": sysu, "regdb": regdb, "openreid": openreid,
           "folder": folder}
"""Layout name -> module with ``write``, ``read``, ``NAME`` and ``MODALITIES``."""

LAYOUT_MODALITIES: dict[str, tuple[Modality, ...]] = {name: mod.MODALITIES for name, mod in LAYOUTS.items()}
"""Layout name -> the modalities its copies hold."""

__all__ = ["LAYOUTS", "LAYOUT_MODALITIES", "CropCapture", "DatasetIndex", "Record", "id_sets", "load_image",
           "biwi", "robotpku", "sysu", "regdb", "openreid", "folder"]
