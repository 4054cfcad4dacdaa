"""Real photos and textures that scikit-image ships, so the course has real images offline.

The photos are public-domain or freely licensed sample images bundled with scikit-image
(see ``skimage.data``): chelsea the cat, a cup of coffee, the astronaut Eileen Collins, a rocket
and a motorcycle; the textures are brick, grass and gravel; the horse is a silhouette.
"""

from __future__ import annotations

import numpy as np
import skimage.data
import torch
from torch import Tensor

from vitlessons.tensors import centre_crop, resize_short_side

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "motorcycle")
TEXTURES = ("brick", "grass", "gravel")


def _to_tensor(array: np.ndarray) -> Tensor:
    """A uint8 (H, W) or (H, W, C) array as a float (1, 3, H, W) image in [0, 1]."""
    image = torch.from_numpy(np.ascontiguousarray(array)).float() / 255
    image = image[..., None].expand(*image.shape, 3) if image.ndim == 2 else image[..., :3]
    return image.permute(2, 0, 1)[None]


def _square(image: Tensor, size: int) -> Tensor:
    """Resize the short side and crop the centre, as ImageNet evaluation does."""
    return centre_crop(resize_short_side(image, size), size)


def photos(names: tuple[str, ...] = PHOTOS, size: int = 224) -> Tensor:
    """The bundled photos as one (N, 3, size, size) batch, centre-cropped to squares."""
    unknown = set(names) - set(PHOTOS)
    if unknown:
        raise ValueError(f"unknown photo(s) {sorted(unknown)}; choose from {PHOTOS}")
    arrays = {name: skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
              for name in names}
    return torch.cat([_square(_to_tensor(arrays[name]), size) for name in names])


def texture(name: str, size: int = 224) -> Tensor:
    """A bundled greyscale texture as a (1, 3, size, size) image."""
    if name not in TEXTURES:
        raise ValueError(f"unknown texture {name!r}; choose from {TEXTURES}")
    return _square(_to_tensor(getattr(skimage.data, name)()), size)


def horse_mask(size: int = 224) -> Tensor:
    """The bundled horse silhouette as a (size, size) bool mask, True on the horse, padded to a square."""
    horse = torch.from_numpy(~skimage.data.horse()).float()  # the file stores the background as True
    height, width = horse.shape
    side = max(height, width) + 40
    canvas = torch.zeros(side, side)
    top, left = (side - height) // 2, (side - width) // 2
    canvas[top:top + height, left:left + width] = horse
    resized = torch.nn.functional.interpolate(canvas[None, None], size=(size, size), mode="area")
    return resized[0, 0] > 0.5


def fill_shape(mask: Tensor, texture: Tensor, background: float = 1.0) -> Tensor:
    """A cue conflict: the texture inside the silhouette, a flat background outside (Geirhos et al., Fig. 2)."""
    if mask.shape != texture.shape[-2:] or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor of the texture's size {tuple(texture.shape[-2:])}, "
                         f"got {mask.dtype} {tuple(mask.shape)}")
    return torch.where(mask, texture, torch.full_like(texture, background))
