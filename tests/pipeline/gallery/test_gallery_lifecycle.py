"""Gallery lifecycle: expiry by age, ring and identity bounds, enrolment, config."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from reidstream.pipeline.config import ConfigError, config_from_mapping
from reidstream.pipeline.gallery import Gallery, GalleryConfig
from reidstream.pipeline.types import Embeddings, Modality

D = 32


def unit(x) -> np.ndarray:
    x = np.atleast_2d(np.asarray(x, np.float64))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def emb(vectors, tracks=None, space="rgbd", modality=Modality.RGB) -> Embeddings:
    v = unit(vectors)
    tracks = np.zeros(len(v), np.int64) if tracks is None else np.asarray(tracks, np.int64)
    return Embeddings(v, modality, space, tracks)


@pytest.fixture
def people():
    return unit(np.random.default_rng(3).normal(size=(6, D)))


def test_expiry_by_age(people):
    g = Gallery(max_age_s=10.0)
    g.match([emb(people[0], [1])], 0.0)
    g.match([emb(people[1], [2])], 5.0)
    assert g.expire(9.0) == []
    assert g.expire(10.5) == ["id-0001"]
    assert g.identities() == ["id-0002"] and "id-0001" not in g
    g.match([emb(people[2], [3])], 16.0)  # match expires too, and reports it
    assert g.last_expired == ["id-0002"] and g.identities() == ["id-0003"]


def test_old_entries_expire_but_identity_lives_while_seen(people):
    g = Gallery(max_age_s=10.0)
    for t in range(5):
        g.match([emb(people[0], [1])], float(t * 4))
    assert g.entries("rgbd") == {"id-0001": 3}  # t=8, 12, 16 are within 10 s of t=16


def test_ring_bound_per_identity_and_space(people):
    g = Gallery(max_entries_per_identity_space=3)
    for t in range(5):
        g.match([emb(people[0], [1]), emb(people[1], [1], "rgbir")], float(t))
    assert g.entries("rgbd") == {"id-0001": 3} and g.entries("rgbir") == {"id-0001": 3}
    store = g.spaces["rgbd"]
    assert sorted(store.times[0][store.valid[0]]) == [2.0, 3.0, 4.0]  # the oldest were dropped


def test_max_identities_evicts_least_recently_seen_and_keeps_pinned(people):
    g = Gallery(max_identities=3)
    g.enrol("alice", [emb(people[0])], 0.0)
    g.match([emb(people[1], [1])], 1.0)
    g.match([emb(people[2], [2])], 2.0)
    g.match([emb(people[1], [1])], 3.0)  # id-0001 seen again
    [m] = g.match([emb(people[3], [3])], 4.0)
    assert m.identity == "id-0003" and m.is_new
    assert g.last_expired == ["id-0002"]
    assert g.identities() == ["alice", "id-0001", "id-0003"]


def test_enrolled_identity_does_not_expire_and_matches_by_name(people):
    g = Gallery(max_age_s=5.0)
    assert g.enrol("alice", [emb(people[:2], space="rgbd"), emb(people[2], space="rgbir")], 0.0) == "alice"
    assert g.is_pinned("alice")
    assert g.expire(1000.0) == [] and g.entries("rgbd") == {"alice": 2}
    [m] = g.match([emb(people[2], [4], "rgbir", Modality.IR)], 1000.0)
    assert (m.identity, m.is_new, m.space) == ("alice", False, "rgbir")


def test_enrol_rejects_duplicate_and_empty_names(people):
    g = Gallery()
    g.enrol("alice", [emb(people[0])], 0.0)
    with pytest.raises(ValueError, match="'alice' is already in the gallery"):
        g.enrol("alice", [emb(people[1])], 1.0)
    with pytest.raises(ValueError, match="non-empty name"):
        g.enrol("", [emb(people[1])], 1.0)
    with pytest.raises(ValueError, match="'bob': expected at least one embedding"):
        g.enrol("bob", [], 1.0)
    with pytest.raises(ValueError, match="'bob': observations\\[1\\]: expected 32-D vectors in space 'rgbir'"):
        g.enrol("bob", [emb(people[1], space="rgbir"), emb(people[1, :8], space="rgbir")], 1.0)
    assert g.identities() == ["alice"]


def test_enrol_refuses_when_full_of_enrolled(people):
    g = Gallery(max_identities=1)
    g.enrol("alice", [emb(people[0])], 0.0)
    with pytest.raises(ValueError, match="max_identities=1"):
        g.enrol("bob", [emb(people[1])], 0.0)


def test_ids_are_not_reused(people):
    g = Gallery(max_age_s=1.0)
    g.match([emb(people[0], [1])], 0.0)
    g.match([emb(people[1], [2])], 5.0)  # id-0001 expired first
    assert g.identities() == ["id-0002"]


def test_stats(people):
    g = Gallery()
    g.enrol("alice", [emb(people[0])], 0.0)
    g.match([emb(people[1], [1]), emb(people[1], [1], "rgbir")], 0.0)
    s = g.stats()
    assert s["identities"] == 2 and s["pinned"] == 1 and s["entries"] == {"rgbd": 2, "rgbir": 1}
    assert s["next_id"] == 2


def test_config_defaults_from_config_and_unknown_keys():
    cfg = config_from_mapping(GalleryConfig, {"threshold": 0.3, "max_identities": 10})
    g = Gallery.from_config(cfg)
    assert g.config.threshold == 0.3 and g.config.max_identities == 10 and g.config.max_age_s == 300.0
    assert GalleryConfig().max_entries_per_identity_space == 32
    with pytest.raises(ConfigError, match="treshold"):
        config_from_mapping(GalleryConfig, {"treshold": 0.3})
    with pytest.raises(ValidationError):
        GalleryConfig(ema=0.5)
    with pytest.raises(ConfigError, match="threshold"):
        config_from_mapping(GalleryConfig, {"threshold": -1.0})
