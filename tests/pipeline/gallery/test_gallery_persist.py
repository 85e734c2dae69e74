"""Saving and loading the gallery: round trip, atomic writes under a crash, corrupt files."""

from __future__ import annotations

import os

import numpy as np
import pytest

from reidstream.pipeline.gallery import FORMAT, Gallery, GalleryConfig, load_gallery, save_gallery

def build(people, emb, make_gallery) -> Gallery:
    g = make_gallery(max_age_s=50.0, max_visits_per_identity=4, max_identities=20)
    g.enrol("alice", [emb(people[0], [0]), emb(people[0], [0], "rgbir")], 0.0)
    for k in range(3):
        g.match([emb(people[1:3], [1, 2]), emb(people[3:5], [1, 2], "rgbir")], 1.0 + 0.1 * k)
    for k in range(3):
        g.match([emb(people[5], [3])], 30.0 + 0.1 * k)
    g.match([], 52.0)  # id-0001, id-0002 expire: free slots are saved as such; tracks 1-3 have ended
    return g


def frame(people, rng, emb, unit):
    noisy = unit(people[[0, 5, 6]] + 0.01 * rng.normal(size=(3, people.shape[1])))
    return [emb(noisy, [7, 8, 9]), emb(noisy[:1], [7], "rgbir")]


def test_round_trip_gives_equal_matches(tmp_path, people, emb, unit, make_gallery):
    g = build(people, emb, make_gallery)
    path = save_gallery(g, tmp_path / "gallery.npz")
    h = load_gallery(path)
    assert h.identities() == g.identities() == ["alice", "id-0003"]
    assert h.config == g.config and h.is_pinned("alice") and h.stats() == g.stats()
    assert h.calibration.to_dict() == g.calibration.to_dict()
    for name in g.identities():
        assert h.visits_of(name) == g.visits_of(name)
    for k in range(4):
        a = g.match(frame(people, np.random.default_rng(k), emb, unit), 53.0 + 0.1 * k)
        b = h.match(frame(people, np.random.default_rng(k), emb, unit), 53.0 + 0.1 * k)
        assert a == b
    assert [m.identity for m in a] == ["alice", "id-0003", "id-0004"]  # ids continue, none reused


def test_crash_during_save_keeps_previous_file(tmp_path, people, monkeypatch, emb, make_gallery):
    g = build(people, emb, make_gallery)
    path = save_gallery(g, tmp_path / "gallery.npz")
    before = path.read_bytes()
    for k in range(4):
        g.match([emb(people[7], [20])], 53.0 + 0.1 * k)
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


def test_crash_mid_write_keeps_previous_file(tmp_path, people, monkeypatch, emb, make_gallery):
    g = build(people, emb, make_gallery)
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


def test_corrupt_and_foreign_files_name_the_file(tmp_path, people, emb, make_gallery):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="garbage.npz"):
        load_gallery(garbage)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    with pytest.raises(ValueError, match="foreign.npz.*no 'meta'"):
        load_gallery(foreign)
    path = save_gallery(build(people, emb, make_gallery), tmp_path / "g.npz")
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    other = tmp_path / "other.npz"
    np.savez(other, **{**arrays, "meta": np.frombuffer(b'{"format": "something-else"}', np.uint8)})
    with pytest.raises(ValueError, match=f"other.npz: expected gallery format '{FORMAT}'"):
        load_gallery(other)
    broken = tmp_path / "broken.npz"
    np.savez(broken, **{**arrays, "visit_f0_vectors": arrays["visit_f0_vectors"][:, :2]})
    with pytest.raises(ValueError, match="broken.npz: arrays of feature"):
        load_gallery(broken)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated.npz"):
        load_gallery(truncated)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_gallery(tmp_path / "missing.npz")


def test_empty_gallery_round_trip(tmp_path):
    h = load_gallery(save_gallery(Gallery(config=GalleryConfig(threshold=0.2)), tmp_path / "empty.npz"))
    assert len(h) == 0 and h.config.threshold == 0.2


def test_reloaded_gallery_matches_after_the_clock_restarts(tmp_path, people, emb, make_gallery):
    """A replayed or restarted source starts its clock at 0 again: saved visits are earlier, not concurrent."""
    g = make_gallery()
    for k in range(5):
        g.match([emb(people[0], [1])], 40.0 + 0.1 * k)
    g.finish(41.0)
    h = load_gallery(save_gallery(g, tmp_path / "g.npz"))
    out = [h.match([emb(people[0], [1])], 0.1 * k) for k in range(5)]
    assert out[-1][0].identity == "id-0001" and len(h) == 1
    assert h.visits.end[h.visits.rows_of(0)].min() < 0.0  # shifted to end before the new clock's start


def test_the_bundle_record_is_saved_and_another_bundle_is_refused(tmp_path, people, emb, make_gallery):
    from reidstream.pipeline.gallery.persist import check_gallery_bundle

    g = build(people, emb, make_gallery)
    mine = {"path": "/bundles/a", "models": {"distill": "a" * 64}, "digest": "d"}
    other = {"path": "/bundles/b", "models": {"distill": "b" * 64}, "digest": "e"}
    g.bundle = mine
    path = save_gallery(g, tmp_path / "gallery.npz")
    assert load_gallery(path).bundle == mine
    assert load_gallery(path, bundle={**mine, "path": "/moved/a"}).identities() == g.identities()
    with pytest.raises(ValueError, match=r"gallery\.npz: this gallery was made with bundle /bundles/a \(models: "
                                         r"distill aaaaaaaaaaaa\), but this run uses bundle /bundles/b .*--overwrite"):
        load_gallery(path, bundle=other)
    check_gallery_bundle(None, other, path)  # older files record no bundle: not checked (the caller warns)
    g.bundle = "bundle-a"
    save_gallery(g, path)
    with pytest.raises(ValueError, match="metadata 'bundle': expected an object"):
        load_gallery(path)
