"""The gallery journal: records round-trip, snapshot + journal replays to the live gallery, torn lines, seq."""

from __future__ import annotations

import json

import numpy as np
import pytest
from reidstream.pipeline.gallery import (
    Gallery,
    GalleryJournal,
    Mutation,
    journal_path,
    load_gallery,
    replay,
    save_gallery,
)
from reidstream.pipeline.gallery.journal import decode_batch, encode_batch


def state(g: Gallery) -> dict:
    """Everything the journal and the snapshot must keep: identities per slot, counters, visits per row."""
    v, n = g.visits, g.slots
    rows = np.flatnonzero(v.used).tolist()
    assert sorted(v._free) == np.flatnonzero(~v.used[: v.capacity]).tolist()  # free rows: the unused ones
    assert sorted(g._free) == [s for s in range(n) if g._names[s] is None]  # free slots: the unnamed ones
    visits = {}
    for r in rows:
        visit = v.visit(r)
        visits[r] = (int(v.owner[r]), int(v.track[r]), float(v.start[r]), float(v.end[r]), repr(visit.height),
                     repr(visit.height_sigma), repr(visit.width), repr(visit.width_sigma), visit.lit,
                     {k: x.tobytes() for k, x in sorted(visit.vectors.items())})
    slots = {s: (name, float(g.last_seen[s]), bool(g.pinned[s]), int(g.created[s]))  # free slots hold nothing
             for s, name in enumerate(g._names) if name is not None}
    return {"slots": slots, "free": sorted(s for s in range(n) if g._names[s] is None), "next_id": g.next_id,
            "serial": g._serial, "visits": visits, "identities": g.identities()}


def drive(g: Gallery, people, emb, unit, frames: range, seed: int = 0, journal: GalleryJournal | None = None,
          snapshot_at: tuple[int, ...] = (), path=None) -> list:
    """People come and go (short visits, expiry, eviction, slot reuse); each frame's changes are journalled."""
    rng = np.random.default_rng(seed)
    tracks: dict[int, int] = {}  # track id -> person
    next_track, out = 100 * seed + 1, []
    for k in frames:
        t = 0.1 * k
        for tid in [tid for tid in tracks if rng.random() < 0.08]:
            del tracks[tid]
        if len(tracks) < 3 and rng.random() < 0.3:
            tracks[next_track], next_track = int(rng.integers(len(people))), next_track + 1
        tids = sorted(tracks)
        obs = []
        if tids:
            vec = unit(people[[tracks[i] for i in tids]] + 0.05 * rng.normal(size=(len(tids), people.shape[1])))
            obs = [emb(vec, tids), emb(vec[:1], tids[:1], "rgbir")]
        out.append(g.match(obs, t))
        if journal is not None:
            g.journal_seq = journal.append(g.drain_mutations())
            journal.flush()
            if k in snapshot_at:
                save_gallery(g, path)
                journal.rotate()
    return out


def end(g: Gallery, journal: GalleryJournal) -> None:
    """Ends every track (the end of a stream): their last states, held back so far, are journalled."""
    g.finish(g._now + 0.1)
    g.journal_seq = journal.append(g.drain_mutations())
    journal.flush()


@pytest.fixture
def busy(make_gallery):
    return lambda: make_gallery(max_age_s=3.0, max_visits_per_identity=2, max_identities=5, recheck_s=0.3)


def test_records_round_trip():
    vec = np.arange(4, dtype=np.float32) / 7
    ms = [Mutation("counters", {"next_id": 5, "serial": 9}),
          Mutation("upsert_identity", {"slot": 2, "name": "id-0004", "created": 8, "pinned": False, "last_seen": 1.5}),
          Mutation("upsert_visit", {"row": 3, "owner": 2, "track": -1, "start": 0.5, "end": 1.5, "height": float("nan"),
                                    "height_sigma": float("inf"), "width": 0.4, "width_sigma": 0.02, "lit": True},
                   {"rgbd/rgb": vec, "colour": vec[::-1].copy()}),
          Mutation("remove_visit", {"row": 1}), Mutation("remove_identity", {"slot": 0})]
    line = encode_batch(7, ms)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    seq, back = decode_batch(line)
    assert seq == 7 and [m.op for m in back] == [m.op for m in ms]
    for a, b in zip(ms, back):
        assert json.dumps(a.fields) == json.dumps(b.fields)  # NaN and inf kept
        assert a.arrays.keys() == b.arrays.keys()
        for k in a.arrays:
            assert b.arrays[k].dtype == np.float32 and np.array_equal(a.arrays[k], b.arrays[k])
    with pytest.raises(ValueError, match="'upsert_identity' lacks field\\(s\\) name"):
        Mutation.from_dict({"op": "upsert_identity", "slot": 1, "created": 0, "pinned": False, "last_seen": 0})
    with pytest.raises(ValueError, match="expected a mutation with 'op' one of"):
        Mutation.from_dict({"op": "rename"})
    with pytest.raises(ValueError, match="journal batch: not valid JSON"):
        decode_batch(b'{"seq": 1, "mut')


def test_snapshot_plus_journal_replays_to_the_live_gallery(tmp_path, people, emb, unit, busy):
    path = tmp_path / "gallery.npz"
    live = busy()
    journal = GalleryJournal(journal_path(path))
    drive(live, people, emb, unit, range(400), journal=journal, snapshot_at=(150, 260), path=path)
    end(live, journal)
    journal.close()
    assert live.next_id > 6 and len(live) <= 5  # identities were evicted and expired, slots reused
    assert journal.seq == live.journal_seq > load_gallery(path).journal_seq
    restored = load_gallery(path)
    report = replay(restored, journal_path(path))
    assert report.applied > 0 and report.skipped == 0 and report.torn is None
    assert state(restored) == state(live)
    # both go on alike: the same decisions, the same new names (none handed out twice)
    a = drive(live, people, emb, unit, range(400, 460), seed=1)
    b = drive(restored, people, emb, unit, range(400, 460), seed=1)
    assert a == b


def test_journal_alone_replays_onto_an_empty_gallery(tmp_path, people, emb, unit, busy):
    live, path = busy(), tmp_path / "gallery.journal"
    journal = GalleryJournal(path)
    live.enrol("alice", [emb(people[0], [0])], 0.0)
    drive(live, people, emb, unit, range(1, 200), journal=journal)
    end(live, journal)
    journal.close()
    empty = busy()
    replay(empty, path)
    assert state(empty) == state(live) and empty.is_pinned("alice")
    again = replay(empty, path)  # nothing beyond its seq: nothing applied
    assert again.applied == 0 and again.skipped > 0 and state(empty) == state(live)


def test_apply_mutation_is_idempotent(people, emb, unit, busy):
    live = busy()
    drive(live, people, emb, unit, range(120))
    records = live.drain_mutations(everything=True)
    assert {m.op for m in records} >= {"counters", "upsert_identity", "upsert_visit", "remove_visit"}
    copy = busy()
    for m in records + records:
        copy.apply_mutation(m)
    copy.settle()
    assert state(copy) == state(live)
    assert live.drain_mutations() == []  # drained


def test_a_torn_last_line_is_ignored_with_a_warning_and_cut_before_appending(tmp_path, people, emb, unit, busy):
    live, path = busy(), tmp_path / "gallery.journal"
    journal = GalleryJournal(path)
    drive(live, people, emb, unit, range(60), journal=journal)
    end(live, journal)
    journal.close()
    whole = path.read_bytes()
    partial = encode_batch(journal.seq + 1, [Mutation("counters", {"next_id": 99, "serial": 99})])
    path.write_bytes(whole + partial[:-9])  # killed mid-write
    g = busy()
    with pytest.warns(RuntimeWarning, match="last line .* is incomplete"):
        report = replay(g, path)
    assert report.torn and state(g) == state(live) and g.next_id != 99
    with pytest.warns(RuntimeWarning, match="cut off before appending"):
        again = GalleryJournal(path, g.journal_seq)
    assert path.read_bytes() == whole
    again.append([Mutation("counters", {"next_id": 50, "serial": 50})])
    again.close()
    h = busy()
    replay(h, path)
    assert h.next_id == 50
    path.write_bytes(b"not json\n" + whole)
    with pytest.raises(ValueError, match="gallery.journal, line 1: not valid JSON"):
        replay(busy(), path)


def test_kill_between_snapshot_and_rotation_skips_what_the_snapshot_holds(tmp_path, people, emb, unit, busy):
    path = tmp_path / "gallery.npz"
    live = busy()
    journal = GalleryJournal(journal_path(path))
    drive(live, people, emb, unit, range(100), journal=journal)
    save_gallery(live, path)  # killed here: the journal still holds every batch the snapshot holds
    drive(live, people, emb, unit, range(100, 160), seed=2, journal=journal)
    end(live, journal)
    journal.close()
    restored = load_gallery(path)
    seq = restored.journal_seq
    assert 0 < seq < journal.seq
    report = replay(restored, journal_path(path))
    assert report.skipped == seq and report.applied == journal.seq - seq
    assert state(restored) == state(live)
    with pytest.raises(ValueError, match=f"holds changes up to seq {journal.seq} that the gallery \\(at seq {seq}\\)"):
        GalleryJournal(journal_path(path), seq)  # appending would reuse seqs the journal already has


def test_refreshes_of_a_live_track_are_held_back_but_not_its_identity(tmp_path, people, emb, unit, make_gallery):
    live, path = make_gallery(), tmp_path / "gallery.journal"
    journal = GalleryJournal(path)
    for k in range(50):  # one person, 5 s at 10 frames/s
        live.match([emb(unit(people[2] + 0.05 * np.random.default_rng(k).normal(size=people.shape[1])), [4])], 0.1 * k)
        journal.append(live.drain_mutations())
    journal.close()
    batches = [decode_batch(x) for x in path.read_bytes().splitlines()]
    visits = [m for _, ms in batches for m in ms if m.op == "upsert_visit"]
    assert 2 <= len(visits) <= 3  # decided, then refreshed every 2 s: not once per frame
    killed = make_gallery()
    replay(killed, path)  # a kill now: the identity, its name and the counters are there
    assert killed.identities() == live.identities() == ["id-0001"] and killed.next_id == live.next_id == 2
    assert killed.visits_of("id-0001") == 1
    assert 0 < live.visits.end[0] - killed.visits.end[0] <= live.journal_refresh_s


def test_a_restart_on_an_earlier_clock_journals_one_shift(tmp_path, people, emb, unit, busy):
    path = tmp_path / "gallery.npz"
    live = busy()
    journal = GalleryJournal(journal_path(path))
    drive(live, people, emb, unit, range(100), journal=journal)
    end(live, journal)
    save_gallery(live, path)
    journal.rotate()
    journal.close()
    restarted = load_gallery(path)
    replay(restarted, journal_path(path))
    journal = GalleryJournal(journal_path(path), restarted.journal_seq)
    drive(restarted, people, emb, unit, range(30), seed=3, journal=journal)  # the clock starts at 0 again
    end(restarted, journal)
    journal.close()
    ops = [[m.op for m in decode_batch(x)[1]] for x in journal_path(path).read_bytes().splitlines()]
    assert "shift_clock" in ops[0] and sum(o.count("shift_clock") for o in ops) == 1
    again = load_gallery(path)
    replay(again, journal_path(path))
    assert state(again) == state(restarted)
