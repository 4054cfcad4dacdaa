"""Small spatial transformations for asking whether a ViT's patch grid makes it sensitive to where things sit.

``shift`` moves the content by whole pixels with wrap-around (``torch.roll``), so nothing is cut off or
filled in: only the content's position relative to the patch grid changes. ``turn`` rotates by any angle
about the centre; the image is first extended by reflection, so the corners hold image content rather
than a fill colour that a model could react to instead.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from vitlessons.tensors import check_images


def shift(images: Tensor, pixels: int, vertical: int | None = None) -> Tensor:
    """The batch moved right by ``pixels`` and down by ``vertical`` (default: the same), wrapping around."""
    check_images(images)
    for value, name in ((pixels, "pixels"), (vertical, "vertical")):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"{name} must be a whole number of pixels, got {value!r}")
    down = pixels if vertical is None else vertical
    return torch.roll(images, shifts=(down, pixels), dims=(-2, -1))


def turn(images: Tensor, degrees: float) -> Tensor:
    """The batch rotated counter-clockwise by ``degrees`` about its centre, bilinearly, corners by reflection."""
    check_images(images)
    if isinstance(degrees, bool) or not isinstance(degrees, (int, float)) or not math.isfinite(degrees):
        raise ValueError(f"degrees must be a finite number, got {degrees!r}")
    height, width = images.shape[-2:]
    pad_h, pad_w = (math.ceil((math.hypot(height, width) - side) / 2) for side in (height, width))
    pad_h, pad_w = min(pad_h, height - 1), min(pad_w, width - 1)  # reflection needs a pad smaller than the side
    padded = F.pad(images, (pad_w, pad_w, pad_h, pad_h), mode="reflect")
    rotated = TF.rotate(padded, degrees, interpolation=InterpolationMode.BILINEAR)
    return rotated[..., pad_h:pad_h + height, pad_w:pad_w + width].clamp(0, 1)
