"""The corruption front door: names, severities, input checks and the sweep, on a stand-in registry and the real one.

The stand-in registry (two simple corruptions under real names) tests the checks of ``corrupt`` and ``sweep``
without the corruption modules; the ``real`` tests need noise.py, blur.py, weather.py and digital.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vitlessons.perturb import EXTRA, IMAGENET_C, corrupt, get_corruption, list_corruptions, registry, sweep


def batch(b: int = 2, h: int = 32, w: int = 32) -> torch.Tensor:
    """Random images in [0, 1], reproducible."""
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace the registry by a noise and a brightness corruption, so the checks run on their own."""
    monkeypatch.setattr(registry, "CORRUPTIONS", {})
    monkeypatch.setattr(registry, "_load_all", lambda: None)

    @registry.corruption("gaussian_noise", "noise", (0.1, 0.2, 0.3, 0.4, 0.5))
    def noisy(images, sigma, generator):
        return images + sigma * torch.randn(images.shape, generator=generator, device=images.device)

    @registry.corruption("brightness", "digital", (0.1, 0.2, 0.3, 0.4, 0.5))
    def brighter(images, shift, generator):
        return images + shift

    return ["gaussian_noise", "brightness"]


# ----- names --------------------------------------------------------------------------------

def test_unknown_name_lists_the_valid_ones(stand_in):
    with pytest.raises(KeyError, match="unknown corruption 'gausian_noise'.*gaussian_noise, brightness"):
        corrupt(batch(), "gausian_noise", 1)


def test_list_corruptions_keeps_imagenet_c_order_and_filters_families(stand_in):
    assert list_corruptions() == stand_in
    assert list_corruptions("noise") == ["gaussian_noise"]
    assert list_corruptions("weather") == []


def test_registering_needs_five_levels():
    with pytest.raises(ValueError, match="need 5 severity levels, got 3"):
        registry.corruption("bad", "noise", (1, 2, 3))


# ----- input checks -------------------------------------------------------------------------

@pytest.mark.parametrize("severity", [0, 6, -1, 2.0, True, "3", None])
def test_bad_severities_are_refused(stand_in, severity):
    with pytest.raises(ValueError, match="severity must be an int from 1 to 5"):
        corrupt(batch(), "brightness", severity)


@pytest.mark.parametrize("bad, error, words", [
    (torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8), TypeError, "float"),
    (torch.rand(3, 32, 32), ValueError, "shape"),
    (torch.rand(2, 1, 32, 32), ValueError, "shape"),
    (torch.rand(2, 3, 32, 32) * 2 - 1, ValueError, r"\[0, 1\]"),
    (np.zeros((2, 3, 32, 32), dtype=np.float32), TypeError, "torch.Tensor"),
])
def test_non_images_are_refused(stand_in, bad, error, words):
    with pytest.raises(error, match=words):
        corrupt(bad, "brightness", 1)


@pytest.mark.parametrize("shape", [(1, 3, 31, 64), (1, 3, 64, 16), (1, 3, 8, 8)])
def test_images_smaller_than_32_pixels_are_refused(stand_in, shape):
    with pytest.raises(ValueError, match="at least 32x32"):
        corrupt(torch.rand(shape), "brightness", 1)


def test_generator_on_another_device_is_refused(stand_in):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA: a CUDA generator for CPU images")
    with pytest.raises(ValueError, match="generator is on cuda"):
        corrupt(batch(), "gaussian_noise", 1, torch.Generator(device="cuda"))


def test_corrupt_returns_a_clamped_batch_and_repeats_under_a_seed(stand_in):
    images = batch()
    out = corrupt(images, "gaussian_noise", 5, torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.min() >= 0 and out.max() <= 1 and not torch.equal(out, images)
    assert torch.equal(out, corrupt(images, "gaussian_noise", 5, torch.Generator().manual_seed(1)))
    assert not torch.equal(out, corrupt(images, "gaussian_noise", 5, torch.Generator().manual_seed(2)))
    assert torch.equal(corrupt(images, "gaussian_noise", 5), corrupt(images, "gaussian_noise", 5))  # seed 0
    torch.testing.assert_close(corrupt(images, "brightness", 2), (images + 0.2).clamp(0, 1))


# ----- sweep --------------------------------------------------------------------------------

def test_sweep_yields_every_pair_in_order(stand_in):
    pairs = [(name, severity) for name, severity, _ in sweep(batch())]
    assert pairs == [(name, s) for name in stand_in for s in (1, 2, 3, 4, 5)]
    chosen = [(n, s) for n, s, _ in sweep(batch(), names=["brightness"], severities=[4, 2])]
    assert chosen == [("brightness", 4), ("brightness", 2)]


def test_sweep_is_repeatable_and_matches_corrupt(stand_in):
    images = batch()
    first = [out for _, _, out in sweep(images, seed=3)]
    second = [out for _, _, out in sweep(images, seed=3)]
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    other = [out for _, _, out in sweep(images, names=["gaussian_noise"], severities=[1], seed=4)]
    assert not torch.equal(first[0], other[0])
    torch.testing.assert_close(first[0], corrupt(images, "gaussian_noise", 1, torch.Generator().manual_seed(3)))


# ----- the real registry (needs the corruption modules) --------------------------------------

def test_real_registry_lists_19_names_imagenet_c_first():
    names = list_corruptions()
    assert len(names) == 19
    assert names[:15] == list(IMAGENET_C)
    assert names[15:] == list(EXTRA)
    families = {get_corruption(name).family for name in names}
    assert families == {"noise", "blur", "weather", "digital"}
    assert sorted(n for f in families for n in list_corruptions(f)) == sorted(names)


def test_real_unknown_name_lists_all_19():
    with pytest.raises(KeyError) as caught:
        get_corruption("rain")
    assert all(name in str(caught.value) for name in (*IMAGENET_C, *EXTRA))


def test_real_corruptions_keep_shape_and_range_and_repeat():
    images = batch(2, 32, 32)
    for name in list_corruptions():
        out = corrupt(images, name, 5, torch.Generator().manual_seed(0))
        again = corrupt(images, name, 5, torch.Generator().manual_seed(0))
        assert out.shape == images.shape and out.dtype == images.dtype, name
        assert out.min() >= 0 and out.max() <= 1, name
        assert not torch.equal(out, images), f"{name} at severity 5 left the images unchanged"
        assert torch.equal(out, again), f"{name} is not deterministic under a seed"


def test_a_plain_cuda_generator_is_accepted_for_cuda_images(stand_in):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    images = batch().cuda()  # on cuda:0, while torch.Generator(device="cuda").device has no index
    out = corrupt(images, "gaussian_noise", 1, torch.Generator(device="cuda").manual_seed(0))
    assert out.device == images.device
