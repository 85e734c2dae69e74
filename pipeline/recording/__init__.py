"""Recordings of a camera: a directory of lossless images per modality plus an index, replayable frame by frame.

:mod:`~reidstream.pipeline.recording.format` defines the format (``docs/recording-format.md``: metadata, image
codecs), :mod:`~reidstream.pipeline.recording.writer` writes it, and
:class:`reidstream.pipeline.sources.recording.RecordingSource` replays it.
"""

from reidstream.pipeline.recording.format import (FORMAT_NAME, FORMAT_VERSION, INDEX_FILE, META_FILE, RecordingMeta,
                                                  check_target, decode_image, encode_image, read_meta)
from reidstream.pipeline.recording.writer import RecordingWriter, depth_to_mm, record

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "META_FILE", "INDEX_FILE", "RecordingMeta", "RecordingWriter",
           "check_target", "decode_image", "depth_to_mm", "encode_image", "read_meta", "record"]
