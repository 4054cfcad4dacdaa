"""Checks on image batches, so bad input fails with a message instead of a wrong number."""

from __future__ import annotations

import torch
from torch import Tensor


def check_images(images: Tensor, name: str = "images") -> Tensor:
    """Insist on the course convention: float (B, 3, H, W) in [0, 1], on any device."""
    if not isinstance(images, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, 3, H, W), got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} must have shape (B, 3, H, W), got {tuple(images.shape)}")
    if not torch.is_floating_point(images):
        raise TypeError(f"{name} must be a float tensor in [0, 1], got dtype {images.dtype} (divide uint8 by 255)")
    low, high = images.min().item(), images.max().item()
    if low < -1e-4 or high > 1 + 1e-4:
        raise ValueError(f"{name} must lie in [0, 1], got values in [{low:.3g}, {high:.3g}] (already normalised?)")
    return images
