"""Other views of the same object: rotated, greyscale, silhouette and edge images, batched on any device.

The silhouettes and edge maps follow the stimuli of Geirhos et al. (2019): a black object on white, and dark
edges on white, so that only shape is left for a model to use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vitlessons.tensors import check_images

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601
SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))


def rotate(images: Tensor, quarter_turns: int | Tensor) -> Tensor:
    """Rotate counter-clockwise by 90 degrees per quarter turn (as ``torch.rot90``), one count or one per image.

    A (B,) integer tensor gives each image its own count; on non-square images all counts must then share a
    parity, so that the output is one batch.
    """
    check_images(images)
    if isinstance(quarter_turns, int) and not isinstance(quarter_turns, bool):
        return torch.rot90(images, quarter_turns % 4, dims=(-2, -1))
    turns = _check_turns(quarter_turns, images.shape[0]).to(images.device) % 4
    height, width = images.shape[-2:]
    odd = turns % 2 == 1
    if height != width and odd.any() and not odd.all():
        raise ValueError(f"non-square images ({height}x{width}) cannot mix odd and even quarter turns in one "
                         "batch: the results would have different shapes")
    size = (width, height) if height != width and odd.all() else (height, width)
    out = images.new_empty(*images.shape[:2], *size)
    for k in range(4):
        chosen = turns == k
        if chosen.any():
            out[chosen] = torch.rot90(images[chosen], k, dims=(-2, -1))
    return out


def greyscale(images: Tensor) -> Tensor:
    """Remove colour, keeping BT.601 luma on all three channels so models see a normal 3-channel image."""
    return _luma(check_images(images)).expand(-1, 3, -1, -1).contiguous()


def silhouette(masks: Tensor, foreground: float = 0.0, background: float = 1.0) -> Tensor:
    """Paint a mask (B, H, W) or (B, 1, H, W) as a (B, 3, H, W) object in ``foreground`` on ``background``.

    Bool masks give hard silhouettes; float masks in [0, 1] are read as coverage, for antialiased edges.
    """
    coverage = _coverage(masks)
    for value, name in ((foreground, "foreground"), (background, "background")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    image = background * (1 - coverage) + foreground * coverage  # exact at coverage 0 and 1
    return image.expand(-1, 3, -1, -1).contiguous()


def edges(images: Tensor | None, masks: Tensor | None = None) -> Tensor:
    """Dark edges on white: the Sobel magnitude of the greyscale, scaled so each image's strongest edge is black.

    Given ``masks``, the edges are those of the mask (the object's outline) and ``images``, if given, only
    fixes the expected batch and size. A flat image has no edges and comes back white.
    """
    if masks is not None:
        source = 1.0 - _coverage(masks)
        if images is not None:
            check_images(images)
            wanted, got = (images.shape[0], *images.shape[-2:]), (source.shape[0], *source.shape[-2:])
            if wanted != got:
                raise ValueError(f"masks must match the images' batch and size {wanted}, got {got}")
    elif images is not None:
        source = _luma(check_images(images))
    else:
        raise ValueError("edges needs images (B, 3, H, W) or masks (B, H, W); got neither")
    magnitude = _sobel_magnitude(source)
    strongest = magnitude.amax(dim=(-2, -1), keepdim=True)
    normalised = torch.where(strongest > 0, magnitude / strongest.clamp_min(1e-12), torch.zeros_like(magnitude))
    return (1.0 - normalised).expand(-1, 3, -1, -1).contiguous()


def _luma(images: Tensor) -> Tensor:
    """The (B, 1, H, W) BT.601 luma of an RGB batch."""
    weights = torch.tensor(LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def _sobel_magnitude(grey: Tensor) -> Tensor:
    """Gradient magnitude of a (B, 1, H, W) batch, with replicated borders so the frame is not an edge."""
    kx = torch.tensor(SOBEL_X, dtype=grey.dtype, device=grey.device)
    kernels = torch.stack([kx, kx.T])[:, None]
    gradients = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kernels)
    return gradients.pow(2).sum(dim=1, keepdim=True).sqrt()


def _coverage(masks: Tensor) -> Tensor:
    """A mask as (B, 1, H, W) float coverage in [0, 1]."""
    expected = "a bool or float mask of shape (B, H, W) or (B, 1, H, W)"
    if not isinstance(masks, Tensor):
        raise TypeError(f"masks must be {expected}, got {type(masks).__name__}")
    if masks.ndim == 3:
        masks = masks[:, None]
    if masks.ndim != 4 or masks.shape[1] != 1:
        raise ValueError(f"masks must be {expected}, got shape {tuple(masks.shape)}")
    if masks.dtype == torch.bool:
        return masks.float()
    if not torch.is_floating_point(masks):
        raise TypeError(f"masks must be {expected}, got dtype {masks.dtype} (use mask.bool() or mask.float())")
    if masks.numel() and (masks.min() < 0 or masks.max() > 1):
        raise ValueError(f"float masks must lie in [0, 1], got values from {masks.min().item():.3g} "
                         f"to {masks.max().item():.3g}")
    return masks


def _check_turns(turns: object, batch: int) -> Tensor:
    """Per-image quarter turns must be an integer tensor of shape (B,)."""
    if not isinstance(turns, Tensor):
        raise TypeError(f"quarter_turns must be an int or an integer tensor of shape ({batch},), "
                        f"got {type(turns).__name__}")
    if turns.dtype == torch.bool or torch.is_floating_point(turns) or torch.is_complex(turns):
        raise TypeError(f"quarter_turns must hold integers, got dtype {turns.dtype}")
    if tuple(turns.shape) != (batch,):
        raise ValueError(f"quarter_turns must have shape ({batch},), one count per image, got {tuple(turns.shape)}")
    return turns
