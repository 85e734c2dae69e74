"""Enrolment of named people from colour images, before a stream starts."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from reidstream.pipeline.embed.stage import EmbedStage
from reidstream.pipeline.gallery import Gallery
from reidstream.pipeline.types import Crops, Modality


def read_person_image(path: str | Path) -> np.ndarray:
    """A colour crop of one person (any image file OpenCV reads) as ``H x W x 3`` uint8 RGB.

    Raises:
        FileNotFoundError / ValueError: naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: enrolment image not found")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: not an image OpenCV can read (expected a colour crop of one person)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def enrol_images(gallery: Gallery, embed: EmbedStage, name: str, files: Sequence[str | Path],
                 timestamp: float = 0.0) -> str:
    """Adds ``name`` to ``gallery`` from colour crops, embedded into every space with a colour network.

    Enrolled people never expire by age. Returns the identity (``name``).

    Raises:
        ValueError: no files, an unreadable file, a duplicate name, or a bundle without a colour network.
    """
    if not files:
        raise ValueError(f"enrol {name!r}: expected at least one image file")
    if "rgb" not in embed.modalities:
        raise ValueError(f"enrol {name!r}: the bundle has no colour network to embed enrolment images with")
    images = tuple(read_person_image(f) for f in files)
    n = len(images)
    crops = Crops({Modality.RGB: images}, np.zeros((n, 4), np.float32), np.arange(n, dtype=np.int64))
    return gallery.enrol(name, embed(crops), timestamp)
