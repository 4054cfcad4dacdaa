"""Patch perturbations: drop patches (PatchDrop) or shuffle them, the probes of Naseer et al. (2021).

Both work on a grid of square patches, batched, on the images' device, and are deterministic given a
``torch.Generator`` on that device (seed 0 when none is given).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vitlessons.tensors import check_images, images_generator

MODES = ("random", "salient", "non_salient")
MAX_GRID = 16


def patch_drop(images: Tensor, fraction: float, patch_size: int = 16, mode: str = "random",
               saliency: Tensor | None = None, generator: torch.Generator | None = None,
               fill: float = 0.0) -> Tensor:
    """Fill ``round(fraction * n_patches)`` patches per image, to see how much occlusion a model survives.

    ``mode="random"`` picks the patches at random (a fresh draw per image); ``"salient"`` picks those with the
    highest mean ``saliency`` and ``"non_salient"`` those with the lowest (ties go to the earlier patch in
    row-major order). ``saliency`` is (B, H, W) per pixel or (B, H // patch_size, W // patch_size) per patch.
    Rounding is Python's ``round`` (half to even).
    """
    check_images(images)
    grid_h, grid_w = _patch_grid(images, patch_size)
    n_drop = round(_check_fraction(fraction) * grid_h * grid_w)
    _check_unit(fill, "fill")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "random":
        if saliency is not None:
            raise ValueError("saliency is only used by mode='salient' or 'non_salient'; mode='random' ignores it")
        keys = torch.rand(images.shape[0], grid_h * grid_w, generator=images_generator(images, generator),
                          device=images.device)
        order = keys.argsort(dim=1)
    else:
        scores = _patch_scores(saliency, images, patch_size, grid_h, grid_w)
        order = scores.sort(dim=1, descending=mode == "salient", stable=True).indices
    dropped = torch.zeros(images.shape[0], grid_h * grid_w, dtype=torch.bool, device=images.device)
    dropped.scatter_(1, order[:, :n_drop], True)
    return images.masked_fill(_pixel_mask(dropped, grid_h, grid_w, patch_size), fill)


def shuffle_patches(images: Tensor, grid: int, generator: torch.Generator | None = None) -> Tensor:
    """Cut each image into grid x grid patches and permute them, destroying global shape but not local texture.

    Each image gets its own permutation drawn from ``generator``; ``grid=1`` returns the images unchanged.
    """
    check_images(images)
    if isinstance(grid, bool) or not isinstance(grid, int) or not 1 <= grid <= MAX_GRID:
        raise ValueError(f"grid must be an int from 1 to {MAX_GRID}, got {grid!r}")
    batch, channels, height, width = images.shape
    if height % grid or width % grid:
        raise ValueError(f"image size {height}x{width} is not divisible by grid={grid}; "
                         f"resize or crop to a multiple of {grid} first")
    ph, pw = height // grid, width // grid
    patches = images.reshape(batch, channels, grid, ph, grid, pw).permute(0, 2, 4, 1, 3, 5)
    patches = patches.reshape(batch, grid * grid, channels, ph, pw)
    keys = torch.rand(batch, grid * grid, generator=images_generator(images, generator), device=images.device)
    order = keys.argsort(dim=1)
    shuffled = patches[torch.arange(batch, device=images.device)[:, None], order]
    shuffled = shuffled.reshape(batch, grid, grid, channels, ph, pw).permute(0, 3, 1, 4, 2, 5)
    return shuffled.reshape(batch, channels, height, width)


def _patch_grid(images: Tensor, patch_size: int) -> tuple[int, int]:
    """Rows and columns of patches, insisting the image tiles exactly."""
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
        raise ValueError(f"patch_size must be a positive int, got {patch_size!r}")
    height, width = images.shape[-2:]
    if height % patch_size or width % patch_size:
        raise ValueError(f"image size {height}x{width} is not divisible by patch_size={patch_size}; "
                         f"resize or crop to a multiple of {patch_size} first")
    return height // patch_size, width // patch_size


def _check_fraction(fraction: float) -> float:
    """A fraction of patches must lie in [0, 1]."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be a number in [0, 1], got {fraction!r}")
    return float(fraction)


def _check_unit(value: float, name: str) -> None:
    """A fill value must keep the images in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


def _patch_scores(saliency: Tensor | None, images: Tensor, patch_size: int, grid_h: int, grid_w: int) -> Tensor:
    """Mean saliency per patch, flattened row-major to (B, n_patches)."""
    batch, _, height, width = images.shape
    expected = f"(B, H, W) = {(batch, height, width)} or (B, gh, gw) = {(batch, grid_h, grid_w)}"
    if saliency is None:
        raise ValueError(f"salient modes need a saliency map of shape {expected}")
    if not isinstance(saliency, Tensor) or not torch.is_floating_point(saliency):
        raise TypeError(f"saliency must be a float tensor of shape {expected}, got "
                        f"{getattr(saliency, 'dtype', type(saliency).__name__)}")
    shape = tuple(saliency.shape)
    saliency = saliency.to(images.device)
    if shape == (batch, height, width):
        saliency = F.avg_pool2d(saliency[:, None], patch_size)[:, 0]
    elif shape != (batch, grid_h, grid_w):
        raise ValueError(f"saliency must have shape {expected}, got {shape}")
    if not torch.isfinite(saliency).all():
        raise ValueError("saliency contains NaN or infinite values")
    return saliency.reshape(batch, grid_h * grid_w)


def _pixel_mask(dropped: Tensor, grid_h: int, grid_w: int, patch_size: int) -> Tensor:
    """Blow a (B, n_patches) patch mask up to a (B, 1, H, W) pixel mask."""
    mask = dropped.reshape(-1, 1, grid_h, grid_w)
    return mask.repeat_interleave(patch_size, dim=2).repeat_interleave(patch_size, dim=3)

