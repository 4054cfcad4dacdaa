import pytest
import torch

from vitlessons import spectrum


def test_a_pattern_repeated_in_every_patch_lies_on_the_grid() -> None:
    generator = torch.Generator().manual_seed(0)
    tile = torch.randn(2, 3, 8, 8, generator=generator)
    repeated = tile.repeat(1, 1, 8, 8)  # the same 8x8 pattern in every patch of a 64 px image
    assert spectrum.grid_share(repeated, 8) == pytest.approx(1.0)
    assert spectrum.grid_share(repeated + 5.0, 8) == pytest.approx(1.0)  # a constant offset carries no energy


def test_grid_share_is_the_energy_of_the_patch_average() -> None:
    """The same quantity without a Fourier transform: the part of a perturbation that every patch shares."""
    generator = torch.Generator().manual_seed(1)
    delta = torch.randn(3, 3, 48, 48, generator=generator)
    centred = delta - delta.mean(dim=(-2, -1), keepdim=True)
    patches = centred.reshape(3, 3, 4, 12, 4, 12)  # a 4x4 grid of 12 px patches
    shared = patches.mean(dim=(2, 4), keepdim=True).expand_as(patches).reshape_as(centred)
    shared = shared - shared.mean(dim=(-2, -1), keepdim=True)
    expected = shared.square().sum() / centred.square().sum()
    assert spectrum.grid_share(delta, 12) == pytest.approx(expected.item(), rel=1e-6)


def test_white_noise_sits_near_chance_and_chance_is_the_grid_fraction() -> None:
    noise = torch.randn(64, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    chance = spectrum.chance_share(64, 64, 8)
    assert chance == pytest.approx(63 / 4095)
    assert spectrum.grid_share(noise, 8) == pytest.approx(chance, rel=0.15)


def test_power_spectrum_centres_zero_frequency() -> None:
    rows = torch.arange(16.0)
    stripes = torch.cos(2 * torch.pi * 4 * rows / 16)[:, None].expand(16, 16)[None, None]
    power = spectrum.power_spectrum(stripes)
    assert power.shape == (16, 16)
    peaks = (power > power.max() / 2).nonzero().tolist()
    assert peaks == [[4, 8], [12, 8]]  # +-4 cycles down the columns, around the centre (8, 8)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="must divide"):
        spectrum.grid_share(torch.randn(1, 3, 50, 50), 8)
    with pytest.raises(ValueError, match="all zero"):
        spectrum.grid_share(torch.zeros(1, 3, 16, 16), 8)
