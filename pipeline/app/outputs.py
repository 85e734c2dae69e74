"""The ``reid-stream --output`` directory: which files are a run's outputs, and when a directory may be used.

One rule: a run starts in a directory that holds no outputs of an earlier run. ``--overwrite``
(``output.existing: overwrite``) deletes those outputs when the new run starts (a fresh start: the
gallery is not reloaded); ``--resume`` (``output.existing: resume``) continues the earlier run: its
``gallery.npz`` is reloaded with the changes since its last save replayed from ``gallery.journal``
(identities are kept) and the logs are appended to, ``frames.jsonl``
marking where the restart begins so that ``reid-score`` tells a restart from frames logged twice.
A directory holding a recording (``recording.json``) is never used, whatever the flags: the run would
append its score log to the recording's own ``frames.jsonl``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from reidstream.pipeline.recording import META_FILE

RUN_OUTPUTS = ("config.json", "events.jsonl", "tracks.txt", "tracks.txt.ids.json", "gt.txt", "gt.txt.ids.json",
               "frames.jsonl", "summary.json", "gallery.npz", "gallery.journal", "annotated.mp4")
"""Files a ``reid-stream`` run writes into its output directory."""
PER_CAMERA_OUTPUTS = re.compile(r"^(tracks|gt)-[A-Za-z0-9][A-Za-z0-9_.-]*\.txt(\.ids\.json)?$|"
                                r"^annotated-[A-Za-z0-9][A-Za-z0-9_.-]*\.mp4$")
"""Files a site run (several cameras) writes per camera: ``tracks-<id>.txt``, ``gt-<id>.txt``, their id maps,
``annotated-<id>.mp4``."""
EXISTING = ("refuse", "overwrite", "resume")
"""What a run may do with the outputs of an earlier run (``output.existing``)."""


def is_run_output(name: str) -> bool:
    """Whether ``name`` is a file a run writes (:data:`RUN_OUTPUTS`, or a site's per-camera outputs)."""
    return name in RUN_OUTPUTS or PER_CAMERA_OUTPUTS.match(name) is not None


def run_outputs(out: str | os.PathLike) -> list[str]:
    """The names of the run outputs present in the directory ``out`` (:data:`RUN_OUTPUTS`, then a site's
    per-camera files, sorted)."""
    out = Path(out)
    found = [name for name in RUN_OUTPUTS if (out / name).exists()]
    if out.is_dir():
        found += sorted(p.name for p in out.iterdir() if PER_CAMERA_OUTPUTS.match(p.name) and p.is_file())
    return found


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def check_output_dir(out: str | os.PathLike, existing: str = "refuse", *,
                     replay: str | os.PathLike | None = None) -> list[str]:
    """Checks that a run may write into ``out``; writes and deletes nothing.

    Args:
        out: The output directory (it need not exist).
        existing: ``refuse``, ``overwrite`` or ``resume`` (see the module docstring).
        replay: The recording the run replays, if it replays one.

    Returns:
        The run outputs already in ``out`` (to delete with :func:`clear_outputs` under ``overwrite``,
        to continue under ``resume``).

    Raises:
        FileExistsError: naming the directory, when ``out`` is the replayed recording, holds a recording,
            is not a directory, or holds run outputs (naming them) and ``existing`` is ``refuse``.
        ValueError: ``existing`` is not one of :data:`EXISTING`.
    """
    if existing not in EXISTING:
        raise ValueError(f"output.existing: expected one of {', '.join(EXISTING)}, got {existing!r}")
    out = Path(out)
    if replay is not None and _same(out, Path(replay)):
        raise FileExistsError(f"--output {out} is the recording being replayed (--replay {replay}); the run would "
                              f"append its score log to the recording's own frames.jsonl; choose another --output "
                              f"directory")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--output {out}: exists and is not a directory")
    if (out / META_FILE).exists():
        raise FileExistsError(f"--output {out}: holds a recording ({out / META_FILE}); the run would append its "
                              f"score log to the recording's own frames.jsonl; choose another --output directory "
                              f"(--overwrite never replaces a recording)")
    found = run_outputs(out) if out.is_dir() else []
    if found and existing == "refuse":
        raise FileExistsError(f"--output {out}: already holds the outputs of a run ({', '.join(found)}); pass "
                              f"--overwrite to delete them and start afresh, --resume to continue that run "
                              f"(gallery.npz reloaded, logs appended), or choose another --output directory")
    return found


def clear_outputs(out: str | os.PathLike, names: list[str] | tuple[str, ...] = RUN_OUTPUTS) -> None:
    """Deletes the run outputs ``names`` from ``out`` (other files are left alone)."""
    for name in names:
        if not is_run_output(name):
            raise ValueError(f"clear_outputs: {name!r} is not a run output (expected one of {', '.join(RUN_OUTPUTS)})")
        (Path(out) / name).unlink(missing_ok=True)


__all__ = ["EXISTING", "RUN_OUTPUTS", "check_output_dir", "clear_outputs", "run_outputs"]
