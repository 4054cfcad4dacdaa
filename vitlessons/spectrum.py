"""Where a perturbation's energy lies in the Fourier spectrum, and how much of it follows a ViT's patch grid.

A ViT embeds every patch with the same weights, so the gradient it hands back to the pixels tends to
repeat from patch to patch; a CNN's gradient has no such period. The part of a perturbation that repeats
with period ``p`` pixels in both directions is exactly its energy at the frequencies that are multiples
of ``size / p`` along both axes: ``grid_share`` measures that share, and ``chance_share`` what a
perturbation without structure (white noise) would give.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _power(perturbations: Tensor) -> Tensor:
    """(H, W) Fourier power averaged over images and channels, each image's mean removed, zero frequency first."""
    centred = perturbations - perturbations.mean(dim=(-2, -1), keepdim=True)
    return torch.fft.fft2(centred.double()).abs().square().mean(dim=(0, 1))


def power_spectrum(perturbations: Tensor) -> Tensor:
    """(H, W) power averaged over images and channels, zero frequency centred, for plotting."""
    return torch.fft.fftshift(_power(perturbations), dim=(-2, -1)).float()


def _grid_bins(height: int, width: int, period: int) -> Tensor:
    """(H, W) mask, unshifted: the frequencies of patterns that repeat every ``period`` pixels, zero excluded."""
    if period < 1 or height % period or width % period:
        raise ValueError(f"the period {period} must divide the image size {height}x{width}")
    rows = torch.arange(height) % (height // period) == 0
    cols = torch.arange(width) % (width // period) == 0
    mask = rows[:, None] & cols[None, :]
    mask[0, 0] = False
    return mask


def grid_share(perturbations: Tensor, period: int) -> float:
    """The share of the perturbations' energy (means removed) that repeats every ``period`` pixels."""
    power = _power(perturbations)
    total = power.sum()
    if total == 0:
        raise ValueError("the perturbations are all zero: there is no energy to share out")
    return (power[_grid_bins(*power.shape, period)].sum() / total).item()


def chance_share(height: int, width: int, period: int) -> float:
    """The grid share of white noise: the grid's fraction of the non-zero frequencies."""
    return _grid_bins(height, width, period).sum().item() / (height * width - 1)
