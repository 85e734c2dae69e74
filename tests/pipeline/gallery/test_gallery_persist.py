"""Saving and loading the gallery: round trip, atomic writes under a crash, corrupt files."""

from __future__ import annotations

import os

import numpy as np
import pytest

from reidstream.pipeline.gallery import FORMAT, Gallery, load_gallery, save_gallery
from reidstream.pipeline.types import Embeddings, Modality

D = 32


def unit(x) -> np.ndarray:
    x = np.atleast_2d(np.asarray(x, np.float64))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def emb(vectors, tracks, space="rgbd", modality=Modality.RGB) -> Embeddings:
    return Embeddings(unit(vectors), modality, space, np.asarray(tracks, np.int64))


@pytest.fixture
def people():
    return unit(np.random.default_rng(11).normal(size=(8, D)))


def build(people) -> Gallery:
    g = Gallery(threshold=0.3, max_age_s=50.0, max_entries_per_identity_space=4, max_identities=20)
    g.enrol("alice", [emb(people[0], [0]), emb(people[0], [0], "rgbir")], 0.0)
    g.match([emb(people[1:3], [1, 2]), emb(people[3:5], [1, 2], "rgbir")], 1.0)
    g.match([emb(people[5], [3])], 30.0)
    g.expire(52.0)  # id-0001, id-0002 expire: free slots are saved as such
    return g


def frame(people, rng):
    noisy = unit(people[[0, 5, 6]] + 0.01 * rng.normal(size=(3, D)))
    return [emb(noisy[:2], [7, 8]), emb(noisy[2], [9], "rgbir", Modality.IR)]


def test_round_trip_gives_equal_matches(tmp_path, people):
    g = build(people)
    path = save_gallery(g, tmp_path / "gallery.npz")
    h = load_gallery(path)
    assert h.identities() == g.identities() == ["alice", "id-0003"]
    assert h.config == g.config and h.is_pinned("alice") and h.stats() == {**g.stats(), "tracks": 0}
    for space in g.spaces:
        assert h.entries(space) == g.entries(space)
    a = g.match(frame(people, np.random.default_rng(0)), 53.0)
    b = h.match(frame(people, np.random.default_rng(0)), 53.0)
    assert a == b
    assert [m.identity for m in a] == ["alice", "id-0003", "id-0004"]  # ids continue, none reused


def test_crash_during_save_keeps_previous_file(tmp_path, people, monkeypatch):
    g = build(people)
    path = save_gallery(g, tmp_path / "gallery.npz")
    before = path.read_bytes()
    g.match([emb(people[7], [20])], 53.0)
    assert len(g) == 3

    def crash(*args, **kwargs):
        raise OSError("simulated power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        save_gallery(g, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_gallery(path).identities() == ["alice", "id-0003"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gallery.npz"]  # temp file cleaned up


def test_crash_mid_write_keeps_previous_file(tmp_path, people, monkeypatch):
    g = build(people)
    path = save_gallery(g, tmp_path / "gallery.npz")
    real_savez = np.savez

    def half_write(f, **arrays):
        real_savez(f, **dict(list(arrays.items())[:2]))
        raise KeyboardInterrupt  # killed while writing

    monkeypatch.setattr(np, "savez", half_write)
    with pytest.raises(KeyboardInterrupt):
        save_gallery(Gallery(), path)
    monkeypatch.undo()
    assert load_gallery(path).identities() == ["alice", "id-0003"]


def test_corrupt_and_foreign_files_name_the_file(tmp_path, people):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="garbage.npz"):
        load_gallery(garbage)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    with pytest.raises(ValueError, match="foreign.npz.*no 'meta'"):
        load_gallery(foreign)
    path = save_gallery(build(people), tmp_path / "g.npz")
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    other = tmp_path / "other.npz"
    np.savez(other, **{**arrays, "meta": np.frombuffer(b'{"format": "something-else"}', np.uint8)})
    with pytest.raises(ValueError, match=f"other.npz: expected gallery format '{FORMAT}'"):
        load_gallery(other)
    broken = tmp_path / "broken.npz"
    np.savez(broken, **{**arrays, "s0_vectors": arrays["s0_vectors"][:, :2]})
    with pytest.raises(ValueError, match="broken.npz: array 's0_vectors'"):
        load_gallery(broken)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated.npz"):
        load_gallery(truncated)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_gallery(tmp_path / "missing.npz")


def test_empty_gallery_round_trip(tmp_path):
    h = load_gallery(save_gallery(Gallery(threshold=0.2), tmp_path / "empty.npz"))
    assert len(h) == 0 and h.config.threshold == 0.2
