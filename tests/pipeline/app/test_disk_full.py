"""A full disk during ``reid-stream`` (issue #13): a clear error naming the file (exit status 2), every log
left at its last complete line, summary.json never partial, the earlier gallery.npz kept, and a resumed run
that scores. Real runs on a recording of the simulator; the full disk is either injected at the level of
the OS write into the output directory, or (when this process may mount one) a real small tmpfs."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from reidstream.pipeline.app.cli import EXIT_ERROR, stream_main
from reidstream.pipeline.gallery import load_gallery
from reidstream.pipeline.tools.score import main as score_main
from reidstream.pipeline.sinks import jsonl
from reidstream.pipeline.sinks.jsonl import LineFile, open_text_output

LOGS = ("events.jsonl", "tracks.txt", "gt.txt", "frames.jsonl")


@pytest.fixture(scope="module")
def recording(make_sim_recording) -> Path:
    return make_sim_recording(24, seed=4, people=3)


def assert_well_formed(out: Path) -> None:
    """Every log ends with a newline and every line is whole; summary.json, if there, is JSON."""
    for name in LOGS:
        p = out / name
        if not p.exists():
            continue
        data = p.read_text()
        assert data == "" or data.endswith("\n"), f"{p} ends mid-line: ...{data[-60:]!r}"
        for line in data.splitlines():
            if name.endswith(".jsonl"):
                json.loads(line)
            else:
                assert len(line.split(",")) == 10, f"{p}: {line!r}"
    if (out / "summary.json").exists():
        assert isinstance(json.loads((out / "summary.json").read_text()), dict)


class FullDisk:
    """``os.write`` into files under ``folder`` succeeds for ``budget`` bytes, then writes what is left of
    it and fails with ENOSPC, as a filling disk does; other writes are untouched."""

    def __init__(self, folder: Path, budget: int) -> None:
        self.folder, self.budget, self.real = str(folder.resolve()), budget, os.write

    def __call__(self, fd: int, data) -> int:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if not target.startswith(self.folder):
            return self.real(fd, data)
        if self.budget <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = self.real(fd, bytes(data[: self.budget]))
        self.budget -= n
        return n


def test_injected_full_disk_stops_with_a_clear_error_and_whole_lines(recording, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert stream_main(["--replay", str(recording), "--output", str(out), "--max-frames", "8"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(jsonl.os, "write", FullDisk(out, budget=3000))
    assert stream_main(["--replay", str(recording), "--output", str(out), "--resume"]) == EXIT_ERROR
    monkeypatch.undo()
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if x.startswith("reid-stream: error: "))
    assert "no space left on device" in line and str(out) in line and "Traceback" not in err
    assert_well_formed(out)
    summary = json.loads((out / "summary.json").read_text())
    assert "no space left on device" in summary["error"]
    load_gallery(out / "gallery.npz")  # complete
    # space again: the resumed run appends whole lines after the last complete one, and the run scores
    assert stream_main(["--replay", str(recording), "--output", str(out), "--resume"]) == 0
    assert_well_formed(out)
    assert score_main([str(out)]) == 0


def test_line_file_truncates_a_partial_write_and_append_cuts_a_partial_line(tmp_path, monkeypatch):
    p = tmp_path / "log.txt"
    f = open_text_output(p, "test")
    assert isinstance(f, LineFile)
    f.write("a,1\nb,2\n")
    monkeypatch.setattr(jsonl.os, "write", FullDisk(tmp_path, budget=3))
    with pytest.raises(OSError) as e:
        f.write("c,3\nd,4\n")
    monkeypatch.undo()
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(p)
    assert p.read_text() == "a,1\nb,2\n"  # the partial "c,3" is gone
    f.write("e,5\n")
    f.close()
    assert p.read_text() == "a,1\nb,2\ne,5\n"
    with pytest.raises(ValueError, match="expected whole lines"):
        open_text_output(tmp_path / "other.txt", "test").write("no newline")
    p.write_text("a,1\nb,2\nhalf")  # cut off by an earlier version
    with pytest.warns(RuntimeWarning, match="last line was incomplete"):
        f = open_text_output(p, "test", append=True)
    f.write("c,3\n")
    f.close()
    assert p.read_text() == "a,1\nb,2\nc,3\n"


@pytest.fixture
def small_disk(tmp_path):
    """A real 400 KiB tmpfs (skipped where mounting is not permitted)."""
    where = tmp_path / "disk"
    where.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs",
                                                        str(where)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], capture_output=True)


def test_real_full_disk_keeps_the_earlier_gallery(recording, small_disk, capsys):
    out = small_disk / "out"
    assert stream_main(["--replay", str(recording), "--output", str(out), "--max-frames", "8"]) == 0
    gallery = (out / "gallery.npz").read_bytes()
    capsys.readouterr()
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * max(0, free - 8192))  # about two pages left
    assert stream_main(["--replay", str(recording), "--output", str(out), "--resume"]) == EXIT_ERROR
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if x.startswith("reid-stream: error: "))
    assert "no space left on device" in line and str(out) in line and "Traceback" not in err
    assert_well_formed(out)
    assert (out / "gallery.npz").read_bytes() == gallery  # the earlier save, whole
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind
    filler.unlink()
    assert stream_main(["--replay", str(recording), "--output", str(out), "--resume"]) == 0
    assert_well_formed(out)
    assert score_main([str(out)]) == 0
