"""Perturbations of the course as batched PyTorch operations on (B, 3, H, W) images in [0, 1], on any device.

``corrupt(images, "fog", 3)`` applies one ImageNet-C corruption; ``list_corruptions()`` names them all;
``sweep(images)`` yields every (corruption, severity) pair.
"""

from vitlessons.perturb.registry import (
    CORRUPTIONS, EXTRA, IMAGENET_C, SEVERITIES, corrupt, get_corruption, list_corruptions, sweep,
)

__all__ = ["CORRUPTIONS", "EXTRA", "IMAGENET_C", "SEVERITIES", "corrupt", "get_corruption", "list_corruptions", "sweep"]
