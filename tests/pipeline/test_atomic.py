"""Atomic writes: the previous file survives a failure mid-write, and no temporary file is left."""

from __future__ import annotations

import pytest

from reidstream.pipeline.atomic import atomic_file, atomic_write_bytes, atomic_write_text


def test_replaces_whole_or_not_at_all(tmp_path):
    path = tmp_path / "sub" / "a.json"
    atomic_write_text(path, "first\n")
    assert path.read_text() == "first\n"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_file(path, "w") as f:
            f.write("half of the sec")
            raise RuntimeError("boom")
    assert path.read_text() == "first\n"
    assert atomic_write_bytes(path, b"second", fsync=False).read_bytes() == b"second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]
    with pytest.raises(ValueError, match="mode"):
        with atomic_file(path, "a"):
            pass
