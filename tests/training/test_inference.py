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


def test_items_carrying_other_modalities_or_not_are_embedded_together(tmp_path):
    # lit captures carry colour and IR, dark ones IR only (as reid-synth dataset pipeline writes them):
    # embedding the IR of all of them must not trip over the colour some lack
    caps = [CropCapture(p, 0, "", f, ir=np.full((32, 16), 40 * p + f, np.uint8),
                        rgb=np.full((32, 16, 3), 50, np.uint8) if f % 2 == 0 else None)
            for p in (1, 2, 3, 4) for f in range(4)]
    index = folder.write(tmp_path, caps, train_ids=[1, 2, 3], test_ids=[4])
    data = ReIDDataset(index.splits["train"], ("rgb", "ir"), {m: Preprocess(m, 16, 8) for m in ("rgb", "ir")},
                       require_all=False)
    fs = extract_features(lambda x: x.mean(dim=(2, 3)), data, "ir", batch_size=5)
    assert len(fs.embeddings) == 12 and sorted(set(fs.pids.tolist())) == [1, 2, 3]
    assert len(extract_features(lambda x: x.mean(dim=(2, 3)), data, "rgb", batch_size=5).embeddings) == 6
