"""MOT-challenge text files of the tracked people (and of the ground truth, for scoring).

Each line is ``frame,id,bb_left,bb_top,bb_width,bb_height,conf,-1,-1,-1`` (the 2-D MOT15 layout that
py-motmetrics and TrackEval read as ``mot15-2D``): 1-based frame number (``frame.index + 1``), a
positive integer id, the box in pixels of the image the detections were found in, and a confidence.

MOT ids are integers, the pipeline's long-term identities are strings: :class:`MotSink` numbers
keys (identities, or track ids with ``id_source="track"``) 1, 2, 3... in order of first appearance
and writes the mapping to the side file ``<path>.ids.json``::

    {"format": "reid-stream-mot-ids", "id_source": "identity", "ids": {"id-0003": 1, "id-0007": 2}}

The side file is replaced atomically every ``ids_every`` frames (when it changed) and at close.
With ``append=True`` an existing side file is loaded, so ids stay stable across resumed runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from reidstream.pipeline.atomic import atomic_write_text
from reidstream.pipeline.result import FrameResult
from reidstream.pipeline.sinks.fanout import SinkBase
from reidstream.pipeline.sinks.jsonl import open_text_output

ID_SOURCES = ("identity", "track")
IDS_FORMAT = "reid-stream-mot-ids"


def ids_path(path: str | os.PathLike) -> Path:
    """The side file holding the id mapping of the MOT file ``path``."""
    p = Path(path)
    return p.with_name(p.name + ".ids.json")


def mot_line(frame: int, ident: int, box, conf: float) -> str:
    """One MOT line (with newline) for a 1-based frame number and an ``x1, y1, x2, y2`` box."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return f"{frame},{ident},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{float(conf):.4f},-1,-1,-1\n"


def _max_id_in(path: Path) -> int:
    """Largest id in an existing MOT file (0 if none), so appended ids never collide."""
    best = 0
    if path.exists():
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.split(",")
                if len(parts) >= 2 and parts[1].strip().lstrip("-").isdigit():
                    best = max(best, int(parts[1]))
    return best


class _MotFile(SinkBase):
    """A MOT file written frame by frame, plus its id side file."""

    id_source = ""

    def __init__(self, path: str | os.PathLike, *, append: bool, overwrite: bool, ids_every: int,
                 name: str | None) -> None:
        if isinstance(ids_every, bool) or not isinstance(ids_every, int) or ids_every < 0:
            raise ValueError(f"{type(self).__name__}: expected ids_every to be an integer >= 0, got {ids_every!r}")
        self.path = Path(path)
        self.ids_path = ids_path(self.path)
        self.name = name or type(self).name
        self.ids_every = ids_every
        self.ids: dict[str, int] = {}
        if append and self.ids_path.exists():
            self.ids = self._load_ids()
        self._next = max([_max_id_in(self.path) if append else 0, *self.ids.values()]) + 1
        self._file = open_text_output(self.path, type(self).__name__, append=append, overwrite=overwrite)
        self._dirty = False
        self.frames = 0
        self.lines_written = 0

    def _load_ids(self) -> dict[str, int]:
        where = f"{type(self).__name__}: {self.ids_path}"
        try:
            d = json.loads(self.ids_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{where}: unreadable id mapping ({e})") from None
        if not isinstance(d, dict) or d.get("format") != IDS_FORMAT or not isinstance(d.get("ids"), dict):
            raise ValueError(f"{where}: expected a {IDS_FORMAT!r} JSON object with an 'ids' mapping")
        if d.get("id_source") != self.id_source:
            raise ValueError(f"{where}: expected id_source {self.id_source!r} to append, got {d.get('id_source')!r}")
        return {str(k): int(v) for k, v in d["ids"].items()}

    def _write_ids(self) -> None:
        doc = {"format": IDS_FORMAT, "id_source": self.id_source, "mot_file": self.path.name, "ids": self.ids}
        atomic_write_text(self.ids_path, json.dumps(doc, indent=1) + "\n", fsync=False)
        self._dirty = False

    def _lines(self, result: FrameResult) -> list[str]:
        raise NotImplementedError

    def _write(self, result: FrameResult) -> None:
        lines = self._lines(result)
        if lines:
            self._file.write("".join(lines))
            self._file.flush()
            self.lines_written += len(lines)
        self.frames += 1
        if self._dirty and self.ids_every and self.frames % self.ids_every == 0:
            self._write_ids()

    def _close(self) -> None:
        try:
            self._file.close()
        finally:
            self._write_ids()


class MotSink(_MotFile):
    """The pipeline's tracked people as a MOT file (the "hypotheses" when scoring).

    One line per detection that has an id: with ``id_source="identity"`` (default) the long-term
    identity (detections whose identity is still undecided, ``""``, are left out); with
    ``id_source="track"`` the short-term track id (untracked detections, ``-1``, are left out).
    ``conf`` is the detection score. See the module docstring for the id side file.

    Args:
        path: The MOT ``.txt`` file; parent directories are created.
        id_source: ``"identity"`` or ``"track"``.
        append: Add to an existing file, keeping its ids (loads ``<path>.ids.json``).
        overwrite: Replace an existing file.
        ids_every: Rewrite the side file every N frames when new ids appeared (0: only at close).
        name: Sink name in reports.

    Raises:
        FileExistsError: the file exists and is not empty (without ``append``/``overwrite``).
        ValueError: ``id_source`` unknown, or an appended side file is malformed.
    """

    name = "mot"

    def __init__(self, path: str | os.PathLike, *, id_source: str = "identity", append: bool = False,
                 overwrite: bool = False, ids_every: int = 50, name: str | None = None) -> None:
        if id_source not in ID_SOURCES:
            raise ValueError(f"MotSink: expected id_source in {ID_SOURCES}, got {id_source!r}")
        self.id_source = id_source
        super().__init__(path, append=append, overwrite=overwrite, ids_every=ids_every, name=name)

    def mot_id(self, key: str) -> int:
        """The MOT id of an identity (or track id as a string), assigning the next one if new."""
        ident = self.ids.get(key)
        if ident is None:
            ident = self.ids[key] = self._next
            self._next += 1
            self._dirty = True
        return ident

    def _lines(self, result: FrameResult) -> list[str]:
        det, out = result.detections, []
        for k in range(len(det)):
            if self.id_source == "identity":
                key = result.identities[k]
            else:
                key = str(int(det.track_ids[k])) if det.track_ids[k] >= 0 else ""
            if key:
                out.append(mot_line(result.index + 1, self.mot_id(key), det.boxes[k], det.scores[k]))
        return out


class GroundTruthMotSink(_MotFile):
    """The frames' ground truth as a MOT file (the reference when scoring :class:`MotSink` output).

    Only frames with ``has_ground_truth`` are written (frames without any are skipped and counted in
    ``frames_without_ground_truth``; a ground-truth frame with nobody in view writes no line). The id
    is ``PersonAnnotation.identity + 1`` (MOT ids start at 1), recorded in ``<path>.ids.json`` as for
    :class:`MotSink`; ``conf`` is 1 ("consider this box").

    Args:
        path: The MOT ``.txt`` file; parent directories are created.
        min_visible: Leave out people less visible than this fraction (0: keep all).
        append: Add to an existing file.
        overwrite: Replace an existing file.
        ids_every: Rewrite the side file every N frames when new ids appeared (0: only at close).
        name: Sink name in reports.
    """

    name = "mot_gt"
    id_source = "ground_truth"

    def __init__(self, path: str | os.PathLike, *, min_visible: float = 0.0, append: bool = False,
                 overwrite: bool = False, ids_every: int = 50, name: str | None = None) -> None:
        if not 0.0 <= float(min_visible) <= 1.0:
            raise ValueError(f"GroundTruthMotSink: expected min_visible in [0, 1], got {min_visible!r}")
        self.min_visible = float(min_visible)
        self.frames_without_ground_truth = 0
        super().__init__(path, append=append, overwrite=overwrite, ids_every=ids_every, name=name)

    def _lines(self, result: FrameResult) -> list[str]:
        if not result.has_ground_truth:
            self.frames_without_ground_truth += 1
            return []
        out = []
        for a in result.annotations:
            if a.visible < self.min_visible:
                continue
            key = str(a.identity)
            if key not in self.ids:
                self.ids[key] = a.identity + 1
                self._dirty = True
            out.append(mot_line(result.index + 1, a.identity + 1, a.box, 1.0))
        return out


__all__ = ["GroundTruthMotSink", "ID_SOURCES", "MotSink", "ids_path", "mot_line"]
