"""The course's own perturbations (patches, Fourier bands, rotations, shape-only views) on crafted batches."""

from __future__ import annotations

import math

import pytest
import torch

from vitlessons.perturb import (
    edges, frequency_split, greyscale, high_pass, low_pass, patch_drop, rotate, shuffle_patches, silhouette,
)


def batch(b: int = 2, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    """Random images in [0, 1], reproducible."""
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


def seeded(seed: int = 1) -> torch.Generator:
    """A fresh CPU generator."""
    return torch.Generator().manual_seed(seed)


def dropped_patches(images: torch.Tensor, out: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, gh, gw) bool: which patches changed, read off the pixels."""
    changed = (images != out).any(dim=1).float()[:, None]
    return torch.nn.functional.max_pool2d(changed, patch)[:, 0].bool()


# ----- patch_drop ---------------------------------------------------------------------------

@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 0.9, 1.0])
def test_patch_drop_drops_exactly_round_fraction_of_patches(fraction):
    images = batch(3, 32, 48).clamp_min(0.01)  # no pixel is already 0, so every filled patch shows
    out = patch_drop(images, fraction, patch_size=8, generator=seeded())
    n_patches = 4 * 6
    counts = dropped_patches(images, out, 8).flatten(1).sum(dim=1)
    assert counts.tolist() == [round(fraction * n_patches)] * 3
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.min() >= 0 and out.max() <= 1


def test_patch_drop_fills_whole_patches_and_keeps_the_rest():
    images = batch(1).clamp_min(0.01)
    out = patch_drop(images, 0.5, patch_size=8, generator=seeded(), fill=0.5)
    changed = dropped_patches(images, out, 8)
    pixel_mask = changed.repeat_interleave(8, 1).repeat_interleave(8, 2)[:, None].expand_as(images)
    assert torch.all(out[pixel_mask] == 0.5)
    assert torch.equal(out[~pixel_mask], images[~pixel_mask])


def test_patch_drop_random_is_deterministic_and_differs_per_image():
    images = batch(2).clamp_min(0.01)
    first = patch_drop(images, 0.5, 8, generator=seeded(3))
    assert torch.equal(first, patch_drop(images, 0.5, 8, generator=seeded(3)))
    assert not torch.equal(first, patch_drop(images, 0.5, 8, generator=seeded(4)))
    same = images[:1].expand(2, -1, -1, -1)
    masks = dropped_patches(same, patch_drop(same, 0.5, 8, generator=seeded(3)), 8)
    assert not torch.equal(masks[0], masks[1])


def crafted_saliency() -> torch.Tensor:
    """Per-pixel saliency on a 4x4 grid of 8-px patches: patch k has mean value k (a different order per image)."""
    per_patch = torch.stack([torch.arange(16.0), torch.arange(16.0).flip(0)]).reshape(2, 4, 4)
    return per_patch.repeat_interleave(8, 1).repeat_interleave(8, 2)


@pytest.mark.parametrize("mode, expected", [
    ("salient", [{15, 14, 13, 12}, {0, 1, 2, 3}]),
    ("non_salient", [{0, 1, 2, 3}, {15, 14, 13, 12}]),
])
def test_patch_drop_picks_most_or_least_salient_patches(mode, expected):
    images = batch(2).clamp_min(0.01)
    for saliency in (crafted_saliency(), crafted_saliency()[:, ::8, ::8]):  # per pixel, then per patch
        out = patch_drop(images, 0.25, 8, mode=mode, saliency=saliency)
        dropped = dropped_patches(images, out, 8).flatten(1)
        assert [set(row.nonzero().flatten().tolist()) for row in dropped] == expected


def test_patch_drop_averages_pixel_saliency_per_patch():
    saliency = torch.zeros(1, 16, 16)
    saliency[0, 0, 0] = 100.0  # one hot pixel in the top-left patch: its mean (100/64) beats the others (1)
    saliency[0, 8:, 8:] = 1.0
    saliency[0, 0:8, 8:] = 1.0
    saliency[0, 8:, 0:8] = 1.0
    images = batch(1, 16, 16).clamp_min(0.01)
    out = patch_drop(images, 0.25, 8, mode="salient", saliency=saliency)
    assert dropped_patches(images, out, 8).flatten().tolist() == [True, False, False, False]


@pytest.mark.parametrize("kwargs, error, words", [
    ({"fraction": 1.5}, ValueError, "fraction"),
    ({"fraction": -0.1}, ValueError, "fraction"),
    ({"fraction": 0.5, "patch_size": 5}, ValueError, "not divisible by patch_size=5"),
    ({"fraction": 0.5, "mode": "salient"}, ValueError, "saliency"),
    ({"fraction": 0.5, "mode": "non_salient", "saliency": torch.rand(2, 3, 3)}, ValueError, "shape"),
    ({"fraction": 0.5, "mode": "best"}, ValueError, "mode"),
    ({"fraction": 0.5, "fill": 2.0}, ValueError, "fill"),
])
def test_patch_drop_refuses_bad_arguments(kwargs, error, words):
    with pytest.raises(error, match=words):
        patch_drop(batch(2), **kwargs)


# ----- shuffle_patches ----------------------------------------------------------------------

def cut(images: torch.Tensor, grid: int) -> torch.Tensor:
    """(B, grid*grid, C*ph*pw) patches, row-major."""
    b, c, h, w = images.shape
    p = images.reshape(b, c, grid, h // grid, grid, w // grid).permute(0, 2, 4, 1, 3, 5)
    return p.reshape(b, grid * grid, -1)


@pytest.mark.parametrize("grid", [2, 4, 8])
def test_shuffle_patches_is_a_permutation_of_patches(grid):
    images = batch(2)
    out = shuffle_patches(images, grid, generator=seeded())
    before, after = cut(images, grid), cut(out, grid)
    for b in range(2):
        matches = (after[b][:, None] == before[b][None]).all(dim=-1)  # output patch i equals input patch j
        assert matches.sum(dim=1).tolist() == [1] * grid * grid
        assert matches.sum(dim=0).tolist() == [1] * grid * grid
    assert not torch.equal(out, images)


def test_shuffle_patches_grid_one_is_identity_and_seeds_repeat():
    images = batch(2)
    assert torch.equal(shuffle_patches(images, 1, generator=seeded()), images)
    assert torch.equal(shuffle_patches(images, 4, seeded(5)), shuffle_patches(images, 4, seeded(5)))
    assert not torch.equal(shuffle_patches(images, 4, seeded(5)), shuffle_patches(images, 4, seeded(6)))


def test_shuffle_patches_permutes_each_image_differently():
    same = batch(1).expand(2, -1, -1, -1)
    out = shuffle_patches(same, 4, generator=seeded())
    assert not torch.equal(out[0], out[1])


@pytest.mark.parametrize("grid, words", [(0, "grid"), (17, "grid"), (2.0, "grid"), (True, "grid"),
                                         (3, "not divisible by grid=3")])
def test_shuffle_patches_refuses_bad_grids(grid, words):
    with pytest.raises(ValueError, match=words):
        shuffle_patches(batch(1), grid)


# ----- Fourier bands ------------------------------------------------------------------------

def sinusoid(cycles: int, size: int = 32) -> torch.Tensor:
    """A horizontal grating with ``cycles`` periods across the image, in [0.25, 0.75]."""
    x = torch.arange(size, dtype=torch.float64) / size
    row = 0.5 + 0.25 * torch.cos(2 * math.pi * cycles * x)
    return row.expand(size, size)[None, None].expand(1, 3, size, size).clone()


def test_low_plus_high_reconstructs_the_image():
    images = batch(2, 32, 40)
    for radius in (0, 3, 7.5, 100):
        low, high = frequency_split(images, radius)
        torch.testing.assert_close(low + high, images, atol=1e-5, rtol=0)


def test_low_pass_keeps_low_frequency_and_removes_high_frequency():
    low_wave, high_wave = sinusoid(2), sinusoid(12)
    torch.testing.assert_close(low_pass(low_wave, 4), low_wave)
    torch.testing.assert_close(low_pass(high_wave, 4), torch.full_like(high_wave, 0.5))
    mixed = (low_wave + high_wave) / 2
    torch.testing.assert_close(low_pass(mixed, 4), (low_wave + 0.5) / 2)
    torch.testing.assert_close(high_pass(mixed, 4), (high_wave + 0.5) / 2)


def test_frequency_extremes():
    images = batch(2)
    torch.testing.assert_close(low_pass(images, 1000), images)  # everything kept
    torch.testing.assert_close(low_pass(images, math.hypot(16, 16)), images)
    torch.testing.assert_close(high_pass(images, 0), images)  # only the mean removed, then added back
    flat = low_pass(images, 0)
    torch.testing.assert_close(flat, images.mean(dim=(-2, -1), keepdim=True).expand_as(images))
    for out in (low_pass(images, 5), high_pass(images, 5)):
        assert out.shape == images.shape and out.dtype == images.dtype
        assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("radius", [-1, float("nan"), float("inf"), True, "3"])
def test_frequency_refuses_bad_radius(radius):
    with pytest.raises(ValueError, match="radius"):
        low_pass(batch(1), radius)


# ----- rotations and shape-only views -------------------------------------------------------

def test_rotate_matches_rot90_and_four_turns_are_identity():
    images = batch(2, 32, 48)
    assert torch.equal(rotate(images, 1), torch.rot90(images, 1, dims=(-2, -1)))
    assert rotate(images, 1).shape == (2, 3, 48, 32)
    assert torch.equal(rotate(images, 4), images)
    assert torch.equal(rotate(rotate(images, 3), 1), images)
    assert torch.equal(rotate(images, -1), rotate(images, 3))


def test_rotate_per_image_turns():
    images = batch(4)
    out = rotate(images, torch.tensor([0, 1, 2, 7]))
    for i, k in enumerate([0, 1, 2, 3]):
        assert torch.equal(out[i], torch.rot90(images[i], k, dims=(-2, -1)))
    wide = batch(2, 32, 48)
    assert rotate(wide, torch.tensor([1, 3])).shape == (2, 3, 48, 32)
    with pytest.raises(ValueError, match="odd and even"):
        rotate(wide, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="shape"):
        rotate(images, torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="integers"):
        rotate(images, torch.tensor([1.0, 2, 3, 0]))


def test_greyscale_has_equal_channels_and_bt601_weights():
    images = batch(2)
    grey = greyscale(images)
    assert grey.shape == images.shape
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])
    red = torch.zeros(1, 3, 32, 32)
    red[:, 0] = 1
    torch.testing.assert_close(greyscale(red), torch.full_like(red, 0.299))


def square_mask(b: int = 2, size: int = 32) -> torch.Tensor:
    """A (B, H, W) bool square in the middle."""
    mask = torch.zeros(b, size, size, dtype=torch.bool)
    mask[:, 8:24, 8:24] = True
    return mask


def test_silhouette_is_black_object_on_white():
    mask = square_mask()
    out = silhouette(mask)
    assert out.shape == (2, 3, 32, 32) and out.dtype == torch.float32
    assert torch.all(out[:, :, 8:24, 8:24] == 0) and out.sum() == 3 * 2 * (32 * 32 - 16 * 16)
    assert torch.equal(silhouette(mask[:, None], foreground=0.2, background=0.9).unique(),
                       torch.tensor([0.2, 0.9]))
    with pytest.raises(TypeError, match="bool"):
        silhouette(mask.long())
    with pytest.raises(ValueError, match="shape"):
        silhouette(mask[0])
    with pytest.raises(ValueError, match="background"):
        silhouette(mask, background=2.0)


def test_edges_of_a_mask_outline_the_object_dark_on_white():
    out = edges(None, masks=square_mask())
    assert out.shape == (2, 3, 32, 32)
    assert out.min() == 0 and out.max() == 1
    assert torch.all(out[:, :, 12:20, 12:20] == 1) and torch.all(out[:, :, :4] == 1)  # inside, outside: white
    assert torch.all(out[:, :, 16, 7:9] < 1)  # the left border of the square is dark
    torch.testing.assert_close(edges(batch(2), masks=square_mask()), out)


def test_edges_of_images_flat_is_white_and_range_is_unit():
    flat = torch.full((1, 3, 32, 32), 0.3)
    assert torch.equal(edges(flat), torch.ones_like(flat))
    out = edges(batch(2))
    assert out.shape == (2, 3, 32, 32) and out.min() == 0 and out.max() <= 1
    assert torch.equal(out[:, 0], out[:, 2])
    with pytest.raises(ValueError, match="neither"):
        edges(None)
    with pytest.raises(ValueError, match="match"):
        edges(batch(2, 16, 16), masks=square_mask())


@pytest.mark.parametrize("bad, error", [
    (torch.randint(0, 255, (1, 3, 32, 32), dtype=torch.uint8), TypeError),
    (torch.rand(3, 32, 32), ValueError),
    (torch.rand(1, 3, 32, 32) * 2 - 1, ValueError),
])
@pytest.mark.parametrize("function", [
    lambda x: patch_drop(x, 0.5), lambda x: shuffle_patches(x, 2), lambda x: low_pass(x, 3),
    lambda x: high_pass(x, 3), lambda x: rotate(x, 1), greyscale, edges,
])
def test_course_perturbations_refuse_non_images(bad, error, function):
    with pytest.raises(error):
        function(bad)


def test_random_perturbations_run_on_cuda_with_a_cuda_generator():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    images = batch().cuda()
    for function in (lambda g: patch_drop(images, 0.5, 8, generator=g), lambda g: shuffle_patches(images, 4, g)):
        first = function(torch.Generator(device="cuda").manual_seed(0))
        assert first.device == images.device
        assert torch.equal(first, function(torch.Generator(device="cuda").manual_seed(0)))
    with pytest.raises(ValueError, match="generator is on cpu"):
        patch_drop(images, 0.5, 8, generator=seeded())
