"""Random views of a batch for self-supervised learning: resized crops, flips, colour jitter, greyscale, blur, solarize.

Every image gets its own random parameters, drawn from an explicit ``torch.Generator``, and the whole batch is
transformed at once on its own device (one ``grid_sample`` for the crops), so views cost little beside the model.
The parameters follow DINO's augmentations (Caron et al., 2021, App. A; they come from BYOL); blur widths are
given for a 224 px image and scaled to the view's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from vitlessons.perturb.views import _luma
from vitlessons.tensors import check_images


def _uniform(low: float, high: float, count: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """``count`` draws from U(low, high), made on the CPU generator and moved (generators are per device)."""
    return (low + (high - low) * torch.rand(count, generator=generator)).to(device)


def resized_crops(images: Tensor, size: int, scale: tuple[float, float], generator: torch.Generator,
                  ratio: tuple[float, float] = (3 / 4, 4 / 3), flip: float = 0.5) -> Tensor:
    """One random crop per image, covering a ``scale`` fraction of its area with a ``ratio`` aspect, resized to ``size``.

    As torchvision's RandomResizedCrop, but where a crop of that area and aspect would not fit, its sides are cut to
    the image's instead of drawing again; ``flip`` is the chance of a horizontal flip.
    """
    check_images(images)
    count, device = len(images), images.device
    area = _uniform(*scale, count, generator, device)
    aspect = torch.exp(_uniform(math.log(ratio[0]), math.log(ratio[1]), count, generator, device))
    width = torch.sqrt(area * aspect).clamp(max=1.0)  # fractions of the image's width and height
    height = torch.sqrt(area / aspect).clamp(max=1.0)
    centre_x = (2 * _uniform(0, 1, count, generator, device) - 1) * (1 - width)  # in [-1, 1] coordinates
    centre_y = (2 * _uniform(0, 1, count, generator, device) - 1) * (1 - height)
    mirrored = torch.where(_uniform(0, 1, count, generator, device) < flip, -1.0, 1.0)
    theta = torch.zeros(count, 2, 3, device=device)
    theta[:, 0, 0], theta[:, 0, 2] = width * mirrored, centre_x
    theta[:, 1, 1], theta[:, 1, 2] = height, centre_y
    grid = F.affine_grid(theta, [count, images.shape[1], size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def colour_jitter(images: Tensor, generator: torch.Generator, brightness: float = 0.4, contrast: float = 0.4,
                  saturation: float = 0.2, hue: float = 0.1, chance: float = 0.8) -> Tensor:
    """Scale brightness, contrast (about the image's mean grey) and saturation by random factors and turn the hue
    by up to ``hue`` of a full turn, each image its own."""
    count, device = len(images), images.device
    applied = (_uniform(0, 1, count, generator, device) < chance).float()[:, None, None, None]

    def factor(strength: float) -> Tensor:
        return 1 + applied * _uniform(-strength, strength, count, generator, device)[:, None, None, None]
    out = (images * factor(brightness)).clamp(0, 1)
    grey = _luma(out).mean(dim=(-2, -1), keepdim=True)
    out = (grey + (out - grey) * factor(contrast)).clamp(0, 1)
    out = _luma(out) + (out - _luma(out)) * factor(saturation)
    angle = 2 * math.pi * hue * applied.flatten() * _uniform(-1, 1, count, generator, device)
    return turn_hue(out.clamp(0, 1), angle).clamp(0, 1)


def turn_hue(images: Tensor, angle: Tensor) -> Tensor:
    """Rotate each image's colours about the grey axis by ``angle`` radians (B,): greys and channel means stay, hue turns."""
    axis = images.new_tensor([1.0, 1.0, 1.0]) / math.sqrt(3)
    cos, sin = angle.cos()[:, None, None], angle.sin()[:, None, None]
    cross = images.new_tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]]) / math.sqrt(3)
    rotation = cos * torch.eye(3, device=images.device) + sin * cross + (1 - cos) * torch.outer(axis, axis)
    return torch.einsum("bij,bjhw->bihw", rotation, images)


def greyscale(images: Tensor, generator: torch.Generator, chance: float = 0.2) -> Tensor:
    """Replace a random ``chance`` of the images by their luma, on all three channels."""
    chosen = _uniform(0, 1, len(images), generator, images.device) < chance
    return torch.where(chosen[:, None, None, None], _luma(images).expand_as(images), images)


def blur(images: Tensor, generator: torch.Generator, chance: float, sigma: tuple[float, float] = (0.1, 2.0)) -> Tensor:
    """Gaussian blur of a random ``chance`` of the images, each with its own width (``sigma`` in pixels at 224 px)."""
    count, device, size = len(images), images.device, images.shape[-1]
    chosen = _uniform(0, 1, count, generator, device) < chance
    widths = _uniform(*sigma, count, generator, device) * size / 224
    radius = max(1, math.ceil(3 * sigma[1] * size / 224))
    offsets = torch.arange(-radius, radius + 1, device=device, dtype=images.dtype)
    kernels = torch.exp(-offsets ** 2 / (2 * widths[:, None] ** 2))
    kernels = kernels / kernels.sum(-1, keepdim=True)  # (B, taps), one separable kernel per image
    channels = images.shape[1]
    flat = images.reshape(1, count * channels, *images.shape[-2:])
    taps = kernels.repeat_interleave(channels, dim=0)
    flat = F.pad(flat, (radius, radius, radius, radius), mode="reflect")
    flat = F.conv2d(flat, taps[:, None, None, :], groups=count * channels)
    flat = F.conv2d(flat, taps[:, None, :, None], groups=count * channels)
    return torch.where(chosen[:, None, None, None], flat.reshape(images.shape), images)


def solarize(images: Tensor, generator: torch.Generator, chance: float, threshold: float = 0.5) -> Tensor:
    """Invert the pixels above ``threshold`` in a random ``chance`` of the images."""
    chosen = _uniform(0, 1, len(images), generator, images.device) < chance
    inverted = torch.where(images >= threshold, 1 - images, images)
    return torch.where(chosen[:, None, None, None], inverted, images)


@dataclass(frozen=True)
class MultiCrop:
    """DINO's views: two large global crops and several small local crops of each image.

    The first global view is always blurred, the second rarely and sometimes solarized, the local views
    blurred half the time; all are colour-jittered and sometimes greyscale (Caron et al., 2021, App. A).
    """

    global_size: int = 64
    local_size: int = 32
    local_crops: int = 6
    global_scale: tuple[float, float] = (0.4, 1.0)
    local_scale: tuple[float, float] = (0.05, 0.4)
    hue: float = 0.1
    grey: float = 0.2  # the chance of a greyscale view

    def __call__(self, images: Tensor, generator: torch.Generator) -> list[Tensor]:
        """The views of a batch: two global ones first, then the local ones, each (B, 3, size, size)."""
        views = []
        settings = [(self.global_size, self.global_scale, 1.0, 0.0), (self.global_size, self.global_scale, 0.1, 0.2)]
        settings += [(self.local_size, self.local_scale, 0.5, 0.0)] * self.local_crops
        for size, scale, blurred, solarized in settings:
            view = resized_crops(images, size, scale, generator)
            view = greyscale(colour_jitter(view, generator, hue=self.hue), generator, self.grey)
            views.append(solarize(blur(view, generator, blurred), generator, solarized).clamp(0, 1))  # rounding
        return views

    def config(self) -> dict:
        return {"global_size": self.global_size, "local_size": self.local_size, "local_crops": self.local_crops,
                "global_scale": list(self.global_scale), "local_scale": list(self.local_scale), "hue": self.hue,
                "grey": self.grey}
