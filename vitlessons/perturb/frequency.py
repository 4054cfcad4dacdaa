"""Low- and high-pass filters by a circular mask in the centred Fourier spectrum, to ask which band a model uses.

``frequency_split`` cuts an image into a low part (frequencies within ``radius`` of the centre, the mean
included) and a high part (the rest) with ``low + high == images`` exactly up to float error. ``low_pass``
returns the low part and ``high_pass`` the high part plus each image's per-channel mean (so a grey-ish image
rather than one centred on 0), both clamped to [0, 1]. ``radius`` counts frequency pixels of the shifted
spectrum: ``low_pass(images, 0)`` is the flat mean image, ``high_pass(images, 0)`` the image itself, and
``low_pass`` with ``radius >= max_radius(H, W)`` the identity.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from vitlessons.tensors import check_images


def max_radius(height: int, width: int) -> float:
    """The largest distance from the centre of a shifted spectrum: a radius this big keeps every frequency."""
    return math.hypot(height // 2, width // 2)


def frequency_split(images: Tensor, radius: float) -> tuple[Tensor, Tensor]:
    """The unclamped (low, high) parts of a batch, with low + high equal to the batch."""
    check_images(images)
    _check_radius(radius)
    work = images if images.dtype == torch.float64 else images.float()
    spectrum = torch.fft.fftshift(torch.fft.fft2(work), dim=(-2, -1))
    inside = _disc(images.shape[-2], images.shape[-1], radius, images.device)
    low_spectrum = spectrum * inside
    low = torch.fft.ifft2(torch.fft.ifftshift(low_spectrum, dim=(-2, -1))).real
    return low.to(images.dtype), (work - low).to(images.dtype)


def low_pass(images: Tensor, radius: float) -> Tensor:
    """Keep only the frequencies within ``radius`` of the centre: a blur with a sharp spectral cut-off."""
    low, _ = frequency_split(images, radius)
    return low.clamp(0, 1)


def high_pass(images: Tensor, radius: float) -> Tensor:
    """Remove the frequencies within ``radius``, then add back each image's channel mean so it stays viewable."""
    _, high = frequency_split(images, radius)
    return (high + images.mean(dim=(-2, -1), keepdim=True)).clamp(0, 1)


def _disc(height: int, width: int, radius: float, device: torch.device) -> Tensor:
    """A (H, W) float mask, 1 within ``radius`` of the centred zero frequency, 0 outside."""
    rows = torch.arange(height, dtype=torch.float64) - height // 2  # float64 on the CPU: MPS has no float64
    cols = torch.arange(width, dtype=torch.float64) - width // 2
    distance = torch.hypot(rows[:, None], cols[None, :])
    return (distance <= radius).to(device=device, dtype=torch.float32)


def _check_radius(radius: float) -> None:
    """A radius must be a finite, non-negative number of frequency pixels."""
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not 0 <= radius < math.inf:
        raise ValueError(f"radius must be a finite number >= 0 (frequency pixels), got {radius!r}")
