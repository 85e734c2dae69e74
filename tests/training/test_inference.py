"""Feature extraction: a network whose activations overflow fails loudly, except in validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reidstream.training.data import CropCapture, folder
from reidstream.training.data.torch_data import ReIDDataset
from reidstream.training.data.transforms import Preprocess
from reidstream.training.inference import extract_features


@pytest.fixture
def data(tmp_path):
    caps = [CropCapture(p, 0, "", f, rgb=np.full((32, 16, 3), 50 * p, np.uint8)) for p in (1, 2, 3) for f in range(2)]
    index = folder.write(tmp_path, caps, train_ids=[1, 2], test_ids=[3])
    return ReIDDataset(index.splits["train"], ("rgb",), {"rgb": Preprocess("rgb", 16, 8)})


def overflowing(x: torch.Tensor) -> torch.Tensor:
    """Embeds the first image as inf (as an overflowed network would), the rest as their mean colour."""
    out = x.mean(dim=(2, 3))
    out[0] = float("inf")
    return out


def test_nonfinite_embeddings_raise_by_default_and_name_the_modality(data):
    with pytest.raises(ValueError, match=r"1 of 4 rgb embeddings are not finite \(first: item 0\)"):
        extract_features(overflowing, data, "rgb", batch_size=4)


def test_validation_mode_zeroes_them_with_a_warning(data):
    with pytest.warns(RuntimeWarning, match="1 of 4 rgb embeddings are not finite"):
        fs = extract_features(overflowing, data, "rgb", batch_size=4, nonfinite="zero")
    assert np.all(fs.embeddings[0] == 0) and np.isfinite(fs.embeddings).all()
    assert not np.all(fs.embeddings[1:] == 0)
    with pytest.raises(ValueError, match="nonfinite"):
        extract_features(overflowing, data, "rgb", nonfinite="ignore")
