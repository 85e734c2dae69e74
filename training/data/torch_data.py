"""PyTorch dataset over indexed records: decoded, preprocessed, optionally augmented modalities.

Import explicitly (``from reidstream.training.data.torch_data import ReIDDataset``);
the ``reidstream.training.data`` package itself does not import torch.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from reidstream.pipeline.types import Modality

from ._io import load_image
from .samples import Record
from .transforms import Preprocess, augment, color_augment


class ReIDDataset(Dataset):
    """Records -> ``{"<modality>": C x H x W float tensor, "label", "pid", "camid", "index"}`` items.

    Augmentation (:func:`.transforms.augment`: one horizontal flip and one
    pad-and-crop shared by all modalities of an item) draws from
    ``np.random.default_rng((seed, epoch, index))`` only, so an item's
    augmentation is a function of the seed, the epoch (:meth:`set_epoch`) and
    its index, whatever worker loads it.

    Args:
        records: The records to serve, in item order.
        modalities: Modalities each item carries.
        preprocess: Modality name -> :class:`Preprocess` (one per requested
            modality; all must have the same height and width when augmenting).
        labels: pid -> class index; default: the sorted pids of ``records``
            relabelled ``0 .. n-1``.
        augment: Apply the paired random flip and pad-and-crop.
        seed: Seed of the augmentation.
        require_all: True (default): every record must hold every requested
            modality. False: records holding at least one are kept and their
            items carry only the modalities they have (unpaired sets).

    Raises:
        ValueError: Records lacking requested modalities (with ``require_all``),
            records with none of them, a missing preprocess, unknown modality, a
            pid without a label, or no records.
    """

    def __init__(self, records: Sequence[Record], modalities: Sequence[str | Modality],
                 preprocess: Mapping[str, Preprocess], *, labels: Mapping[int, int] | None = None,
                 augment: bool = False, seed: int = 0, require_all: bool = True, color_p: float = 0.0) -> None:
        try:
            self.modalities: tuple[Modality, ...] = tuple(Modality(m) for m in modalities)
        except ValueError:
            raise ValueError(f"ReIDDataset: modalities {list(modalities)} must be among "
                             f"{[m.value for m in Modality]}") from None
        if not self.modalities or len(set(self.modalities)) != len(self.modalities):
            raise ValueError(f"ReIDDataset: expected distinct modalities, got {list(modalities)}")
        pre = {getattr(k, "value", k): v for k, v in preprocess.items()}
        for m in self.modalities:
            if not isinstance(pre.get(m.value), Preprocess):
                raise ValueError(f"ReIDDataset: preprocess has no Preprocess for {m.value!r} (keys: {sorted(pre)})")
            if pre[m.value].modality != m.value:
                raise ValueError(f"ReIDDataset: preprocess[{m.value!r}] is for modality {pre[m.value].modality!r}")
        self.preprocess: dict[str, Preprocess] = {m.value: pre[m.value] for m in self.modalities}
        sizes = {(p.height, p.width) for p in self.preprocess.values()}
        if augment and len(sizes) > 1:
            raise ValueError(f"ReIDDataset: paired augmentation needs one output size, preprocess gives "
                             f"{sorted(sizes)}")
        records = list(records)
        if not records:
            raise ValueError("ReIDDataset: expected at least one record, got none")
        want = set(self.modalities)
        lacking = [r for r in records if not want <= set(r.paths)]
        if require_all and lacking:
            r = lacking[0]
            raise ValueError(f"ReIDDataset: {len(lacking)} of {len(records)} records lack one of "
                             f"{[m.value for m in self.modalities]}; the first (pid {r.pid}, camid {r.camid}, "
                             f"frame {r.frame}) has {[m.value for m in r.modalities]} "
                             f"({next(iter(r.paths.values()))}); "
                             f"pass require_all=False to keep records with any of them")
        empty = [r for r in records if not want & set(r.paths)]
        if empty:
            r = empty[0]
            raise ValueError(f"ReIDDataset: {len(empty)} records hold none of {[m.value for m in self.modalities]}; "
                             f"the first (pid {r.pid}) has {[m.value for m in r.modalities]}")
        self._records = tuple(records)
        if labels is None:
            labels = {pid: i for i, pid in enumerate(sorted({r.pid for r in records}))}
        unlabelled = sorted({r.pid for r in records} - set(labels))
        if unlabelled:
            raise ValueError(f"ReIDDataset: labels has no class for pids {unlabelled[:10]}")
        self.label_of: dict[int, int] = {int(k): int(v) for k, v in labels.items()}
        self._labels = [self.label_of[r.pid] for r in records]
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"ReIDDataset: seed must be a non-negative integer, got {seed!r}")
        self.augment = bool(augment)
        if not 0.0 <= float(color_p) <= 1.0:
            raise ValueError(f"ReIDDataset: color_p must be in [0, 1], got {color_p!r}")
        self.color_p = float(color_p)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Selects the epoch that keys the augmentation RNG (call before each epoch).

        DataLoader workers copy the dataset when an iteration starts, so this
        reaches them unless ``persistent_workers=True`` (then they keep the epoch
        they were started with).
        """
        self.epoch = int(epoch)

    @property
    def records(self) -> tuple[Record, ...]:
        """The records, in item order."""
        return self._records

    @property
    def labels(self) -> list[int]:
        """Class index of every item."""
        return list(self._labels)

    @property
    def pids(self) -> list[int]:
        """Person id of every item."""
        return [r.pid for r in self._records]

    @property
    def camids(self) -> list[int]:
        """Camera id of every item."""
        return [r.camid for r in self._records]

    @property
    def num_classes(self) -> int:
        """Number of classes of the label map (max label + 1)."""
        return max(self.label_of.values()) + 1 if self.label_of else 0

    def has(self, index: int, modality: str | Modality) -> bool:
        """Whether item ``index`` carries ``modality``."""
        return Modality(modality) in self._records[index].paths

    def paired_indices(self, modalities: Sequence[str | Modality] | None = None) -> list[int]:
        """Indices of the items holding all of ``modalities`` (default: the dataset's)."""
        want = set(self.modalities if modalities is None else (Modality(m) for m in modalities))
        return [i for i, r in enumerate(self._records) if want <= set(r.paths)]

    def __len__(self) -> int:
        return len(self._records)

    def load(self, index: int, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """Preprocessed ``C x H x W`` arrays of one item's modalities.

        With ``rng`` and ``color_p > 0``, colour images get :func:`.transforms.color_augment` first.
        """
        r = self._records[index]
        out = {}
        for m in self.modalities:
            if m not in r.paths:
                continue
            try:
                image = load_image(r, m)
                if rng is not None and self.color_p > 0 and m is Modality.RGB:
                    image = color_augment(image, rng, self.color_p)
                out[m.value] = self.preprocess[m.value](image)
            except ValueError as e:
                raise ValueError(f"ReIDDataset item {index} ({r.path(m)}): {e}") from None
        return out

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self._records):
            raise IndexError(f"ReIDDataset: index {index} out of range 0..{len(self._records) - 1}")
        rng = np.random.default_rng((self.seed, self.epoch, int(index))) if self.augment else None
        arrays = self.load(index, rng)
        if rng is not None:
            fill = {k: self.preprocess[k].zero_value for k in arrays}
            arrays = augment(arrays, rng, fill=fill)
        r = self._records[index]
        item: dict = {k: torch.from_numpy(v) for k, v in arrays.items()}
        item.update(label=torch.tensor(self._labels[index], dtype=torch.long), pid=r.pid, camid=r.camid,
                    index=int(index))
        return item


def paired_indices(dataset: ReIDDataset, modalities: Sequence[str | Modality]) -> list[int]:
    """Indices of the dataset's items holding all of ``modalities``."""
    return dataset.paired_indices(modalities)


def collate(items: Sequence[dict]) -> dict:
    """Batches items; unlike ``default_collate`` it accepts items with different modalities.

    Keys every item has are collated by ``default_collate`` (``label`` -> LongTensor
    ``(B,)``, ``pid``/``camid``/``index`` -> int64 tensors ``(B,)``, modalities ->
    ``(B, C, H, W)``). A modality only some items carry is stacked over those
    items, with ``"<modality>_mask"`` (bool ``(B,)``) marking which they are.
    """
    if not items:
        raise ValueError("collate: expected at least one item, got none")
    common = set(items[0]).intersection(*items[1:])
    out = default_collate([{k: it[k] for k in common} for it in items])
    for key in sorted(set().union(*items) - common):
        mask = torch.tensor([key in it for it in items], dtype=torch.bool)
        out[key] = torch.stack([it[key] for it in items if key in it])
        out[f"{key}_mask"] = mask
    return out


def collate_cross_modal(items: Sequence[dict], modalities: Sequence[str] = ("rgb", "ir")) -> dict:
    """Batches the items of one cross-modal batch (visible half, infrared half) into the aligned VI batch.

    ``items`` are :class:`ReIDDataset` items (built with ``require_all=False``), each
    carrying exactly one of the two modalities, as a
    :class:`.vi_samplers.CrossModalPKSampler` or :class:`.vi_samplers.TupleBatchSampler`
    batch yields them: the visible items, then the infrared items in the same
    identity order. Items are split by the modality they carry, keeping their order.
    Use with ``functools.partial(collate_cross_modal, modalities=(visible, infrared))``.

    Returns:
        ``{visible: B x C x H x W, infrared: B x C x H x W, "label": LongTensor B,
        "pid": LongTensor B, "<visible>_camid": LongTensor B, "<infrared>_camid":
        LongTensor B}``, where ``batch[visible][i]`` and ``batch[infrared][i]`` have
        identity ``label[i]``.

    Raises:
        ValueError: ``modalities`` is not two distinct names, an item carries both or
            neither, the halves differ in size, or their label (or pid) sequences differ.
    """
    if isinstance(modalities, str) or len(modalities) != 2 or modalities[0] == modalities[1]:
        raise ValueError(f"collate_cross_modal: modalities must be two different names (visible, infrared), "
                         f"got {modalities!r}")
    vis, ir = (getattr(m, "value", m) for m in modalities)
    if not items:
        raise ValueError("collate_cross_modal: expected at least one item, got none")
    halves: tuple[list[dict], list[dict]] = ([], [])
    for n, it in enumerate(items):
        has = [m for m in (vis, ir) if m in it]
        if len(has) != 1:
            raise ValueError(f"collate_cross_modal: item {n} (dataset index {it.get('index')}) must carry exactly "
                             f"one of {vis!r} and {ir!r}, it has {has or 'neither'}")
        halves[has[0] == ir].append(it)
    v_items, i_items = halves
    if len(v_items) != len(i_items):
        raise ValueError(f"collate_cross_modal: the {vis!r} half has {len(v_items)} items and the {ir!r} half "
                         f"{len(i_items)}; expected equal sizes (use a cross-modal batch sampler)")
    out = {}
    for key in ("label", "pid"):
        a, b = ([int(it[key]) for it in h] for h in halves)
        if a != b:
            bad = next(j for j, (x, y) in enumerate(zip(a, b)) if x != y)
            raise ValueError(f"collate_cross_modal: {key} sequences of the {vis!r} and {ir!r} halves differ "
                             f"(first at position {bad}: {a[bad]} vs {b[bad]}); expected identity-aligned halves")
        out[key] = torch.tensor(a, dtype=torch.long)
    for m, h in ((vis, v_items), (ir, i_items)):
        out[m] = torch.stack([it[m] for it in h])
        out[f"{m}_camid"] = torch.tensor([int(it["camid"]) for it in h], dtype=torch.long)
    return out
