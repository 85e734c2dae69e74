"""The gallery shared through Redis: two workers against a real redis-server on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time

import numpy as np
import pytest
from reidstream.pipeline.gallery import GalleryConfig
from reidstream.pipeline.gallery.shared import SharedGallery, SharedGalleryError

from ..conftest import RedisServer, free_port as _free_port
from .conftest import _emb, _unit, calibration

from ..conftest import REDIS

pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed (apt-get install redis-server)")


Server = RedisServer


@pytest.fixture
def server():
    s = Server()
    s.start()
    yield s
    if s.proc.poll() is None:
        s.stop()


@pytest.fixture
def workers(server):
    made = []

    def make(name: str, **kw) -> SharedGallery:
        g = SharedGallery(server.url, calibration(), GalleryConfig(pending_s=0.2, min_new_s=0.0), worker=name, **kw)
        made.append(g)
        return g

    yield make
    for g in made:
        g.link.close(0.5)


def run(frames: list[tuple[SharedGallery, list[tuple[int, np.ndarray]]]], t0: float, t1: float, fps: float = 10):
    """Each worker sees its (track, vector) pairs every frame from t0 to t1 (one shared clock)."""
    for t in np.arange(t0, t1, 1 / fps):
        for g, seen in frames:
            obs = [_emb(np.stack([v for _, v in seen]), [k for k, _ in seen])] if seen else []
            g.match(obs, float(t))
        time.sleep(0.01)


def settle(gs: list[SharedGallery], t: float, timeout: float = 5.0) -> None:
    """Lets the workers exchange what they published (empty frames at time ``t``) until their names agree."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for g in gs:
            g.match([], t)
        if all(set(g.identities()) == set(gs[0].identities()) for g in gs) and \
                all(g.sync_status()[1] == 0 for g in gs):
            return
        time.sleep(0.03)


def test_identity_created_by_one_worker_is_matched_by_another(workers, people):
    a, b = workers("cam-a"), workers("cam-b")
    run([(a, [(1, people[0])])], 0.0, 1.5)
    name = a.identity_of(1)
    assert name and name.startswith("id-")
    settle([a, b], 4.0)
    assert b.identities() == [name]
    run([(b, [(7, people[0])])], 5.0, 6.5)
    assert b.identity_of(7) == name
    settle([a, b], 7.0)
    assert a.visits_of(name) == b.visits_of(name) == 2


def test_names_never_collide_under_concurrent_creation(workers, people):
    gs = [workers(f"w{k}") for k in range(3)]
    names: list[list[str]] = [[] for _ in gs]

    def create(k: int) -> None:
        for _ in range(100):
            names[k].append(gs[k]._allocate())

    threads = [threading.Thread(target=create, args=(k,)) for k in range(len(gs))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    every = [n for ns in names for n in ns]
    assert len(every) == 300 and len(set(every)) == 300
    # and through decisions: each worker creates identities for different people at the same time
    rng = np.random.default_rng(5)
    others = _unit(rng.normal(size=(6, people.shape[1])))
    run([(g, [(1, others[2 * k]), (2, others[2 * k + 1])]) for k, g in enumerate(gs)], 0.0, 1.0)
    created = [g.identity_of(t) for g in gs for t in (1, 2)]
    assert all(created) and len(set(created)) == 6


def test_race_on_one_new_person_converges_through_a_merge(workers, people, server):
    import redis

    a, b = workers("cam-a"), workers("cam-b")
    run([(a, [(1, people[0])]), (b, [(1, people[0])])], 0.0, 0.6)
    first = {a.identity_of(1), b.identity_of(1)}
    assert len(first) == 2, "both workers decided before hearing of the other: two identities"
    run([(a, [(1, people[0])]), (b, [(1, people[0])])], 0.6, 4.0)
    settle([a, b], 4.0)
    assert len(a) == len(b) == 1 and a.identities() == b.identities()
    assert a.identity_of(1) == b.identity_of(1) == min(first, key=lambda n: int(n[3:]))
    events = redis.Redis.from_url(server.url).xrange("reid:events")
    merges = [f for _, f in events if f[b"kind"] == b"merge"]
    assert merges and {(f[b"from"].decode(), f[b"into"].decode()) for f in merges} == \
        {(max(first, key=lambda n: int(n[3:])), min(first, key=lambda n: int(n[3:])))}
    kinds = {f[b"kind"] for _, f in events}
    assert {b"new", b"merge"} <= kinds


def test_losing_redis_buffers_reconnects_and_converges(workers, people, server):
    a, b = workers("cam-a"), workers("cam-b")
    run([(a, [(1, people[0])])], 0.0, 1.5)
    settle([a, b], 4.0)
    assert len(b) == 1
    server.stop()
    run([(a, [(2, people[1])]), (b, [(3, people[2])])], 5.0, 7.0)  # both keep deciding without Redis
    assert a.identity_of(2) and b.identity_of(3) and a.identity_of(2) != b.identity_of(3)
    assert a.sync_status()[1] > 0 and b.sync_status()[1] > 0
    assert a.sync_status()[0] > 0
    time.sleep(1.0)
    server.start()  # same port, no data: the workers republish their state
    settle([a, b], 8.0, timeout=15)
    assert a.sync_status() == (0.0, 0) and b.sync_status()[1] == 0
    assert set(a.identities()) == set(b.identities()) and len(a) == 3
    run([(b, [(9, people[1])])], 9.0, 10.5)
    assert b.identity_of(9) == a.identity_of(2)  # B recognises the person A met during the outage
    names = set(a.identities())
    run([(a, [(4, people[3])])], 11.0, 12.0)  # the counter was raised after the restart: no name reused
    assert a.identity_of(4) not in names


def test_a_restarted_server_never_reissues_a_number_another_worker_reserved(workers, people, server):
    a, b = workers("cam-a"), workers("cam-b")  # a reserved id-0001..16 at start, b id-0017..32
    time.sleep(2.5)  # a's link reads the counter (once a second): it knows b's reservation
    server.stop()
    run([(b, [(1, people[0])])], 0.0, 1.0)  # b names a person from its reserve while Redis is away
    taken = b.identity_of(1)
    assert taken == "id-0017"
    b.link.close(0.1)  # b stays away: a reconnects alone to the restarted, empty server
    server.start()
    end = time.monotonic() + 10
    while not a.link.connected and time.monotonic() < end:
        run([(a, [])], 1.0, 1.1)
    run([(a, [(2, people[1])])], 2.0, 3.0)
    assert a.identity_of(2) and int(a.identity_of(2)[3:]) > 32  # not b's id-0017, nor any of b's reserve


def test_a_finishing_worker_catches_up_with_the_others_first(workers, people):
    a, b = workers("cam-a"), workers("cam-b")
    run([(a, [(1, people[0])])], 0.0, 1.0)
    name = a.identity_of(1)
    assert name and name not in b.identities()  # b has not called match since: nothing applied yet
    b.finish(1.0)
    assert name in b.identities()  # the replica b saves at its end holds what a published before it


def test_bad_url_names_the_key():
    with pytest.raises(SharedGalleryError, match="gallery.url"):
        SharedGallery("http://127.0.0.1:6379", calibration())
    with pytest.raises(SharedGalleryError, match="gallery.url"):
        SharedGallery("redis://", calibration())


def test_unreachable_server_at_start_is_a_clear_error():
    port = _free_port()
    with pytest.raises(SharedGalleryError, match=f"gallery.url redis://127.0.0.1:{port}/0: cannot reach"):
        SharedGallery(f"redis://127.0.0.1:{port}/0", calibration())


def test_cli_option_and_config_key(tmp_path):
    from reidstream.pipeline.app.cli import stream_config_from_args, stream_parser
    from reidstream.pipeline.config import ConfigError

    args = stream_parser().parse_args(["--camera", "sim", "--gallery", "redis://127.0.0.1:6379/2"])
    args.overrides = []
    assert stream_config_from_args(args).gallery.url == "redis://127.0.0.1:6379/2"
    assert GalleryConfig().url is None
    with pytest.raises((ConfigError, ValueError)):
        GalleryConfig(urll="x")


def test_buffer_overflow_is_counted_and_healed_by_republishing(workers, people, server):
    a, b = workers("cam-a", max_buffered=3), workers("cam-b")
    server.stop()
    run([(a, [(1, people[0]), (2, people[1])])], 0.0, 3.0)
    assert a.link.dropped > 0 and a.sync_status()[1] < 10  # 3, or the newest batch alone when larger
    server.start()
    settle([a, b], 4.0, timeout=15)
    assert set(b.identities()) == {a.identity_of(1), a.identity_of(2)}
