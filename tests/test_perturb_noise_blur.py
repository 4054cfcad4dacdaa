"""The noise and blur corruptions: contracts, determinism, severity order and agreement with ImageNet-C's own code
(``corruption_reference``: imagecorruptions 1.1.2 and the original's steps)."""

import numpy as np
import pytest
import torch
from PIL import Image

from corruption_reference import imagecorruptions, reference

from vitlessons.data.photos import photos
from vitlessons.perturb import corrupt, get_corruption, list_corruptions
from vitlessons.perturb.blur import _draw_below, filter2d, gaussian_filter, glass_sources, motion_filter, motion_kernels
from vitlessons.perturb.noise import poisson

NOISE = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")
BLUR = ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur")
NAMES = NOISE + BLUR
DETERMINISTIC = ("defocus_blur", "zoom_blur", "gaussian_blur")
SEVERITIES = (1, 2, 3, 4, 5)
# severity chains along which PSNR must fall; the published levels are not monotone everywhere: the original's
# glass blur corrupts less at severity 2 than at 1 and at 4 than at 3 (it does so itself, at 64 px and at 224 px)
ORDER = {"glass_blur": ((1, 3), (1, 4, 5), (2, 3), (2, 4, 5))}


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def psnr(corrupted: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB."""
    return -10 * torch.log10(((corrupted - clean) ** 2).flatten(1).mean(1).clamp_min(1e-10))


@pytest.fixture(scope="module")
def small() -> torch.Tensor:
    return photos(size=64)


@pytest.fixture(scope="module")
def full() -> torch.Tensor:
    """Two 224 px photos quantised to 8 bits, since the reference reads uint8."""
    return (photos(("chelsea", "astronaut"), size=224) * 255).round() / 255


def test_registered_in_their_families() -> None:
    assert set(NOISE) <= set(list_corruptions("noise"))
    assert set(BLUR) <= set(list_corruptions("blur"))
    for name in NAMES:
        assert len(get_corruption(name).levels) == 5


@pytest.mark.parametrize("name", NAMES)
def test_shape_dtype_and_range_are_kept_at_every_severity(name: str, small: torch.Tensor) -> None:
    for severity in SEVERITIES:
        out = corrupt(small, name, severity, generator())
        assert out.shape == small.shape and out.dtype == small.dtype and out.device == small.device
        assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
        assert not torch.equal(out, small)


@pytest.mark.parametrize("name", NAMES)
def test_float64_batches_stay_float64(name: str, small: torch.Tensor) -> None:
    out = corrupt(small[:2].double(), name, 3, generator())
    assert out.dtype == torch.float64
    if name not in NOISE:  # the noise is drawn in float64 too, so it differs
        assert (out - corrupt(small[:2], name, 3, generator()).double()).abs().mean() < 2e-3


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output_and_other_seed_other_noise(name: str, small: torch.Tensor) -> None:
    for severity in (1, 5):
        first = corrupt(small, name, severity, generator(7))
        assert torch.equal(first, corrupt(small, name, severity, generator(7)))
        other = corrupt(small, name, severity, generator(8))
        if name in DETERMINISTIC:
            assert torch.equal(first, other)
        else:
            assert not torch.equal(first, other)


@pytest.mark.parametrize("name", NAMES)
def test_higher_severity_corrupts_more(name: str, small: torch.Tensor) -> None:
    quality = dict(zip(SEVERITIES, (psnr(corrupt(small, name, s, generator()), small).mean().item()
                                    for s in SEVERITIES)))
    # never better at a higher severity (a small tolerance for neighbouring levels that corrupt about as much)
    for chain in ORDER.get(name, (SEVERITIES,)):
        assert all(quality[later] <= quality[earlier] + 0.05 for earlier, later in zip(chain, chain[1:])), quality
    assert quality[5] < quality[1] - 1.5, quality


@pytest.mark.parametrize("name", NAMES)
def test_works_on_32_pixel_and_non_square_images(name: str, small: torch.Tensor) -> None:
    for images in (photos(size=32), small[:2, :, :40, :]):
        for severity in SEVERITIES:
            out = corrupt(images, name, severity, generator())
            assert out.shape == images.shape and torch.isfinite(out).all()
            assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", NAMES)
def test_agrees_with_the_reference_implementation(name: str, full: torch.Tensor) -> None:
    for severity in SEVERITIES:
        ours = corrupt(full, name, severity, generator())
        theirs = reference(full, name, severity)
        gap = psnr(ours, full).mean() - psnr(theirs, full).mean()
        assert abs(gap) < 1.5, f"{name} severity {severity}: PSNR gap {gap:+.2f} dB"
        if name in DETERMINISTIC:
            mad = (ours - theirs).abs().mean().item()
            assert mad < 3 / 255, f"{name} severity {severity}: mean absolute difference {mad * 255:.2f}/255"


def test_glass_shuffle_is_exactly_the_originals_sequential_copies() -> None:
    # The original visits the interior rows H - d down to d + 1 and, in each, the columns W - d down to d + 1,
    # and "swaps" pixel (h, w) with (h + dy, w + dx), dy and dx in [-d, d - 1]. Its pixels are NumPy views, so
    # ``x[h, w], x[h2, w2] = x[h2, w2], x[h, w]`` copies (h2, w2) onto (h, w) and leaves (h2, w2) as it was:
    # the result is not a permutation, some pixels are repeated and others lost.
    for height, width, delta, iterations in ((12, 13, 1, 2), (15, 11, 2, 3), (20, 20, 4, 2), (9, 9, 4, 1)):
        gen = generator(1)
        offsets = [(torch.randint(-delta, delta, (2, height, width), generator=gen),
                    torch.randint(-delta, delta, (2, height, width), generator=gen)) for _ in range(iterations)]
        ours = glass_sources(2, height, width, delta, iterations, offsets=offsets)
        for b in range(2):
            pixels = np.arange(height * width).reshape(height, width)[..., None].repeat(3, -1)  # as (H, W, 3)
            for dy, dx in offsets:
                for row in range(height - delta, delta, -1):
                    for col in range(width - delta, delta, -1):
                        r, c = row + int(dy[b, row, col]), col + int(dx[b, row, col])
                        pixels[row, col], pixels[r, c] = pixels[r, c], pixels[row, col]  # the original's line
            assert np.array_equal(ours[b].numpy(), pixels[..., 0].ravel())
    drawn = glass_sources(3, 40, 40, 2, 3, generator(0))
    assert drawn.min() >= 0 and drawn.max() < 1600
    assert all(len(image.unique()) < 1600 for image in drawn)  # copies, not a permutation


def test_motion_blur_differs_between_every_pair_of_severities(small: torch.Tensor) -> None:
    # the published levels (radius, sigma) all differ: (10, 3), (15, 5), (15, 8), (15, 12), (20, 15)
    outs = [corrupt(small, "motion_blur", severity, generator(5)) for severity in SEVERITIES]
    for first in range(len(outs)):
        for second in range(first + 1, len(outs)):
            mad = (outs[first] - outs[second]).abs().mean().item()
            assert mad > 1 / 255, f"severities {first + 1} and {second + 1}: MAD {mad * 255:.3f}/255"


def test_same_angle_gives_the_reference_motion_blur(small: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> None:
    # the reference draws one number per image, its angle np.random.uniform(-45, 45): hand it the one we draw
    corruptions = imagecorruptions()
    image = (small[1:2] * 255).round() / 255  # the 8-bit pixels the reference reads
    array = (image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    for severity in SEVERITIES:
        ours = corrupt(image, "motion_blur", severity, generator(severity))
        draws = generator(severity)
        monkeypatch.setattr(np.random, "uniform",
                            lambda low, high, draws=draws: float(torch.rand((), generator=draws)) * (high - low) + low)
        theirs = np.round(corruptions.motion_blur(Image.fromarray(array), severity))  # 8 bits, as ImageMagick's
        monkeypatch.undo()
        theirs = torch.from_numpy(theirs.astype(np.float32) / 255).permute(2, 0, 1)[None]
        mad = (ours - theirs).abs().mean().item()  # rounding to 8 bits alone gives about 0.25/255
        assert mad < 0.5 / 255, f"motion_blur {severity}: MAD {mad * 255:.3f}/255 at the same angle"


def test_motion_kernels_through_the_fft_equal_the_shifted_sums(small: torch.Tensor) -> None:
    # off the CPU motion_filter correlates with motion_kernels in the Fourier domain; on it, it sums shifted views
    angles = torch.tensor([-45.0, -31.7, 0.0, 13.7, 45.0, 26.565051177077994])
    for images in (small[:3].repeat(2, 1, 1, 1), photos(size=32).repeat(2, 1, 1, 1)[:6]):  # 32 px: taps reach past
        for radius, sigma in ((10, 3), (20, 15)):
            kernels = motion_kernels(radius, sigma, angles)
            assert kernels.shape == (6, 4 * radius + 1, 4 * radius + 1)
            assert torch.allclose(kernels.sum((1, 2)), torch.ones(6)) and kernels[:, 2 * radius, 2 * radius].gt(0).all()
            fourier = filter2d(images, kernels, mode="nearest")
            assert (fourier - motion_filter(images, radius, sigma, angles)).abs().max() < 1e-5


def test_poisson_sampler_has_poisson_moments() -> None:
    rates = torch.tensor([0.0, 0.3, 2.5, 9.99, 10.5, 37.0, 60.0]).repeat_interleave(100_000)
    counts = poisson(rates, generator()).view(7, -1)
    assert torch.equal(counts, counts.round()) and counts.min() >= 0
    lam = rates.view(7, -1)[:, 0]
    assert (counts[0] == 0).all()
    standard_error = (lam / 100_000).sqrt()
    assert ((counts.mean(1) - lam).abs() <= 5 * standard_error + 1e-6).all(), counts.mean(1)
    assert ((counts.var(1) / lam.clamp_min(1e-9) - 1)[1:].abs() < 0.03).all(), counts.var(1)
    assert abs((counts[1] == 0).float().mean().item() - np.exp(-0.3)) < 0.005  # P(0), not only the moments


def test_impulse_noise_flips_the_published_fraction_to_black_or_white() -> None:
    grey = torch.full((4, 3, 64, 64), 0.5)
    for severity, amount in zip(SEVERITIES, get_corruption("impulse_noise").levels):
        out = corrupt(grey, "impulse_noise", severity, generator())
        salt, pepper = (out == 1).float().mean().item(), (out == 0).float().mean().item()
        assert abs(salt - amount / 2) < 0.01 and abs(pepper - amount / 2) < 0.01
        assert ((out == 0.5) | (out == 0) | (out == 1)).all()


@pytest.mark.parametrize("high", [4, 16, 36, 64])
def test_glass_offsets_are_uniform(high: int) -> None:
    draws = _draw_below(high, 64_000, generator(3), torch.device("cpu"))
    counts = torch.bincount(draws, minlength=high).float()
    assert draws.dtype == torch.long and draws.min() >= 0 and draws.max() < high
    expected = len(draws) / high  # each value within 6 standard deviations of its expected count
    assert ((counts - expected).abs() < 6 * expected ** 0.5).all(), counts


@pytest.mark.parametrize("sigma", [1.0, 8.0])  # a narrow kernel (shifted sums) and a wide one (banded matrix)
def test_unknown_border_is_refused(sigma: float) -> None:
    with pytest.raises(ValueError, match="unknown border mode 'wrap'"):
        gaussian_filter(torch.rand(1, 3, 40, 40), sigma, mode="wrap")
