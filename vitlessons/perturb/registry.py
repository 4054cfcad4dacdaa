"""The corruption registry: every corruption is a batched function looked up by name, at severities 1-5.

A corruption module registers each function with ``@corruption(name, family, levels)``: ``levels`` holds the
five published parameter values (Hendrycks & Dietterich, 2019, ImageNet-C), one per severity. The function
receives a validated batch, the parameter of the chosen severity and a ``torch.Generator`` on the batch's
device, and returns a batch of the same shape in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from vitlessons.tensors import check_images, images_generator

IMAGENET_C = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog",
    "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
EXTRA = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
SEVERITIES = (1, 2, 3, 4, 5)
MIN_SIZE = 32

CorruptionFn = Callable[[Tensor, Any, torch.Generator], Tensor]


@dataclass(frozen=True)
class Corruption:
    """A registered corruption: its family, its five severity parameters and its batched function."""

    name: str
    family: str  # "noise", "blur", "weather" or "digital"
    levels: tuple[Any, ...]
    function: CorruptionFn


CORRUPTIONS: dict[str, Corruption] = {}


def corruption(name: str, family: str, levels: Sequence[Any]) -> Callable[[CorruptionFn], CorruptionFn]:
    """Register a batched corruption under ``name`` with one parameter per severity."""
    if len(levels) != len(SEVERITIES):
        raise ValueError(f"{name}: need {len(SEVERITIES)} severity levels, got {len(levels)}")

    def register(function: CorruptionFn) -> CorruptionFn:
        CORRUPTIONS[name] = Corruption(name, family, tuple(levels), function)
        return function
    return register


def list_corruptions(family: str | None = None) -> list[str]:
    """Names of the registered corruptions, ImageNet-C's 15 first, then the 4 extra ones."""
    _load_all()
    order = [n for n in (*IMAGENET_C, *EXTRA) if n in CORRUPTIONS]
    return [n for n in order if family is None or CORRUPTIONS[n].family == family]


def get_corruption(name: str) -> Corruption:
    """The registered corruption, or an error listing the valid names."""
    _load_all()
    if name not in CORRUPTIONS:
        raise KeyError(f"unknown corruption {name!r}; choose one of {', '.join(list_corruptions())}")
    return CORRUPTIONS[name]


def corrupt(images: Tensor, name: str, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """Apply one corruption at one severity (1-5) to a batch, on the batch's device."""
    spec = get_corruption(name)
    check_images(images)
    if images.shape[-1] < MIN_SIZE or images.shape[-2] < MIN_SIZE:
        raise ValueError(f"images must be at least {MIN_SIZE}x{MIN_SIZE} pixels, got {tuple(images.shape[-2:])}")
    if isinstance(severity, bool) or not isinstance(severity, int) or severity not in SEVERITIES:
        raise ValueError(f"severity must be an int from 1 to 5, got {severity!r}")
    out = spec.function(images, spec.levels[severity - 1], images_generator(images, generator))
    # clamp in place, saving a pass, unless the corruption handed back (a view of) the caller's batch
    return out.clamp(0, 1) if out.untyped_storage().data_ptr() == images.untyped_storage().data_ptr() \
        else out.clamp_(0, 1)


def sweep(images: Tensor, names: Iterable[str] | None = None, severities: Iterable[int] = SEVERITIES,
          seed: int = 0) -> Iterator[tuple[str, int, Tensor]]:
    """Every (corruption, severity) pair over one batch, each seeded the same way for repeatability."""
    for name in list(names) if names is not None else list_corruptions():
        for severity in severities:
            generator = torch.Generator(device=images.device).manual_seed(seed)
            yield name, severity, corrupt(images, name, severity, generator)


def _load_all() -> None:
    """Import the modules whose decorators fill the registry."""
    from vitlessons.perturb import blur, digital, noise, weather  # noqa: F401
