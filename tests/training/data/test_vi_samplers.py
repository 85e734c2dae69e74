"""Cross-modal PK and tuple samplers and the aligned VI collate: layout, determinism, resume, DDP, errors."""

from __future__ import annotations

from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from reidstream.pipeline.sim.config import SimConfig
from reidstream.pipeline.types import Modality
from reidstream.training.data import LAYOUTS, Record
from reidstream.training.data.vi_samplers import CrossModalPKSampler, TupleBatchSampler, item_modalities
from reidstream.training.data.torch_data import ReIDDataset, collate_cross_modal
from reidstream.training.data.transforms import Preprocess
from reidstream.training.synth_data import write_dataset


def _toy() -> tuple[list[int], list[str]]:
    """Identities 0-8 with both modalities (0: 2 visible < K; 1: 1 infrared), 9 visible only, 10 infrared only."""
    labels, mods = [], []
    for lab in range(11):
        n_vis = 0 if lab == 10 else 2 if lab == 0 else 5
        n_ir = 0 if lab == 9 else 1 if lab == 1 else 3
        for m, n in (("rgb", n_vis), ("ir", n_ir)):
            labels += [lab] * n
            mods += [m] * n
    return labels, mods


LABELS, MODS = _toy()
BOTH = set(range(9))


def test_cross_modal_batch_is_visible_half_then_aligned_infrared_half():
    s = CrossModalPKSampler(LABELS, MODS, ("rgb", "ir"), p=3, k=4, seed=1)
    n_images = max(sum(1 for x, m in zip(LABELS, MODS) if x in BOTH and m == mod) for mod in ("rgb", "ir"))
    assert s.identities == sorted(BOTH) and len(s) == n_images // 12 and s.batch_size == 24  # AGW's epoch length
    seen: set[int] = set()
    for batch in s:
        assert len(batch) == 24
        vis, ir = batch[:12], batch[12:]
        assert all(MODS[i] == "rgb" for i in vis) and all(MODS[i] == "ir" for i in ir)
        assert [LABELS[i] for i in vis] == [LABELS[i] for i in ir]  # identity-aligned
        blocks = [LABELS[i] for i in vis][::4]
        assert [LABELS[i] for i in vis] == [lab for lab in blocks for _ in range(4)]  # identity-major, K each
        assert len(set(blocks)) == 3  # p distinct identities per batch
        seen |= set(blocks)
        for lab in blocks:
            for half, m in ((vis, "rgb"), (ir, "ir")):
                idx = [i for i in half if LABELS[i] == lab]
                own = sum(1 for x, y in zip(LABELS, MODS) if x == lab and y == m)
                assert len(set(idx)) == min(own, 4)  # with replacement only when fewer than K
    assert seen <= BOTH  # identities lacking a modality are never drawn


def test_cross_modal_is_a_function_of_seed_and_epoch_and_resumes():
    a, b = CrossModalPKSampler(LABELS, MODS, p=2, k=2, seed=5), CrossModalPKSampler(LABELS, MODS, p=2, k=2, seed=5)
    np.random.seed(0)
    first = list(a)
    np.random.seed(1)
    torch.manual_seed(1)
    assert first == list(b) == list(a)
    a.set_epoch(2)
    assert list(a) != first
    b.set_epoch(2)
    full = list(b)
    b.set_epoch(2)
    b.skip(3)
    assert list(b) == full[3:] and len(b) == len(full) == 10
    c = CrossModalPKSampler(LABELS, MODS, p=2, k=2, seed=5)
    c.load_state_dict({"seed": 5, "epoch": 2, "start_batch": 1})
    assert list(c) == full[1:]
    assert list(CrossModalPKSampler(LABELS, MODS, p=2, k=2, seed=6)) != first


def test_cross_modal_ranks_share_the_global_batches():
    single = list(CrossModalPKSampler(LABELS, MODS, p=2, k=2, seed=3))
    ranks = [list(CrossModalPKSampler(LABELS, MODS, p=2, k=2, seed=3, rank=r, world_size=3)) for r in range(3)]
    assert len(single) == 10 and [len(x) for x in ranks] == [3, 3, 3]
    assert [x[0] for x in ranks] == single[:3]


def test_cross_modal_errors_name_the_argument():
    with pytest.raises(ValueError, match="9 identities have images in both 'rgb' and 'ir', fewer than p=10"):
        CrossModalPKSampler(LABELS, MODS, p=10, k=2)
    with pytest.raises(ValueError, match="p=5 x world_size=2"):
        CrossModalPKSampler(LABELS, MODS, p=5, k=2, world_size=2)
    with pytest.raises(ValueError, match=r"modalities_of_items\[3\] must be one of \['rgb', 'ir'\], got 'depth'"):
        CrossModalPKSampler(LABELS, MODS[:3] + ["depth"] + MODS[4:], p=2)
    with pytest.raises(ValueError, match="one entry per item"):
        CrossModalPKSampler(LABELS, MODS[:-1], p=2)
    with pytest.raises(ValueError, match="two different names"):
        CrossModalPKSampler(LABELS, MODS, ("rgb", "rgb"), p=2)
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        CrossModalPKSampler(LABELS, MODS, p=2, k=0)
    with pytest.raises(ValueError, match=r"labels\[0\]"):
        CrossModalPKSampler([-1] + LABELS[1:], MODS, p=2)


def test_item_modalities_reads_records():
    recs = [Record({Modality.RGB: Path("a.jpg")}, 1, 1), Record({Modality.IR: Path("b.jpg")}, 1, 3)]
    assert item_modalities(recs, ("rgb", "ir")) == ["rgb", "ir"]
    with pytest.raises(ValueError, match=r"records\[1\] must carry exactly one of \['rgb', 'thermal'\]"):
        item_modalities(recs, ("rgb", "thermal"))
    both = Record({Modality.RGB: Path("a.jpg"), Modality.IR: Path("b.jpg")}, 1, 1)
    with pytest.raises(ValueError, match=r"records\[0\]"):
        item_modalities([both], ("rgb", "ir"))


def test_tuple_batches_hold_anchor_positive_negative_pairs_in_both_modalities():
    n = 4
    s = TupleBatchSampler(LABELS, MODS, ("rgb", "ir"), tuples=n, seed=2)
    pairs = sum(max(sum(1 for x, y in zip(LABELS, MODS) if x == lab and y == m) for m in ("rgb", "ir"))
                for lab in BOTH)
    assert pairs == 43 and len(s) == pairs // n == 10 and s.batch_size == 6 * n
    for batch in s:
        assert len(batch) == 6 * n
        va, vp, vn, ia, ip, ineg = (batch[j * n:(j + 1) * n] for j in range(6))
        assert all(MODS[i] == "rgb" for i in va + vp + vn) and all(MODS[i] == "ir" for i in ia + ip + ineg)
        lab = lambda xs: [LABELS[i] for i in xs]  # noqa: E731
        assert lab(va) == lab(ia) == lab(vp) == lab(ip)  # anchor pair and positive pair share the identity
        assert lab(vn) == lab(ineg) and all(a != b for a, b in zip(lab(va), lab(vn)))
        assert set(lab(va + vn)) <= BOTH
        for a, p in zip(va + ia, vp + ip):
            own = [i for i, (x, y) in enumerate(zip(LABELS, MODS)) if x == LABELS[a] and y == MODS[a]]
            assert p != a or len(own) == 1  # the anchor's own image only when it is the identity's only one
        assert lab(batch[:3 * n]) == lab(batch[3 * n:])  # the aligned layout of collate_cross_modal


def test_tuple_anchor_pairs_traverse_every_training_image_once_per_epoch():
    s = TupleBatchSampler(LABELS, MODS, tuples=1, seed=4)  # no incomplete batch to drop
    anchors = [(b[0], b[3]) for b in s]
    assert len(anchors) == 43  # per identity max(#visible, #infrared) pairs: 3 + 8 * 5
    assert Counter(LABELS[v] for v, _ in anchors) == Counter({lab: 3 if lab == 0 else 5 for lab in BOTH})
    assert {i for pair in anchors for i in pair} == {i for i, lab in enumerate(LABELS) if lab in BOTH}


def test_tuple_sampler_determinism_sharding_and_errors():
    a = list(TupleBatchSampler(LABELS, MODS, tuples=3, seed=1))
    assert a == list(TupleBatchSampler(LABELS, MODS, tuples=3, seed=1))
    assert a != list(TupleBatchSampler(LABELS, MODS, tuples=3, seed=2))
    ranks = [list(TupleBatchSampler(LABELS, MODS, tuples=3, seed=1, rank=r, world_size=2)) for r in range(2)]
    assert len(a) == 43 // 3 == 14 and [len(x) for x in ranks] == [7, 7] and ranks[1] == a[1::2]
    with pytest.raises(ValueError, match="at least 2 identities"):
        TupleBatchSampler([0, 0, 1], ["rgb", "ir", "rgb"], tuples=1)
    with pytest.raises(ValueError, match="too few for one batch of tuples=50"):
        TupleBatchSampler(LABELS, MODS, tuples=50)
    with pytest.raises(ValueError, match="tuples must be an integer >= 1"):
        TupleBatchSampler(LABELS, MODS, tuples=0)


def _item(mod: str, label: int, camid: int) -> dict:
    return {mod: torch.full((3, 4, 2), float(label)), "label": torch.tensor(label), "pid": 100 + label,
            "camid": camid, "index": 0}


def test_collate_builds_the_aligned_batch():
    items = [_item("rgb", 0, 1), _item("rgb", 1, 2), _item("thermal", 0, 7), _item("thermal", 1, 8)]
    b = collate_cross_modal(items, modalities=("rgb", "thermal"))
    assert set(b) == {"rgb", "thermal", "label", "pid", "rgb_camid", "thermal_camid"}
    assert b["rgb"].shape == b["thermal"].shape == (2, 3, 4, 2)
    assert b["label"].tolist() == [0, 1] and b["label"].dtype == torch.long and b["pid"].tolist() == [100, 101]
    assert b["rgb_camid"].tolist() == [1, 2] and b["thermal_camid"].tolist() == [7, 8]
    assert b["thermal"][1].eq(1.0).all() and b["rgb"][0].eq(0.0).all()


def test_collate_errors_name_what_differs():
    v, i = [_item("rgb", 0, 1), _item("rgb", 1, 1)], [_item("ir", 0, 3), _item("ir", 1, 3)]
    with pytest.raises(ValueError, match="'rgb' half has 2 items and the 'ir' half 1"):
        collate_cross_modal(v + i[:1])
    with pytest.raises(ValueError, match=r"label sequences .* differ \(first at position 0: 0 vs 1\)"):
        collate_cross_modal(v + i[::-1])
    both = dict(v[0], ir=v[0]["rgb"])
    with pytest.raises(ValueError, match="item 0 .* exactly one of 'rgb' and 'ir'"):
        collate_cross_modal([both] + i[:1])
    with pytest.raises(ValueError, match="neither"):
        collate_cross_modal([_item("depth", 0, 1)])
    with pytest.raises(ValueError, match="two different names"):
        collate_cross_modal(v, modalities=("rgb",))
    with pytest.raises(ValueError, match="at least one item"):
        collate_cross_modal([])


def test_loader_on_a_synthetic_sysu_copy(tmp_path):
    write_dataset("sysu", tmp_path / "sysu", SimConfig(), identities=6, images_per_camera=1, train_fraction=0.5,
                  seed=2, progress=False)
    records = LAYOUTS["sysu"].read(tmp_path / "sysu").splits["train"]
    prep = {m: Preprocess(modality=m, height=32, width=16) for m in ("rgb", "ir")}
    data = ReIDDataset(records, ("rgb", "ir"), prep, require_all=False)
    sampler = CrossModalPKSampler(data.labels, item_modalities(data.records), ("rgb", "ir"), p=2, k=2, seed=0)
    loader = DataLoader(data, batch_sampler=sampler, collate_fn=partial(collate_cross_modal, modalities=("rgb", "ir")))
    batches = list(loader)
    assert len(batches) == len(sampler) >= 1
    b = batches[0]
    assert b["rgb"].shape == b["ir"].shape == (4, 3, 32, 16)
    assert set(b["rgb_camid"].tolist()) <= {1, 2, 4, 5} and set(b["ir_camid"].tolist()) <= {3, 6}
    assert b["label"].tolist()[::2] == b["label"].tolist()[1::2]  # K = 2 per identity, identity-major


def test_unpair_splits_co_located_captures_into_one_image_per_modality(tmp_path):
    from reidstream.pipeline.types import Modality
    from reidstream.training.data.samples import Record
    from reidstream.training.data.vi_samplers import unpair

    paired = Record({Modality.RGB: tmp_path / "a.png", Modality.DEPTH: tmp_path / "a_d.png",
                     Modality.IR: tmp_path / "a_i.png"}, pid=3, camid=0)
    single = Record({Modality.IR: tmp_path / "b.png"}, pid=4, camid=1)
    rgb_only = Record({Modality.DEPTH: tmp_path / "c.png"}, pid=5, camid=0)
    out = unpair([paired, single, rgb_only], ("rgb", "ir"))
    assert [(set(m.value for m in r.paths), r.pid) for r in out] == [({"rgb"}, 3), ({"ir"}, 3), ({"ir"}, 4)]
    assert item_modalities(out, ("rgb", "ir")) == ["rgb", "ir", "ir"]
