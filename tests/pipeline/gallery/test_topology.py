"""The site's camera links as evidence: a transit through a declared link favours the identity that left."""

from __future__ import annotations

import numpy as np
import pytest

from reidstream.pipeline.gallery import Gallery
from reidstream.pipeline.gallery.topology import Topology
from reidstream.pipeline.types import Embeddings, Modality


def test_prior_within_window_too_soon_same_camera_unlinked_and_late():
    topo = Topology({("room", "corridor"): (3.0, 8.0)}, llr=3.0, too_soon_llr=-4.0, slack_s=1.0)
    slots = ["room", "room", "room", "corridor", "hall", None]
    last = np.array([10.0, 14.5, 0.0, 10.0, 10.0, 10.0])
    p = topo.prior(["corridor", None], [15.0, 15.0], slots, last)
    # gap 5 s (in [3, 8]), 0.5 s (too soon), 15 s (later than anyone walks it: no evidence either way),
    # the same camera, an unlinked camera, an empty slot; an unknown track camera: nothing
    assert p[0].tolist() == [3.0, -4.0, 0.0, 0.0, 0.0, 0.0]
    assert p[1].tolist() == [0.0] * 6
    assert topo.transit("corridor", "room") == (3.0, 8.0)  # links are two-way
    assert topo.prior(["room"], [0.0], [], np.zeros(0)).shape == (1, 0)


@pytest.mark.parametrize("links, slack, message", [
    ({("a", "a"): (1.0, 2.0)}, 1.0, "two different cameras"),
    ({("a", "b"): (3.0, 2.0)}, 1.0, "shortest <= longest"),
    ({("a", "b"): (1.0, 2.0)}, -1.0, "slack_s >= 0"),
])
def test_topology_contract(links, slack, message):
    with pytest.raises(ValueError, match=message):
        Topology(links, slack_s=slack)


def _frames(g: Gallery, camera: str, track: int, vector, t0: float, n: int = 6, dt: float = 0.1):
    out = None
    for k in range(n):
        obs = [Embeddings(vector[None].astype(np.float32), Modality.RGB, "rgbd", np.array([track]))]
        out = g.match(obs, t0 + k * dt, camera=camera)
    return out


def test_a_transit_through_a_link_decides_between_two_equally_likely_identities(make_gallery, unit):
    """Two people left two cameras; a track starting in the corridor looks exactly as much like either. Without
    the site's links it is a coin toss (or a new identity); with them, the one who left the linked room in time."""
    a, b = unit(np.eye(32)[0] + 0.3 * np.eye(32)[1])[0], unit(np.eye(32)[0] - 0.3 * np.eye(32)[1])[0]
    probe = unit(np.eye(32)[0])[0]  # halfway: the same evidence for both
    results = {}
    for linked in (False, True):
        g = make_gallery(threshold=2.0)
        g.topology = Topology({("room", "corridor"): (3.0, 8.0)}) if linked else None
        _frames(g, "hall", 1, b, 0.0)     # b left the hall (not linked to the corridor)
        _frames(g, "room", 2, a, 0.5)     # a left the room
        out = _frames(g, "corridor", 3, probe, 6.0)
        results[linked] = out[0].identity
    assert results[True] == "id-0002"  # the one who left the linked room 5 s earlier
    assert results[False] == "id-0001"  # without links the tie goes to the older identity, whoever walked where


def test_too_soon_keeps_a_look_alike_out(make_gallery, unit, people):
    """A person cannot walk a 3-8 s link in 0.5 s: a look-alike appearing that soon is someone else."""
    g = make_gallery(threshold=2.0)
    g.topology = Topology({("room", "corridor"): (3.0, 8.0)}, too_soon_llr=-20.0)
    _frames(g, "room", 1, people[0], 0.0, n=6)
    out = _frames(g, "corridor", 2, people[0], 0.5 + 0.5, n=6)
    assert out[0].identity != "id-0001"


def test_the_last_camera_travels_with_the_identity_records(make_gallery, people):
    """A replica (journal replay, a shared gallery's other worker) learns where an identity was seen last."""
    from reidstream.pipeline.gallery.journal import Mutation

    g = make_gallery()
    _frames(g, "room", 1, people[0], 0.0)
    ups = [m for m in g.drain_mutations(everything=True) if m.op == "upsert_identity"]
    assert ups and ups[-1].fields["camera"] == "room"
    replica = make_gallery()
    for m in g.drain_mutations(everything=True) or []:
        replica.apply_mutation(m)
    back = Mutation.from_dict(ups[-1].to_dict())
    replica.apply_mutation(back)
    assert replica._slot_camera[back.fields["slot"]] == "room"
    old = Mutation.from_dict({k: v for k, v in ups[-1].to_dict().items() if k != "camera"})  # an older journal
    assert "camera" not in old.fields
