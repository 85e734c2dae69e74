"""PK and paired batch samplers: balance, determinism per (seed, epoch), resume by skip, DDP sharding."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from reidstream.training.data.samplers import PairedBatchSampler, PKBatchSampler

# 20 identities: most with 6 images, some with fewer than K = 4 (2 images), one with 1.
LABELS = [lab for lab in range(20) for _ in range(1 if lab == 19 else 2 if lab % 5 == 0 else 6)]


def test_every_pk_batch_has_p_distinct_identities_of_k_images():
    s = PKBatchSampler(LABELS, p=4, k=4, seed=1)
    assert len(s) == 5 and s.batch_size == 16
    batches = list(s)
    assert len(batches) == 5
    seen = set()
    for batch in batches:
        labels = [LABELS[i] for i in batch]
        counts = Counter(labels)
        assert len(batch) == 16 and len(counts) == 4 and set(counts.values()) == {4}
        for lab in counts:
            idx = [i for i in batch if LABELS[i] == lab]
            own = LABELS.count(lab)
            assert len(set(idx)) == min(own, 4)  # distinct unless the identity has fewer than K
        assert not seen & set(counts)
        seen |= set(counts)
    assert seen == set(range(20))  # one pass over the identities per epoch


def test_pk_is_a_function_of_seed_and_epoch_only():
    a, b = PKBatchSampler(LABELS, 4, 4, seed=3), PKBatchSampler(LABELS, 4, 4, seed=3)
    np.random.seed(0)
    first = list(a)
    np.random.seed(99)
    assert first == list(b) == list(a)
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(PKBatchSampler(LABELS, 4, 4, seed=4)) != first


def test_skip_resumes_mid_epoch_with_the_same_batches():
    s = PKBatchSampler(LABELS, 4, 2, seed=7)
    s.set_epoch(3)
    full = list(s)
    s.set_epoch(3)
    s.skip(2)
    assert s.start_batch == 2 and list(s) == full[2:]
    assert list(s) == full  # a skip applies to one iteration
    state = {"seed": 7, "epoch": 3, "start_batch": 4}
    r = PKBatchSampler(LABELS, 4, 2, seed=7)
    r.load_state_dict(state)
    assert list(r) == full[4:] and len(r) == len(full)
    with pytest.raises(ValueError, match="cannot skip 6"):
        s.skip(6)
    with pytest.raises(ValueError, match="seed"):
        PKBatchSampler(LABELS, 4, 2, seed=8).load_state_dict(state)


def test_ddp_ranks_get_disjoint_batches_of_equal_number():
    single = list(PKBatchSampler(LABELS, 3, 4, seed=2))
    ranks = [list(PKBatchSampler(LABELS, 3, 4, seed=2, rank=r, world_size=2)) for r in range(2)]
    assert len(single) == 6 and [len(x) for x in ranks] == [3, 3]
    assert ranks[0] == single[0::2] and ranks[1] == single[1::2]
    three = [PKBatchSampler(LABELS, 3, 4, seed=2, rank=r, world_size=4) for r in range(4)]
    assert {len(s) for s in three} == {1} and [list(s)[0] for s in three] == single[:4]


def test_pk_errors_are_clear():
    with pytest.raises(ValueError, match="3 identities have images, fewer than p=4"):
        PKBatchSampler([0, 0, 1, 2], p=4, k=2)
    with pytest.raises(ValueError, match=r"fewer than p=4 x world_size=8"):
        PKBatchSampler(LABELS, p=4, k=2, world_size=8)
    with pytest.raises(ValueError, match="rank must be < world_size"):
        PKBatchSampler(LABELS, p=4, k=2, rank=2, world_size=2)
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        PKBatchSampler(LABELS, p=4, k=0)
    with pytest.raises(ValueError, match=r"labels\[1\]"):
        PKBatchSampler([0, -1], p=1, k=1)


def test_paired_sampler_covers_the_indices_and_shards_by_rank():
    indices = list(range(100, 123))
    s = PairedBatchSampler(indices, 5, seed=1)
    batches = list(s)
    assert len(s) == len(batches) == 4 and all(len(b) == 5 for b in batches)
    flat = [i for b in batches for i in b]
    assert len(set(flat)) == 20 and set(flat) <= set(indices)
    s.set_epoch(1)
    assert list(s) != batches
    s.set_epoch(0)
    s.skip(3)
    assert list(s) == batches[3:]
    keep = PairedBatchSampler(indices, 5, seed=1, drop_last=False)
    kept = list(keep)
    assert len(kept) == 5 and len(kept[-1]) == 3 and sorted(i for b in kept for i in b) == indices
    ranks = [list(PairedBatchSampler(indices, 5, seed=1, rank=r, world_size=3, drop_last=False)) for r in range(3)]
    assert [len(x) for x in ranks] == [2, 2, 2]
    assert ranks[0] == [kept[0], kept[3]] and ranks[2] == [kept[2], kept[0]]  # short rank wraps around
    with pytest.raises(ValueError, match="too few for one batch of 50"):
        PairedBatchSampler(indices, 50)
