"""The ``Source`` protocol: an iterator of frames, one per capture, in order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Protocol, runtime_checkable

from reidstream.pipeline.types import Frame, Modality, PersonAnnotation


class SourceError(RuntimeError):
    """A source cannot be opened or read (names the device, file or frame)."""


@dataclass(frozen=True, eq=False)
class AnnotatedFrame:
    """A frame with its ground truth, when the source has one (simulator, labelled recordings).

    Attributes:
        frame: The captured frame.
        annotations: Ground truth per visible person; empty when unknown.
        has_ground_truth: Whether ``annotations`` is ground truth (an empty
            tuple then means "nobody in view", not "unknown").
    """

    frame: Frame
    annotations: tuple[PersonAnnotation, ...] = field(default_factory=tuple)
    has_ground_truth: bool = False


@runtime_checkable
class Source(Protocol):
    """A stream of frames from one camera (live, recorded or simulated).

    Contract: iterating yields one :class:`AnnotatedFrame` per capture in
    capture order with increasing ``frame.index``; iteration ends when the
    source is exhausted (recordings, ``max_frames``) or closed. ``close()`` is
    idempotent. Sources are context managers.
    """

    camera_id: str
    modalities: tuple[Modality, ...]

    def __iter__(self) -> Iterator[AnnotatedFrame]: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Source": ...

    def __exit__(self, *exc) -> None: ...
