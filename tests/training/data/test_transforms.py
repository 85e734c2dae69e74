"""Preprocess numerics (resize, metric depth scaling, replication, normalisation) and paired augmentation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reidstream.training.data.transforms import (IMAGENET_MEAN, IMAGENET_STD, Preprocess, augment,
                                                 default_preprocess, hflip, pad_crop)

MEAN = np.asarray(IMAGENET_MEAN, np.float32)[:, None, None]
STD = np.asarray(IMAGENET_STD, np.float32)[:, None, None]


def _unnormalise(x: np.ndarray) -> np.ndarray:
    return x * STD + MEAN


def test_rgb_is_resized_scaled_and_normalised_per_channel():
    img = np.zeros((8, 4, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 255, 128, 0
    out = Preprocess("rgb", height=16, width=8)(img)
    assert out.dtype == np.float32 and out.shape == (3, 16, 8) and out.flags.c_contiguous
    np.testing.assert_allclose(_unnormalise(out)[:, 0, 0], [1.0, 128 / 255, 0.0], atol=1e-5)
    grey = Preprocess("rgb", height=16, width=8, channels=1)(img)
    luma = 0.299 + 0.587 * 128 / 255
    assert grey.shape == (1, 16, 8)
    np.testing.assert_allclose(grey[0, 0, 0] * np.mean(IMAGENET_STD) + np.mean(IMAGENET_MEAN), luma, atol=1e-5)


def test_depth_is_scaled_metrically_near_bright_invalid_zero():
    p = Preprocess("depth", height=2, width=4, depth_min_m=0.5, depth_max_m=8.0)
    depth = np.array([[0, 300, 500, 4250], [8000, 9000, 2000, 65535]], np.uint16)
    v = _unnormalise(p(depth))
    assert v.shape == (3, 2, 4)
    np.testing.assert_allclose(v[0], v[1], atol=1e-6)  # replicated channels
    np.testing.assert_allclose(v[2], v[0], atol=1e-6)
    expected = np.array([[0.0, 1.0, 1.0, 0.5], [0.0, 0.0, 6.0 / 7.5, 0.0]], np.float32)
    np.testing.assert_allclose(v[0], expected, atol=1e-5)
    metres = np.array([[np.nan, 0.5], [np.inf, 2.0]], np.float32)
    vm = _unnormalise(Preprocess("depth", height=2, width=2)(metres))[0]
    np.testing.assert_allclose(vm, [[0.0, 1.0], [0.0, 0.8]], atol=1e-5)


def test_depth_resize_is_nearest_never_mixing_valid_and_invalid():
    depth = np.zeros((40, 20), np.uint16)
    depth[::2, ::2] = 3000  # a checkerboard of valid and missing pixels
    v = _unnormalise(Preprocess("depth", height=17, width=9)(depth))[0]
    values = np.unique(np.round(v, 4))
    np.testing.assert_allclose(values, [0.0, round((8.0 - 3.0) / 7.5, 4)])


def test_ir_and_thermal_replicated_from_8_and_16_bit():
    ir8 = np.full((10, 6), 51, np.uint8)
    out = _unnormalise(Preprocess("ir", height=10, width=6)(ir8))
    np.testing.assert_allclose(out, 0.2, atol=1e-5)
    th16 = np.full((10, 6), 65535, np.uint16)
    out = Preprocess("thermal", height=4, width=2, channels=1)(th16)
    assert out.shape == (1, 4, 2)
    np.testing.assert_allclose(out * np.mean(IMAGENET_STD) + np.mean(IMAGENET_MEAN), 1.0, atol=1e-5)


def test_bad_inputs_and_fields_are_named():
    with pytest.raises(ValueError, match="Preprocess.modality"):
        Preprocess("sonar")
    with pytest.raises(ValueError, match="Preprocess.height"):
        Preprocess("rgb", height=0)
    with pytest.raises(ValueError, match="Preprocess.std"):
        Preprocess("rgb", std=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="Preprocess.mean"):
        Preprocess("rgb", mean=(0.5, 0.5))
    with pytest.raises(ValueError, match="Preprocess.depth_max_m"):
        Preprocess("depth", depth_min_m=2.0, depth_max_m=1.0)
    with pytest.raises(ValueError, match="Preprocess.channels"):
        Preprocess("ir", channels=2)
    with pytest.raises(ValueError, match=r"Preprocess\(depth\): expected uint16 millimetres or float32 metres"):
        Preprocess("depth")(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"Preprocess\(rgb\): expected an H x W x 3 uint8"):
        Preprocess("rgb")(np.zeros((4, 4), np.uint8))


def test_to_dict_round_trips_through_json_and_rejects_unknown_keys():
    p = Preprocess("depth", height=128, width=64, depth_min_m=0.3, depth_max_m=6.0, channels=1)
    d = json.loads(json.dumps(p.to_dict()))
    assert Preprocess.from_dict(d) == p
    assert default_preprocess("rgb", 64, 32) == Preprocess("rgb", 64, 32)
    with pytest.raises(ValueError, match=r"unknown keys \['colour_space'\]"):
        Preprocess.from_dict({**d, "colour_space": "bgr"})
    with pytest.raises(ValueError, match="missing key 'modality'"):
        Preprocess.from_dict({"height": 4})


def test_augment_applies_the_same_flip_and_crop_to_every_modality():
    ramp = np.broadcast_to(np.arange(10, dtype=np.float32), (20, 10))
    images = {"rgb": np.stack([ramp, ramp + 1, ramp + 2]), "depth": np.stack([ramp * 2] * 3)}
    flips = set()
    for s in range(20):
        out = augment(images, np.random.default_rng(s), fill={"depth": -7.0})
        assert out["rgb"].shape == (3, 20, 10) and out["depth"].shape == (3, 20, 10)
        inside = out["depth"][0] != -7.0
        assert (out["rgb"][:, ~inside] == 0.0).all() and (~inside).any() == (out["depth"][0] == -7.0).any()
        np.testing.assert_allclose(out["depth"][0][inside], 2 * out["rgb"][0][inside])
        row = out["depth"][0][10][inside[10]]
        flips.add(bool(row[0] > row[-1]))
    assert flips == {True, False}
    again = augment(images, np.random.default_rng(3))
    np.testing.assert_array_equal(again["rgb"], augment(images, np.random.default_rng(3))["rgb"])
    np.testing.assert_array_equal(hflip(images["rgb"])[:, :, 0], images["rgb"][:, :, -1])
    cropped = pad_crop(images["rgb"], 0, 0, 2, 1, fill=np.array([9.0, 8.0, 7.0], np.float32))
    assert cropped[:, 0, 0].tolist() == [9.0, 8.0, 7.0] and cropped[0, 2, 1] == 0.0
    with pytest.raises(ValueError, match="one H x W"):
        augment({"rgb": images["rgb"], "depth": images["depth"][:, :10]}, np.random.default_rng(0))


def test_color_augment_permutes_or_greys_only_colour():
    from reidstream.training.data.transforms import color_augment

    rng = np.random.default_rng(0)
    img = np.zeros((4, 2, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 200, 100, 10
    seen = set()
    for _ in range(200):
        out = color_augment(img, rng, 1.0)
        assert out.shape == img.shape and out.dtype == np.uint8
        seen.add(tuple(out[0, 0]))
    assert any(len(set(v)) == 1 for v in seen), "some outputs must be grey"
    assert {(200, 100, 10), (10, 100, 200)} & seen or len(seen) > 3, "channel permutations expected"
    assert all(sorted(v) == [10, 100, 200] or len(set(v)) == 1 for v in seen)
    assert np.array_equal(color_augment(img, rng, 0.0), img)
    with pytest.raises(ValueError, match="H x W x 3"):
        color_augment(img[..., 0], rng, 1.0)
