"""Checks on image batches, so bad input fails with a message instead of a wrong number."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def work_dtype(images: Tensor) -> torch.dtype:
    """The precision to compute in: float64 stays float64, everything else (half precision too) is float32."""
    return torch.float64 if images.dtype == torch.float64 else torch.float32


def check_layout(images: Tensor, name: str = "images", channels: tuple[int, ...] = (3,)) -> Tensor:
    """The course convention's shape and dtype, float (B, 3, H, W), checked without reading the values.

    It costs no pass over the data and no device synchronisation, so a model's forward pass can afford
    it on every call inside an attack loop; ``check_images`` adds the range check once per public call.
    """
    layout = " or ".join(f"(B, {c}, H, W)" for c in channels)
    if not isinstance(images, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {layout}, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] not in channels:
        raise ValueError(f"{name} must have shape {layout}, got shape {tuple(images.shape)}")
    if not torch.is_floating_point(images):
        raise TypeError(f"{name} must be a float tensor in [0, 1], got dtype {images.dtype} (divide uint8 by 255)")
    return images


def check_images(images: Tensor, name: str = "images", channels: tuple[int, ...] = (3,)) -> Tensor:
    """Insist on the course convention: float (B, 3, H, W) in [0, 1], on any device."""
    check_layout(images, name, channels)
    if images.numel():
        low, high = (value.item() for value in torch.aminmax(images))  # one pass over the batch
        if low < -1e-3 or high > 1 + 1e-3:
            raise ValueError(f"{name} must lie in [0, 1], got values from {low:.3g} to {high:.3g}; "
                             "undo the normalisation first")
    return images


def tensor_bytes(tensor: Tensor) -> bytes:
    """A tensor's raw bytes (on the CPU, any dtype or shape), for checksums and cache keys."""
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def resize_short_side(images: Tensor, short: int, interpolation: str = "bilinear") -> Tensor:
    """Scale so that the shorter side has ``short`` pixels, keeping the aspect ratio (antialiased)."""
    height, width = images.shape[-2:]
    if min(height, width) == short:
        return images
    scale = short / min(height, width)
    size = (max(short, round(height * scale)), max(short, round(width * scale)))
    mode = "bicubic" if interpolation == "bicubic" else "bilinear"
    return F.interpolate(images, size=size, mode=mode, antialias=True, align_corners=False).clamp(0, 1)


def centre_crop(images: Tensor, size: int) -> Tensor:
    """The central size x size window."""
    height, width = images.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    return images[..., top:top + size, left:left + size]


def images_generator(images: Tensor, generator: torch.Generator | None) -> torch.Generator:
    """The caller's generator, checked to sit on the images' device, or a fresh one seeded 0 there."""
    if generator is None:
        return torch.Generator(device=images.device).manual_seed(0)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if _with_index(generator.device) != _with_index(images.device):
        raise ValueError(f"the generator is on {generator.device} but the images are on {images.device}")
    return generator


def _with_index(device: torch.device) -> tuple[str, int | None]:
    """A device with its index filled in, since torch.Generator(device="cuda").device carries none."""
    if device.index is not None or device.type == "cpu":
        return device.type, device.index
    return device.type, torch.cuda.current_device() if device.type == "cuda" else 0
