"""An append-only journal of gallery mutations: ``gallery.npz`` (the snapshot) + the journal = the gallery.

Why: the snapshot is saved every ``output.save_every_s``; a kill between two saves would lose the
identities created since the last one, and a restarted run would hand their names out again. So every
frame's changes are written here, and fsynced, before the frame's result reaches the sinks (and the
events that announce the identities).

Records (:class:`Mutation`) are **state-based**: each names one identity slot or one visit row and
carries its whole new state (or its removal), plus the id counters. Replaying a record twice, or
replaying records the snapshot already holds, gives the same gallery (idempotent), and only the last
state of a slot or row within a frame needs to be written; op-based records ("add a vector to visit
r", "move visit r") would have to be replayed exactly once and in order, which is what makes a
snapshot-plus-log hard to get right after a crash. The records are plain values (an op name,
JSON-able fields, small numpy arrays) so that they can be shipped as they are (e.g. over a Redis
Stream, :func:`encode_batch` / :func:`decode_batch`) to keep a replica gallery in step
(:meth:`~reidstream.pipeline.gallery.store.Gallery.apply_mutation`).

Ops: ``upsert_identity`` (``slot``, ``name``, ``created``, ``pinned``, ``last_seen``),
``remove_identity`` (``slot``), ``upsert_visit`` (``row``, ``owner``, ``track``, ``start``, ``end``,
``height``, ``height_sigma``, ``width``, ``width_sigma``, ``lit``; arrays: feature key -> prototype),
``remove_visit`` (``row``), ``counters`` (``next_id``, ``serial``). Slots and rows are the gallery's own
indices; the snapshot keeps them (``visit_row``), so records written after it apply to it. One record is
op-based: ``shift_clock`` (``shift``), written once per restart whose clock starts before the stored times
(:meth:`~reidstream.pipeline.gallery.store.Gallery.match` rebases them): a state record per visit would
copy the whole gallery into the journal; the ``seq`` applies it exactly once.

Size: a visit's prototypes change on every frame of its track; those refreshes are written at most every
``Gallery.journal_refresh_s`` (and when the track ends), everything else at once. After a kill, a visit
of a track that was still going on holds its prototypes of at most that long before.

File: one JSON line per frame that changed the gallery, ``{"seq": n, "mutations": [...]}`` (Python's
``json``: ``NaN``/``Infinity`` allowed; arrays as ``{"dtype", "shape", "b64"}``), ``seq`` increasing.
The snapshot records the ``seq`` it includes (``journal_seq``); after a save the journal is emptied
(atomically). A kill between the snapshot's rename and the emptying leaves records at or below the
snapshot's ``seq``: :func:`replay` skips them. A last line cut off mid-write is ignored with a warning
(and cut off before the next append).
"""

from __future__ import annotations

import base64
import json
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from reidstream.pipeline.atomic import atomic_write_bytes

JOURNAL_FILE = "gallery.journal"
"""The journal's name next to ``gallery.npz`` in a run's output directory."""
FIELDS = {
    "upsert_identity": ("slot", "name", "created", "pinned", "last_seen"),
    "remove_identity": ("slot",),
    "upsert_visit": ("row", "owner", "track", "start", "end", "height", "height_sigma", "width", "width_sigma",
                     "lit"),
    "remove_visit": ("row",),
    "counters": ("next_id", "serial"),
    "shift_clock": ("shift",),
}
"""Op name -> its fields."""
OPTIONAL = {"upsert_identity": ("camera",)}
"""Op name -> fields a record may carry (later additions: older journals lack them)."""


@dataclass(frozen=True)
class Mutation:
    """One gallery change: the new state of an identity slot or visit row (see the module docstring).

    Attributes:
        op: One of :data:`FIELDS`.
        fields: JSON-able values of the op's fields.
        arrays: ``upsert_visit``: feature key (``space/modality`` or ``colour``) -> float32 prototype.
    """

    op: str
    fields: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (arrays base64-encoded); :meth:`from_dict` is its inverse."""
        arrays = {k: {"dtype": v.dtype.str, "shape": list(v.shape), "b64": base64.b64encode(v.tobytes()).decode()}
                  for k, v in self.arrays.items()}
        return {"op": self.op, **self.fields, **({"arrays": arrays} if arrays else {})}

    @classmethod
    def from_dict(cls, d: Any, where: str = "mutation") -> Mutation:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: naming ``where`` and the op, field or array that is missing or malformed.
        """
        if not isinstance(d, dict) or d.get("op") not in FIELDS:
            got = d.get("op") if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"{where}: expected a mutation with 'op' one of {', '.join(FIELDS)}, got {got!r}")
        op = d["op"]
        missing = [k for k in FIELDS[op] if k not in d]
        if missing:
            raise ValueError(f"{where}: '{op}' lacks field(s) {', '.join(missing)}")
        arrays = {}
        for key, a in (d.get("arrays") or {}).items():
            try:
                v = np.frombuffer(base64.b64decode(a["b64"]), np.dtype(a["dtype"])).reshape(a["shape"]).copy()
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{where}: array '{key}' of '{op}': expected dtype, shape and b64 data: {e}") from None
            arrays[key] = v
        extra = {k: d[k] for k in OPTIONAL.get(op, ()) if k in d}
        return cls(op, {**{k: d[k] for k in FIELDS[op]}, **extra}, arrays)


def encode_batch(seq: int, mutations: Iterable[Mutation]) -> bytes:
    """One journal line (UTF-8, ending with a newline): ``{"seq": seq, "mutations": [...]}``."""
    line = json.dumps({"seq": int(seq), "mutations": [m.to_dict() for m in mutations]}, separators=(",", ":"))
    return (line + "\n").encode("utf-8")


def decode_batch(data: bytes | str, where: str = "journal batch") -> tuple[int, list[Mutation]]:
    """Inverse of :func:`encode_batch`: ``(seq, mutations)``.

    Raises:
        ValueError: naming ``where``, when ``data`` is not JSON or not a batch.
    """
    try:
        d = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{where}: not valid JSON: {e}") from None
    if not isinstance(d, dict) or not isinstance(d.get("seq"), int) or not isinstance(d.get("mutations"), list):
        raise ValueError(f"{where}: expected {{\"seq\": int, \"mutations\": [...]}}")
    return d["seq"], [Mutation.from_dict(m, f"{where}, mutation {i}") for i, m in enumerate(d["mutations"])]


def journal_path(gallery_path: str | os.PathLike) -> Path:
    """The journal that goes with a snapshot: :data:`JOURNAL_FILE` in the same folder."""
    return Path(gallery_path).with_name(JOURNAL_FILE)


def _read(path: Path) -> tuple[list[tuple[int, list[Mutation]]], int, str | None]:
    """The whole batches of a journal, the bytes they take, and a description of a torn last line (or None).

    The last line is torn when it lacks its newline or is not a valid batch (a kill mid-write); an invalid
    line before it is an error.
    """
    data = path.read_bytes() if path.is_file() else b""
    lines = data.split(b"\n")  # the last item: b"" after a final newline, else a line cut off
    if lines[-1] == b"":
        lines.pop()
    batches: list[tuple[int, list[Mutation]]] = []
    good = 0
    for no, line in enumerate(lines, 1):
        try:
            if no == len(lines) and not data.endswith(b"\n"):
                raise ValueError("no newline at its end")
            seq, muts = decode_batch(line, f"{path}, line {no}")
        except ValueError as e:
            if no < len(lines):
                raise
            return batches, good, f"{path}: its last line (line {no}, {len(line)} bytes) is incomplete ({e}); ignored"
        if batches and seq <= batches[-1][0]:
            raise ValueError(f"{path}, line {no}: seq {seq} after seq {batches[-1][0]}; expected increasing seq")
        batches.append((seq, muts))
        good += len(line) + 1
    return batches, good, None


class GalleryJournal:
    """Appends batches of :class:`Mutation` to a journal file.

    Opening cuts a torn last line off (with a warning). Appends continue the file's ``seq`` (or ``seq``,
    the snapshot's, if larger).

    Args:
        path: The journal file (created if missing).
        seq: The ``journal_seq`` of the gallery that writes it (the snapshot's plus what was replayed).

    Raises:
        ValueError: the file holds batches beyond ``seq``: the gallery lacks them (replay them first).
    """

    def __init__(self, path: str | os.PathLike, seq: int = 0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        batches, good, torn = _read(self.path)
        if batches and batches[-1][0] > seq:
            raise ValueError(f"{self.path}: holds changes up to seq {batches[-1][0]} that the gallery (at seq {seq}) "
                             f"lacks; replay the journal first (reidstream.pipeline.gallery.journal.replay) or "
                             f"delete it with the gallery (--overwrite)")
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if torn is not None:
            os.ftruncate(self._fd, good)
            warnings.warn(torn + "; cut off before appending", RuntimeWarning, stacklevel=2)
        self._size = good if torn is not None else os.fstat(self._fd).st_size
        self._unsynced = False
        self.seq = int(seq)

    def append(self, mutations: Iterable[Mutation]) -> int:
        """Writes one batch (nothing when empty); returns its ``seq`` (the last one when nothing was written).

        Raises:
            OSError: the write failed (a full disk); the file is cut back to its last whole batch.
        """
        mutations = list(mutations)
        if not mutations:
            return self.seq
        if self._fd is None:
            raise ValueError(f"{self.path}: the journal is closed")
        data, done = encode_batch(self.seq + 1, mutations), 0
        try:
            while done < len(data):
                done += os.write(self._fd, data[done:])
        except OSError as e:
            if done:
                os.ftruncate(self._fd, self._size)
            raise OSError(e.errno, f"{e.strerror} (writing {self.path})", str(self.path)) from e
        self._size += len(data)
        self._unsynced = True
        self.seq += 1
        return self.seq

    def flush(self) -> None:
        """Makes the appended batches durable (``os.fsync``; nothing to do when nothing was appended)."""
        if self._fd is not None and self._unsynced:
            os.fsync(self._fd)
            self._unsynced = False

    def rotate(self) -> None:
        """Empties the journal atomically (a new empty file renamed over it), once a snapshot holding every
        batch up to :attr:`seq` is saved. A failed rotation (a full disk) leaves the journal as it was."""
        atomic_write_bytes(self.path, b"")
        self.close()
        self._fd, self._size, self._unsynced = os.open(self.path, os.O_WRONLY | os.O_APPEND), 0, False

    def close(self) -> None:
        """Closes the file; idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


@dataclass(frozen=True)
class ReplayReport:
    """What :func:`replay` did: batches ``applied``, batches ``skipped`` (already in the snapshot),
    ``mutations`` applied, and ``torn`` (the description of an ignored cut-off last line, or None)."""

    applied: int
    skipped: int
    mutations: int
    torn: str | None = None


def replay(gallery, path: str | os.PathLike, *, on_warning: Callable[[str], None] | None = None) -> ReplayReport:
    """Applies the journal's batches beyond ``gallery.journal_seq`` (the snapshot's) to ``gallery``.

    Args:
        gallery: A :class:`~reidstream.pipeline.gallery.store.Gallery` (loaded from the snapshot, or empty).
        path: The journal (a missing file replays nothing).
        on_warning: Called with the message about a cut-off last line; None: :func:`warnings.warn`.

    Raises:
        ValueError: naming the file and line, when a line other than the last is not a valid batch.
    """
    batches, _, torn = _read(Path(path))
    if torn is not None:
        (on_warning or (lambda m: warnings.warn(m, RuntimeWarning, stacklevel=3)))(torn)
    applied = skipped = n = 0
    for seq, mutations in batches:
        if seq <= gallery.journal_seq:
            skipped += 1
            continue
        for m in mutations:
            gallery.apply_mutation(m)
        gallery.journal_seq, applied, n = seq, applied + 1, n + len(mutations)
    gallery.settle()
    return ReplayReport(applied, skipped, n, torn)


def put_visit(table, row: int, fields: dict[str, Any], vectors: dict[str, np.ndarray]) -> None:
    """Stores a visit in row ``row`` of a :class:`~reidstream.pipeline.gallery.evidence.VisitTable` (growing
    it), whatever the row held; ``fields`` as in ``upsert_visit``."""
    from reidstream.pipeline.gallery.evidence import Visit

    row = int(row)
    if row < 0:
        raise ValueError(f"visit row {row}: expected a row >= 0")
    table._grow(row + 1)
    if not table.used[row]:
        table._free.remove(row)
    table.used[row], table.owner[row], table.track[row] = True, int(fields["owner"]), int(fields["track"])
    visit = Visit({k: np.asarray(v, np.float32) for k, v in vectors.items()}, float(fields["height"]),
                  float(fields["height_sigma"]), float(fields["width"]), float(fields["width_sigma"]),
                  bool(fields["lit"]))
    table.set(row, visit, float(fields["start"]), float(fields["end"]))


__all__ = ["FIELDS", "JOURNAL_FILE", "GalleryJournal", "Mutation", "ReplayReport", "decode_batch", "encode_batch",
           "journal_path", "put_visit", "replay"]
